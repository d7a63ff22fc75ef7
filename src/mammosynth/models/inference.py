"""The inference form of a trained generator: :func:`prepare_for_inference`, applied once
by the pipeline (and the trainer's snapshots), so the model modules read as plain
training graphs.

FastGAN (eval mode, running statistics): every BatchNorm folds into a per-channel (or
per-image, when class-conditional) affine, an unconditional one into the conv weights
themselves; the SLE gate folds into the GLU's value half; the nearest/bilinear upsample +
3x3 conv of each block runs as one stride-2 transposed conv at the low resolution; the top
block keeps its output as (offset-)packed pixel phases and the strand input and grain layer
(bilinear only: with nearest upsampling and either, the top block is unpacked) and the to-image conv
run on them at half resolution (``layers.upsample_kernel``, ``layers.offset_upsample_kernel``,
``layers.packed_kernel``). The result equals the training graph with running statistics
up to float rounding (``tests/models``); inside :meth:`FoldedFastGAN.inference_cache` the
weight-derived kernels are made once and reused.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .layers import (offset_packed_kernel, offset_upsample_kernel, packed_kernel, upsample_kernel,
                     upsample_transposed_kernel, zero_offset_border)


def prepare_for_inference(generator: nn.Module) -> nn.Module:
    """A module computing ``generator``'s images for inference: FastGAN's folded form
    (:class:`FoldedFastGAN`, sharing its weights), any other generator unchanged."""
    from .fastgan import FastGANGenerator

    if isinstance(generator, FastGANGenerator):
        return FoldedFastGAN(generator)
    return generator


def cached(cache: dict | None, key: Any, make: Callable[[], Any]) -> Any:
    """``cache[key]``, made by ``make()`` on first use; ``make()`` when there is no cache."""
    if cache is None:
        return make()
    try:
        return cache[key]
    except KeyError:
        value = cache[key] = make()
        return value


def glu_affine(y: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, gate: torch.Tensor | None = None,
               phases: int = 1) -> torch.Tensor:
    """``glu(y * scale + shift) * gate`` per channel (gate folded into the GLU's value half:
    ``g * (a * s + t) = a * (s * g) + t * g``). ``scale``/``shift`` ``[1 or B, 2C]``,
    ``gate`` ``[B, C]``; with ``phases`` > 1 each channel of ``y`` is ``phases`` packed
    channels. One pass over ``y`` for the affine (per-image parameters, the fast
    broadcast), one for the GLU."""
    b = y.shape[0]
    scale, shift = scale.expand(b, -1), shift.expand(b, -1)
    if gate is not None:
        g2 = torch.cat([gate, torch.ones_like(gate)], 1).to(scale.dtype)
        scale, shift = scale * g2, shift * g2
    if phases > 1:
        scale, shift = scale.repeat_interleave(phases, 1), shift.repeat_interleave(phases, 1)
    else:
        scale, shift = scale.contiguous(), shift.contiguous()
    return F.glu(torch.addcmul(shift[:, :, None, None], y, scale[:, :, None, None]), dim=1)


def folded_norm(norm: nn.Module, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """A CondBatchNorm2d in eval mode as one affine pass; per-image parameters even when
    unconditional (CPU addcmul is ~2x faster that way)."""
    scale, shift = (t.expand(x.shape[0], -1).contiguous() for t in norm.folded(c, x.dtype))
    return torch.addcmul(shift[:, :, None, None], x, scale[:, :, None, None])


def conv_norm_glu(block: nn.Module, i: int, x: torch.Tensor, c: torch.Tensor | None, gate: torch.Tensor | None,
                  cache: dict | None, packed: bool = False) -> torch.Tensor:
    """Conv ``i`` of an UpBlock (the first one upsampling: a stride-2 transposed conv, or
    with ``packed`` a conv giving the offset-packed phases (nearest upsampling; see
    ``layers.offset_upsample_kernel``) or the packed phases (bilinear)), its folded norm, GLU
    and ``gate``. An unconditional norm folds into the conv itself (scale into the weights,
    shift into the bias): no pass over the conv output."""
    norm = block.norms[i]
    phases = 4 if packed else 1
    channels_last = x.is_contiguous(memory_format=torch.channels_last)

    def kernel() -> tuple[torch.Tensor, torch.Tensor | None, int]:
        w, b, pad = block.convs[i].weight, None, 1
        if not norm.cond_dim:
            scale, shift = norm.folded(None, w.dtype)
            w, b = w * scale[0][:, None, None, None], shift[0]
        if i == 0 and packed:  # offset-packed 2x2 windows (nearest) or packed 3x3 (bilinear)
            w = upsample_kernel(w, True) if block.smooth else offset_upsample_kernel(w)
            b = None if b is None else b.repeat_interleave(4)
        elif i == 0:
            w, pad = upsample_transposed_kernel(w, block.smooth)
        return w.contiguous(memory_format=torch.channels_last) if channels_last else w, b, pad

    w, b, pad = cached(cache, (id(block), i, packed, channels_last), kernel)
    w, b = w.to(x.dtype), None if b is None else b.to(x.dtype)
    if i == 0 and not packed:
        y = F.conv_transpose2d(x, w, b, stride=2, padding=pad)
    else:
        y = F.conv2d(x, w, b, padding=1)
    if norm.cond_dim:  # per-image parameters: one affine pass over the output
        out = glu_affine(y, *norm.folded(c, y.dtype), gate, phases=phases)
    else:
        out = F.glu(y, dim=1)
        if gate is not None:  # on the GLU's output: half the channels of the conv's
            out = out * gate.to(out.dtype).repeat_interleave(phases, 1)[:, :, None, None]
    return zero_offset_border(out) if packed and not block.smooth else out


def folded_block(block: nn.Module, x: torch.Tensor, c: torch.Tensor | None, gate: torch.Tensor | None,
                 packed: bool, cache: dict | None, noise: torch.Tensor | None) -> torch.Tensor:
    """An UpBlock with folded norms (+ gate) and GLU; ``packed`` (one-conv block): its
    output's four pixel phases unshuffled (channel ``4 * k + phase``), offset-packed
    ``[B, 4 * cout, h + 1, w + 1]`` with nearest upsampling, packed ``[B, 4 * cout, h, w]``
    with bilinear."""
    if block.noise_strength is not None:
        x = x + block.noise_strength.to(x.dtype)[None, :, None, None] * noise
    last = len(block.convs) == 1
    x = conv_norm_glu(block, 0, x, c, gate if last else None, cache, packed)
    for i in range(1, len(block.convs)):
        x = conv_norm_glu(block, i, x, c, gate if i == len(block.convs) - 1 else None, cache)
    return x


def packed_top(G: nn.Module, x: torch.Tensor, noise: list[torch.Tensor], cache: dict | None) -> torch.Tensor:
    """The output noise, the strand input and the grain layer
    (``FastGANGenerator.output_features``) on the top block's packed phases ``[B, 4 * C,
    h, w]`` (channel ``4 * k + phase``): the noise map and the strand dashes unshuffled onto
    the phases, the strands' 1x1 convs as matmuls over the channels, the grain conv as a
    packed 3x3 conv (its output in the same layout, so the GLU's halves are the grain conv's two
    channel halves)."""
    c = x.shape[1] // 4
    if G.out_noise_strength is not None:
        n = F.pixel_unshuffle(noise[-1].to(x.dtype), 2)  # [B, 4 phases, h, w]
        x = x + G.out_noise_strength.to(x.dtype).repeat_interleave(4)[None, :, None, None] * n.repeat(1, c, 1, 1)
    strands = getattr(G, "strands", None)
    if strands is not None:
        # the gate and mix 1x1 convs as batched matmuls over the channels: on the packed map
        # a channel's 4 phases are adjacent, so [B, 4 * C, h, w] is [B, C, 4 * h * w]
        # (~2x faster than block-diagonal 1x1 convs of the phases)
        b, _, h, w = x.shape
        xv = x.contiguous().view(b, c, 4 * h * w)
        wg, bg, wm = (t.to(x.dtype) for t in (strands.gate.weight[:, :, 0, 0], strands.gate.bias,
                                                strands.mix.weight[:, :, 0, 0]))
        gates = torch.bmm(wg.expand(b, -1, -1), xv).add_(bg[None, :, None]).sigmoid_()  # baddbmm copies the bias
        gates.mul_(strands.dashes(noise[-1], unshuffle=True).to(x.dtype).view(b, -1, 4 * h * w))
        x = torch.baddbmm(xv, wm.expand(b, -1, -1), gates).view(b, 4 * c, h, w)
    if G.grain is None:
        return x
    k, bias = cached(cache, "grain", lambda: (packed_kernel(G.grain.weight), G.grain.bias.repeat_interleave(4)))
    return x + F.glu(F.conv2d(x, k.to(x.dtype), bias.to(x.dtype), padding=1), dim=1)


class FoldedFastGAN(nn.Module):
    """A FastGAN generator's inference form (module docstring); shares its weights. In
    training mode (or without running statistics) it runs the generator itself."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator
        self._cache: dict | None = None

    # the models contract
    @property
    def z_dim(self) -> int:
        return self.generator.z_dim

    @property
    def resolution(self) -> tuple[int, int]:
        return self.generator.resolution

    @property
    def label_axes(self) -> dict[str, tuple[str, ...]]:
        return self.generator.label_axes

    @contextlib.contextmanager
    def inference_cache(self) -> Iterator["FoldedFastGAN"]:
        """Within this scope the kernels derived from the weights (transposed and packed
        upsample-conv kernels with unconditional norms folded in, the packed to-image
        kernel) are computed once and reused, instead of once per batch. The weights must
        not change inside the scope."""
        outer = self._cache
        self._cache = {} if outer is None else outer
        try:
            yield self
        finally:
            self._cache = outer

    def forward(self, z: torch.Tensor, labels: dict[str, torch.Tensor] | None = None,
                frame: bool = True) -> torch.Tensor:
        """As the generator's forward (``frame``: see there)."""
        G = self.generator
        if G.training or not all(b.foldable for b in G.blocks) or not G.init_norm.foldable:
            return G(z, labels, frame=frame)
        y = self._content(z, labels)
        return G.to_frame(y) if frame else y

    def _content(self, z: torch.Tensor, labels: dict[str, torch.Tensor] | None) -> torch.Tensor:
        G = self.generator
        x, c, noise = G.inputs(z, labels)
        x = F.glu(folded_norm(G.init_norm, x, c), dim=1)
        feats = [x]
        gates = {b: (a, m) for (a, b), m in zip(G.pairs, G.sle)}
        # the last block's output stays as (offset-)packed pixel phases and the to-image
        # conv runs on them at half resolution
        # (with a grain layer or strands: packed for bilinear upsampling only, whose phases
        # are not offset)
        grain = getattr(G, "grain", None)
        top = grain is not None or getattr(G, "strands", None) is not None
        packed = len(G.blocks[-1].convs) == 1 and (not top or G.smooth)
        cache = self._cache
        for i, block in enumerate(G.blocks, start=1):
            gate = None
            if i in gates:
                a, m = gates[i]
                gate = m.gate(feats[a])
            x = folded_block(block, x, c, gate, packed and i == len(G.blocks), cache,
                             noise[i - G.noise_from] if i >= G.noise_from else None)
            feats.append(x)
        if not packed:
            return torch.tanh(G.to_img(G.output_features(x, noise)))
        # to-image conv on the phases (layers.packed_conv3x3, or its 2x2 form on the
        # offset-packed map): [B, 4 phases, h, w]
        kernel = packed_kernel if G.smooth else offset_packed_kernel
        k, bias = cached(cache, "to_img", lambda: (kernel(G.to_img.weight), G.to_img.bias.repeat_interleave(4)))
        if top:
            x = packed_top(G, x, noise, cache)
        y = F.conv2d(x, k.to(x.dtype), bias.to(x.dtype), padding=1 if G.smooth else 0)
        if not top and getattr(G, "out_noise_strength", None) is not None:
            # to_img(x + s * n) = to_img(x) + conv(n, sum_c s_c W_c): the output noise is one
            # 1-channel 3x3 conv at full resolution, unshuffled onto the pixel phases
            kn = cached(cache, "to_img_noise",
                        lambda: (G.to_img.weight * G.out_noise_strength[None, :, None, None]).sum(1, keepdim=True))
            y = y + F.pixel_unshuffle(F.conv2d(noise[-1].to(y.dtype), kn.to(y.dtype), padding=1), 2)
        y = torch.tanh(y)
        b, _, h, w = y.shape
        # pixel shuffle of one channel by reshapes: ~3x faster than F.pixel_shuffle on
        # channels-last phases (phase 2 * p + q -> pixel (2i + p, 2j + q))
        return y.permute(0, 2, 3, 1).reshape(b, h, w, 2, 2).permute(0, 1, 3, 2, 4).reshape(b, 1, 2 * h, 2 * w)
