"""Building blocks shared by the GAN families: channel schedule, label handling, init."""
from __future__ import annotations

import hashlib
import math

import torch
import torch.nn.functional as F
from torch import nn


def channels_at(level: int, levels: int, top: int, cap: int) -> int:
    """Channels at ``level`` (0 = 8-row base, ``levels`` = full resolution): ``top`` at the
    top level, doubling per halving, capped at ``cap``."""
    return int(min(cap, top * 2 ** (levels - level)))


def latent_noise(z: torch.Tensor, shapes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Standard-normal noise maps ``[B, 1, h, w]`` for each ``(h, w)`` in ``shapes``, drawn
    from a CPU generator seeded with a hash of each row of ``z``.

    Noise inputs make texture stochastic; drawing them from the latent keeps a generated
    image a pure function of ``(z, labels)`` (so of checkpoint, seed and index), whatever
    the batch size or device. The hash reads the float32 bytes of the row.
    """
    total = sum(h * w for h, w in shapes)
    if z.device.type == "meta":  # shape-only runs (models.cost)
        return [z.new_empty(z.shape[0], 1, h, w) for h, w in shapes]
    rows = z.detach().float().cpu().contiguous().numpy()
    flat = torch.empty(len(rows), total)
    for i, row in enumerate(rows):
        seed = int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little") >> 1
        torch.randn(total, generator=torch.Generator().manual_seed(seed), out=flat[i])
    out, k = [], 0
    for h, w in shapes:
        out.append(flat[:, k:k + h * w].reshape(-1, 1, h, w).to(z.device, z.dtype))
        k += h * w
    return out


def line_kernels(orientations: int, size: int = 15, sigma_along: float = 4.0, sigma_across: float = 0.7
                 ) -> torch.Tensor:
    """``[orientations, 1, size, size]`` thin oriented line kernels (a Gaussian of SD
    ``sigma_across`` px across the line and ``sigma_along`` px along it), at angles
    ``pi * k / orientations``, each of unit energy: white unit noise filtered by one keeps
    unit variance. Weights below 1e-4 of the peak are zeroed: the Gaussian tails are
    otherwise denormal floats, which made the convolution ~7x slower on a CPU."""
    r = torch.arange(size, dtype=torch.float32) - size // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    out = []
    for k in range(orientations):
        a = math.pi * k / orientations
        along, across = xx * math.cos(a) + yy * math.sin(a), -xx * math.sin(a) + yy * math.cos(a)
        w = torch.exp(-0.5 * (along / sigma_along) ** 2 - 0.5 * (across / sigma_across) ** 2)
        w = torch.where(w > 1e-4, w, torch.zeros_like(w))
        out.append(w / w.square().sum().sqrt())
    return torch.stack(out)[:, None]


def circular_filter(x: torch.Tensor, kernels: torch.Tensor, bias: torch.Tensor | None = None,
                    unshuffle: bool = False) -> torch.Tensor:
    """``F.conv2d(F.pad(x, [size // 2] * 4, mode="circular"), kernels, bias)`` of a
    one-channel map ``x [B, 1, H, W]`` by ``kernels [K, 1, size, size]`` (odd size, at
    most ``H`` and ``W``): ``[B, K, H, W]`` in float32, or with ``unshuffle`` its
    ``F.pixel_unshuffle`` by 2 (``[B, 4 * K, H / 2, W / 2]``, channel ``4 * k + 2 * p + q``
    holding pixels ``(2 i + p, 2 j + q)``), written directly.

    Computed by FFT, whose cost does not grow with the kernel's area: for the strand
    input's eight 15x15 kernels several times faster on a CPU than the direct convolution.
    Two real outputs share one complex inverse transform (kernel ``2 j`` in the real part,
    ``2 j + 1`` in the imaginary part; each result is real, so they do not mix), ~2x faster
    than real inverse transforms of each. A few images at a time: a whole batch's
    transforms (~10 MB at 128x128) would be fresh pages on every call, which cost more
    than the arithmetic."""
    n, size = kernels.shape[0], kernels.shape[-1]
    (b, _, h, w), p, m = x.shape, size // 2, (kernels.shape[0] + 1) // 2
    if size > min(h, w) or size % 2 == 0:
        raise ValueError(f"circular_filter needs an odd kernel no larger than the map, got {size} for {h}x{w}")
    # correlation = convolution with the flipped kernel, its centre moved to (0, 0)
    g = x.new_zeros(2 * m, h, w, dtype=torch.float32)
    g[:n, :size, :size] = kernels.float().flip(-1, -2)[:, 0]
    g = torch.fft.fft2(torch.roll(g, (-p, -p), (-2, -1)))
    pairs = g[0::2] + 1j * g[1::2]  # [m, h, w]
    if bias is not None:  # a constant is the zero-frequency coefficient alone
        bias = F.pad(bias.float(), (0, 2 * m - n)) * (h * w)
        bias = bias[0::2] + 1j * bias[1::2]
    if unshuffle:  # out[b, 4 (2 j + t) + 2 p + q, i, k] = pair j, part t, at pixel (2 i + p, 2 k + q)
        out = x.new_empty(b, 8 * m, h // 2, w // 2, dtype=torch.float32)
        target = out.view(b, m, 2, 2, 2, h // 2, w // 2).permute(0, 1, 5, 3, 6, 4, 2)
    else:
        out = x.new_empty(b, 2 * m, h, w, dtype=torch.float32)
        target = out.view(b, m, 2, h, w).permute(0, 1, 3, 4, 2)
    step = max(1, (1 << 19) // (m * h * w))
    for i in range(0, b, step):
        y = torch.fft.fft2(x[i:i + step, 0].float())[:, None] * pairs
        if bias is not None:
            y[:, :, 0, 0] += bias
        y = torch.view_as_real(torch.fft.ifft2(y))  # [s, m, h, w, (real, imag)]
        target[i:i + step] = y.unflatten(-2, (w // 2, 2)).unflatten(-4, (h // 2, 2)) if unshuffle else y
    return out[:, :4 * n] if unshuffle else out[:, :n]


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv/linear weights N(0, 0.02), norm gains N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)


def check_labels(labels: dict[str, torch.Tensor] | None, label_axes: dict[str, tuple[str, ...]],
                 batch: int, allow_unknown: bool = False) -> dict[str, torch.Tensor]:
    """Validate class-index tensors for every conditioned axis (-1 = unknown when allowed)."""
    if not label_axes:
        return {}
    if labels is None:
        raise ValueError(f"this model is conditioned on {tuple(label_axes)}; labels are required")
    out = {}
    for axis, classes in label_axes.items():
        if axis not in labels:
            raise ValueError(f"missing labels for condition axis {axis!r} (model axes: {tuple(label_axes)})")
        y = torch.as_tensor(labels[axis]).long().reshape(-1)
        if y.numel() != batch:
            raise ValueError(f"labels[{axis!r}] has {y.numel()} entries for a batch of {batch}")
        lo = -1 if allow_unknown else 0
        if y.numel() and (int(y.min()) < lo or int(y.max()) >= len(classes)):
            raise ValueError(f"labels[{axis!r}] out of range: class indices must be in [0, {len(classes)}) for {classes}")
        out[axis] = y
    return out


def one_hot_labels(labels: dict[str, torch.Tensor], label_axes: dict[str, tuple[str, ...]],
                   device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Concatenated one-hot codes of every axis ([B, sum classes]); unknown (-1) -> zeros."""
    parts = []
    for axis, classes in label_axes.items():
        y = labels[axis].to(device)
        parts.append(F.one_hot(y.clamp(min=0), len(classes)).to(dtype) * (y >= 0).unsqueeze(1).to(dtype))
    return torch.cat(parts, 1)


class LabelEmbedding(nn.Module):
    """Sum of per-axis class embeddings; unknown labels (-1) contribute nothing."""

    def __init__(self, label_axes: dict[str, tuple[str, ...]], dim: int):
        super().__init__()
        self.axes = tuple(label_axes)
        self.tables = nn.ModuleDict({a: nn.Embedding(len(c), dim) for a, c in label_axes.items()})

    def forward(self, labels: dict[str, torch.Tensor], device: torch.device) -> torch.Tensor:
        out = 0
        for a in self.axes:
            y = labels[a].to(device)
            out = out + self.tables[a](y.clamp(min=0)) * (y >= 0).unsqueeze(1).to(self.tables[a].weight.dtype)
        return out


class CondBatchNorm2d(nn.Module):
    """BatchNorm whose gain and bias come from a class code (BigGAN-style); plain BN when
    ``cond_dim`` is 0."""

    def __init__(self, channels: int, cond_dim: int = 0):
        super().__init__()
        self.cond_dim = cond_dim
        self.bn = nn.BatchNorm2d(channels, affine=cond_dim == 0)
        if cond_dim:
            self.gain = nn.Linear(cond_dim, channels)
            self.bias = nn.Linear(cond_dim, channels)

    @property
    def foldable(self) -> bool:
        """Eval mode with running statistics: :meth:`folded` gives the whole layer."""
        return not self.training and self.bn.track_running_stats and self.bn.running_var is not None

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        # (inference folds this layer into one affine pass: models.inference)
        if not self.cond_dim:
            return self.bn(x)
        g = 1 + self.gain(c)
        b = self.bias(c)
        return self.bn(x) * g[:, :, None, None] + b[:, :, None, None]

    def folded(self, c: torch.Tensor | None, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode ``(scale, shift)`` with ``forward(x) = x * scale + shift``: [B, C] per
        sample when conditional, [1, C] otherwise."""
        inv = torch.rsqrt(self.bn.running_var + self.bn.eps)
        if self.cond_dim:
            scale = (1 + self.gain(c)) * inv
            shift = self.bias(c) - self.bn.running_mean * scale
        else:
            scale = (self.bn.weight * inv)[None]
            shift = (self.bn.bias - self.bn.running_mean * self.bn.weight * inv)[None]
        return scale.to(dtype), shift.to(dtype)


def upsample_conv3x3(x: torch.Tensor, weight: torch.Tensor, smooth: bool = False,
                     bias: torch.Tensor | None = None) -> torch.Tensor:
    """``conv3x3(nearest_upsample_x2(x), weight, bias)`` (padding 1) as one stride-2
    transposed conv of the low-resolution map (:func:`upsample_transposed_kernel`); with
    ``smooth`` the 3x3 kernel is first smoothed by ``[1, 2, 1]^2 / 16`` into a 5x5 kernel
    (padding 2), i.e. the conv sees a bilinearly upsampled map, which removes the
    period-2 "phase" pattern nearest upsampling leaves. Exact up to float rounding; no
    upsampled intermediate; on 2 CPU cores forward + backward is 1.2-2x faster than the
    conv of the four phases packed (:func:`upsample_kernel`) and its pixel shuffle."""
    k, pad = upsample_transposed_kernel(weight, smooth)
    return F.conv_transpose2d(x, k.to(x.dtype), None if bias is None else bias.to(x.dtype), stride=2, padding=pad)


def _kernel5(weight: torch.Tensor, smooth: bool) -> torch.Tensor:
    """The 3x3 ``weight`` as the 5x5 kernel it is on the upsampled map: zero-padded, or
    smoothed by ``[1, 2, 1]^2 / 16`` (bilinear rather than nearest upsampling)."""
    if smooth:
        # the full 2-D convolution with [1, 2, 1]^2 / 16, as shifted adds: a 1-channel conv
        # over the O*I small kernels cost ~3 ms per up-block and step on a CPU
        p = F.pad(weight, (2, 2, 2, 2))
        rows = p[..., :-2, :] + 2.0 * p[..., 1:-1, :] + p[..., 2:, :]
        return (rows[..., :-2] + 2.0 * rows[..., 1:-1] + rows[..., 2:]) / 16.0
    return F.pad(weight, (1, 1, 1, 1))


def upsample_kernel(weight: torch.Tensor, smooth: bool = False) -> torch.Tensor:
    """:func:`upsample_conv3x3` as a 3x3 conv of the low-resolution map giving the four
    output phases packed: ``[4 * O, I, 3, 3]`` (channel ``4 * o + 2 * row_phase +
    col_phase``; ``F.pixel_shuffle`` interleaves them). Each phase is a 3-tap-per-axis
    conv whose taps are sums of the high-resolution taps."""
    o, i = weight.shape[:2]
    k5 = _kernel5(weight, smooth)

    def split(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # 5 high-res taps (offsets -2..2) along the last axis -> 3 low-res taps (-1, 0, +1)
        # for output phase 0 and phase 1: offset d of phase a reads low-res (a + d) // 2
        return (torch.stack([w[..., 0] + w[..., 1], w[..., 2] + w[..., 3], w[..., 4]], -1),
                torch.stack([w[..., 0], w[..., 1] + w[..., 2], w[..., 3] + w[..., 4]], -1))

    kernels = []
    for wr in split(k5.transpose(2, 3)):  # rows (5 taps -> 3), columns still 5
        kernels.extend(split(wr.transpose(2, 3)))  # then columns: phases (a, b) in order
    return torch.stack(kernels, 1).reshape(4 * o, i, 3, 3)


def upsample_transposed_kernel(weight: torch.Tensor, smooth: bool = False) -> tuple[torch.Tensor, int]:
    """``conv3x3(upsample_x2(x), weight)`` as one stride-2 transposed conv:
    ``F.conv_transpose2d(x, kernel, stride=2, padding=padding)`` with the returned
    ``[I, O, k, k]`` kernel and padding (4x4 and 1 for nearest upsampling, 6x6 and 2 for
    bilinear). Upsampling is a stride-2 transposed conv with a 2x2 box (nearest), so the
    composition is one transposed conv whose kernel is the 5x5 kernel convolved with that
    box. Every output pixel then costs 4 taps per input channel for nearest upsampling
    (the packed kernel of :func:`upsample_kernel` spends 9, 5 of them zero)."""
    k5 = _kernel5(weight, smooth)
    if not smooth:
        k5, pad = k5[..., 1:4, 1:4], 1  # the zero border: a 4x4 kernel
    else:
        pad = 2
    # the full convolution with the 2x2 box, as shifted adds (cheaper than a 1-channel conv)
    p = F.pad(k5, (1, 1, 1, 1))
    full = p[..., :-1, :-1] + p[..., :-1, 1:] + p[..., 1:, :-1] + p[..., 1:, 1:]
    return full.flip(-1, -2).transpose(0, 1).contiguous(), pad


def _phase_taps() -> torch.Tensor:
    """``S[a, d, p, u]`` = 1 where high-resolution row ``2i + a + d`` (output phase ``a``,
    tap ``d`` in -1..1) is low-resolution row ``i + u`` (``u`` in -1..1) of phase ``p``."""
    s = torch.zeros(2, 3, 2, 3)
    for a in range(2):
        for d in (-1, 0, 1):
            u, p = divmod(a + d, 2)
            s[a, d + 1, p, u + 1] = 1.0
    return s


_TAPS = _phase_taps()


def packed_conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A 3x3 conv (padding 1) of the high-resolution map ``pixel_shuffle(x, 2)``, computed
    on the packed map ``x`` ``[B, 4C, h, w]`` (channel ``4 * c + 2 * row_phase +
    col_phase``) and returned packed the same way, ``[B, 4O, h, w]``: each output phase
    reads three low-resolution taps per axis of every input phase. Exact up to float
    rounding; no high-resolution tensor is made."""
    k = packed_kernel(weight)
    return F.conv2d(x, k.to(x.dtype), None if bias is None else bias.repeat_interleave(4).to(x.dtype), padding=1)


def packed_kernel(weight: torch.Tensor) -> torch.Tensor:
    """The ``[4 * O, 4 * C, 3, 3]`` kernel of :func:`packed_conv3x3` for a 3x3 ``weight``."""
    taps = _TAPS.to(weight)
    o, c = weight.shape[:2]
    return torch.einsum("adpu,beqv,ocde->oabcpquv", taps, taps, weight).reshape(4 * o, 4 * c, 3, 3)


def glu(x: torch.Tensor) -> torch.Tensor:
    """``F.glu(x, dim=1)`` (first half of the channels times the sigmoid of the second),
    written as the two halves' product: equal to it bit for bit, and in channels-last
    memory with few channels (the GAN's top layers on a CPU) 2-3x faster forward and
    backward, where F.glu's kernel walks the halves' short strided channel runs one by one."""
    a, b = x.chunk(2, 1)
    return a * torch.sigmoid(b)


class GLU(nn.Module):
    """``nn.GLU(dim=1)`` computed by :func:`glu`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return glu(x)


def conv1x1(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.conv2d(x, weight, bias)`` for a 1x1 ``weight [O, I, 1, 1]``, as a matrix product
    over the channels when ``x`` is channels-last (the result is channels-last too). On a
    CPU, one thread and fewer than 16 images, PyTorch sends 1x1 convolutions to its
    unvectorised fallback kernel: at the strand input's few channels at full resolution
    that was ~5 % of a training step."""
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return F.linear(x.permute(0, 2, 3, 1), weight.flatten(1), bias).permute(0, 3, 1, 2)
    return F.conv2d(x, weight, bias)


def box_mean3(x: torch.Tensor) -> torch.Tensor:
    """The mean of each pixel's 3x3 neighbourhood inside the image, i.e.
    ``F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)``, by shifted adds: on a CPU the
    pooling kernel (and its backward) costs several times these few elementwise ops."""
    p = F.pad(x, (1, 1, 1, 1))
    rows = p[..., :-2, :] + p[..., 1:-1, :] + p[..., 2:, :]
    total = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]
    h, w = x.shape[-2:]
    # neighbours inside the image: 3 per axis, 2 on a border row or column (1 if the side is 1)
    nh = torch.full((h,), 3.0, dtype=x.dtype, device=x.device)
    nw = torch.full((w,), 3.0, dtype=x.dtype, device=x.device)
    nh[0] -= 1
    nh[-1] -= 1
    nw[0] -= 1
    nw[-1] -= 1
    return total / (nh[:, None] * nw[None, :])


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- offset-packed phases (eval, nearest upsampling): the top block and the to-image conv ---
# With nearest upsampling each output phase (a, b) of an upsample-conv reads only a 2x2
# window of the low-resolution map, rows {i + a - 1, i + a}: a 2x2 conv with padding 1
# computes all four phases at once on an (h + 1) x (w + 1) grid, phase (a, b) of pixel
# (i, j) sitting at (i + a, j + b) ("offset-packed"). A 3x3 conv of the high-resolution
# map then reads every phase of that grid at offsets {0, 1} only: a 2x2 conv without
# padding, back onto the aligned packed grid. 2.25x fewer multiply-adds than the packed
# 3x3 kernels (whose other taps are zero).

def offset_upsample_kernel(weight: torch.Tensor) -> torch.Tensor:
    """``[4 * O, I, 2, 2]``: ``F.conv2d(x, k, padding=1)`` is the offset-packed
    ``conv3x3(nearest_upsample_x2(x), weight)`` (channel ``4 * o + 2 * a + b``)."""
    k3 = upsample_kernel(weight)
    o4, i = k3.shape[:2]
    parts = k3.reshape(o4 // 4, 4, i, 3, 3)
    return torch.stack([parts[:, 2 * a + b, :, a:a + 2, b:b + 2] for a in (0, 1) for b in (0, 1)], 1
                       ).reshape(o4, i, 2, 2)


def offset_packed_kernel(weight: torch.Tensor) -> torch.Tensor:
    """``[4 * O, 4 * C, 2, 2]``: ``F.conv2d(z, k)`` (no padding) on an offset-packed ``z``
    ``[B, 4C, h + 1, w + 1]`` whose out-of-image border is zero
    (:func:`zero_offset_border`) is :func:`packed_conv3x3` of the aligned packed map:
    ``[B, 4O, h, w]``."""
    k3 = packed_kernel(weight)
    o4, c4 = k3.shape[:2]
    parts = k3.reshape(o4, c4 // 4, 4, 3, 3)
    # input phase (a, b) at low-resolution offset s is offset-packed position s + a
    return torch.stack([parts[:, :, 2 * a + b, 1 - a:3 - a, 1 - b:3 - b] for a in (0, 1) for b in (0, 1)], 2
                       ).reshape(o4, c4, 2, 2)


def zero_offset_border(z: torch.Tensor) -> torch.Tensor:
    """Zero, in place, the positions of an offset-packed map ``[B, 4C, h + 1, w + 1]`` that
    lie outside the image (phase (a, b): row ``h`` if a = 0 else row 0, likewise columns)."""
    for a in (0, 1):
        for b in (0, 1):
            phase = z[:, 2 * a + b::4]
            phase[:, :, 0 if a else -1, :] = 0
            phase[:, :, :, 0 if b else -1] = 0
    return z
