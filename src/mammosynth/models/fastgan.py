"""FastGAN-lite (Liu et al. 2021, "Towards faster and stabilized GAN training for
high-fidelity few-shot image synthesis"), grayscale, non-square, label-conditioned.

Generator: z (+ class embedding) -> 8-row base map -> x2 up-blocks (nearest upsample,
or bilinear with ``ModelConfig.upsample``; 3x3 conv, conditional BatchNorm, GLU) ->
1-channel tanh image. (Inference with folded kernels: :mod:`mammosynth.models.inference`.)
Skip-layer excitation (SLE) gates a high-resolution map with channel weights computed from a map 4 levels
lower (8 -> 128 px, 16 -> 256 px, ...). Noise inputs (``ModelConfig.noise_blocks``): the
top up-blocks add a per-pixel noise map, scaled by a learned strength per channel, to
their input, so that fine stochastic texture (parenchyma) need not be carried by the
narrow deterministic path; the noise is drawn from the latent (``layers.latent_noise``),
so the output stays a pure function of ``(z, labels)``. A full-resolution output noise map
and a grain layer (3x3 conv, GLU, added residually) come before the to-image conv
(``ModelConfig.output_noise``, ``output_grain``); between them the strand input
(:class:`StrandNoise`, ``ModelConfig.strands``) adds sparse oriented dashes of the same
noise map, gated per pixel.

Discriminator: residual down-blocks to the 8-row map, then a projection head
(Miyato & Koyama 2018): ``logit = w . phi(x) + sum_axis <embed_axis(y), phi(x)>``.
Texture head (``ModelConfig.texture_channels``): a small fully convolutional patch
discriminator on the high-pass residual of the full-resolution image; its mean patch logit
adds to the image logit.
Self-supervision: small decoders reconstruct the whole (down-sampled) real image from
the final map and a random quarter of it from the 16-row map; their MSE is added to
the discriminator loss on reals (FastGAN uses LPIPS; MSE needs no pretrained weights).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import SavableModel
from .config import BASE_ROWS, ModelConfig
from .layers import (GLU, CondBatchNorm2d, LabelEmbedding, box_mean3, channels_at, check_labels, circular_filter,
                     conv1x1, glu, init_weights, latent_noise, line_kernels, upsample_conv3x3)


class UpBlock(nn.Module):
    """x2 upsample (nearest, or bilinear), then ``convs`` x (3x3 conv -> cond BN -> GLU)."""

    def __init__(self, cin: int, cout: int, cond_dim: int, convs: int = 1, smooth: bool = False,
                 noise: bool = False):
        super().__init__()
        self.smooth = smooth  # bilinear rather than nearest upsampling (layers.upsample_conv3x3)
        # per-channel strength of the input noise map; starts small but nonzero (from 0 it
        # stayed unused in a 10-minute CPU run)
        self.noise_strength = nn.Parameter(torch.full((cin,), NOISE_INIT)) if noise else None
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(convs):
            self.convs.append(nn.Conv2d(cin if i == 0 else cout, 2 * cout, 3, 1, 1, bias=False))
            self.norms.append(CondBatchNorm2d(2 * cout, cond_dim))

    @property
    def foldable(self) -> bool:
        return all(n.foldable for n in self.norms)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None, gate: torch.Tensor | None = None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """``noise`` [B, 1, h, w]: the input noise map (blocks built with ``noise``).
        ``gate`` [B, cout]: SLE channel gates multiplied into the output."""
        if self.noise_strength is not None:
            if noise is None:
                raise ValueError("this block takes a noise map")
            x = x + self.noise_strength.to(x.dtype)[None, :, None, None] * noise
        # the upsample + first conv run at low resolution (layers.upsample_conv3x3)
        x = glu(self.norms[0](upsample_conv3x3(x, self.convs[0].weight, smooth=self.smooth), c))
        for conv, norm in zip(self.convs[1:], self.norms[1:]):
            x = glu(norm(conv(x), c))
        if gate is not None:
            x = x * gate[:, :, None, None]
        return x


NOISE_INIT = 0.1


class SLE(nn.Module):
    """Skip-layer excitation: channel gates for ``big`` computed from ``small``."""

    def __init__(self, c_small: int, c_big: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Conv2d(c_small, c_big, 4, 1, 0, bias=False), nn.SiLU(),
            nn.Conv2d(c_big, c_big, 1, 1, 0, bias=False), nn.Sigmoid(),
        )

    def gate(self, small: torch.Tensor) -> torch.Tensor:
        """Channel gates ``[B, c_big]`` in (0, 1)."""
        return self.net(small).flatten(1)

    def forward(self, small: torch.Tensor, big: torch.Tensor) -> torch.Tensor:
        return big * self.net(small)


class StrandNoise(nn.Module):
    """The strand input: sparse oriented dashes of the full-resolution noise map, added to
    the last feature map through gates the generator computes per pixel.

    The map is filtered by ``orientations`` thin line kernels (:func:`layers.line_kernels`:
    15 px long, ~1.6 px wide at half maximum) and rectified above 1.5 SD, so each
    orientation keeps ~7 % of the pixels as short bright dashes; a 1x1 conv of the features
    and a sigmoid choose, per pixel, how much of each orientation to let in, and a 1x1 conv
    mixes the gated dashes into the channels. The films' strands are thin and long, and
    oriented by where they lie in the breast; 3x3 convs of white noise give an isotropic
    grain instead. At more than 128 rows the dashes are drawn at 128-row scale (the map
    averaged in ``s x s`` blocks, ``s = rows // 128``) and upsampled bilinearly, so they
    keep the strands' size in the breast at every resolution. Linear filtering alone (no
    rectification) gave a dense hatching everywhere (docs/realism-log.md, "The strand input")."""

    SIZE, SIGMA_ALONG, SIGMA_ACROSS = 15, 4.0, 0.7
    THRESHOLD, GAIN = 1.5, 4.0  # rectification point in SD of the filtered noise; then x4 (RMS ~0.6)

    def __init__(self, channels: int, orientations: int, rows: int):
        super().__init__()
        self.scale = max(1, rows // 128)
        self.gate = nn.Conv2d(channels, orientations, 1)
        self.mix = nn.Conv2d(orientations, channels, 1, bias=False)
        nn.init.normal_(self.mix.weight, 0.0, 0.1)  # small: the dashes start faint
        # derived from the config, so not saved with the weights
        self.register_buffer("kernels", line_kernels(orientations, self.SIZE, self.SIGMA_ALONG, self.SIGMA_ACROSS),
                             persistent=False)

    def dashes(self, noise: torch.Tensor, unshuffle: bool = False) -> torch.Tensor:
        """``[B, orientations, H, W]`` rectified oriented dashes of a ``[B, 1, H, W]`` noise
        map (with ``unshuffle``: ``F.pixel_unshuffle`` of them by 2), in the noise's dtype;
        computed in float32 (fixed inputs: no gradient). The map is filtered as a torus
        (circular padding): the dashes have the same statistics at the edges as inside."""
        s = self.scale
        with torch.no_grad():
            n = noise.float() if s == 1 else F.avg_pool2d(noise.float(), s) * s  # unit variance again
            # GAIN * relu(filtered - THRESHOLD) as a filter with a bias, rectified in place
            bias = self.kernels.new_full((self.kernels.shape[0],), -self.GAIN * self.THRESHOLD)
            d = circular_filter(n, self.kernels * self.GAIN, bias, unshuffle=unshuffle and s == 1).relu_()
            if s > 1:
                d = F.interpolate(d, size=noise.shape[-2:], mode="bilinear", align_corners=False)
                d = F.pixel_unshuffle(d, 2) if unshuffle else d
            return d.to(noise.dtype)

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        gates = torch.sigmoid(conv1x1(x, self.gate.weight, self.gate.bias))
        return x + conv1x1(gates * self.dashes(noise).to(x.dtype), self.mix.weight)


def sle_pairs(levels: int) -> list[tuple[int, int]]:
    """(source, target) levels joined by SLE: 4 levels apart, or base -> top when shallower."""
    pairs = [(i, i + 4) for i in range(0, levels - 3)]
    if not pairs and levels >= 2:
        pairs = [(0, levels)]
    return pairs


class FastGANGenerator(SavableModel, nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.z_dim = cfg.z_dim
        self.resolution = cfg.resolution  # the frame (the models contract)
        self.content_resolution = cfg.content_resolution  # what the layers draw (config.py)
        self.label_axes = cfg.label_axes
        n = cfg.levels
        ch = [channels_at(i, n, cfg.g_channels, cfg.max_channels) for i in range(n + 1)]
        cond_dim = cfg.embed_dim if self.label_axes else 0
        self.embed = LabelEmbedding(self.label_axes, cond_dim) if cond_dim else None
        self.base_hw = cfg.base_size
        self.init = nn.Linear(cfg.z_dim + cond_dim, 2 * ch[0] * self.base_hw[0] * self.base_hw[1], bias=False)
        self.init_norm = CondBatchNorm2d(2 * ch[0], cond_dim)
        # two convs per block at low resolution (rows <= 32), one above: FastGAN's
        # UpBlockComp / UpBlock split, cheap at the top.
        self.smooth = cfg.upsample == "bilinear"
        self.noise_from = n + 1 - min(cfg.noise_blocks, n)  # first block with a noise input
        self.blocks = nn.ModuleList(
            UpBlock(ch[i - 1], ch[i], cond_dim, convs=2 if BASE_ROWS * 2 ** i <= 32 else 1,
                    smooth=self.smooth, noise=i >= self.noise_from) for i in range(1, n + 1)
        )
        self.pairs = sle_pairs(n)
        self.sle = nn.ModuleList(SLE(ch[a], ch[b]) for a, b in self.pairs)
        # full-resolution noise before the to-image conv (ModelConfig.output_noise)
        self.out_noise_strength = nn.Parameter(torch.full((ch[n],), NOISE_INIT)) if cfg.output_noise else None
        # a nonlinear full-resolution layer after the output noise (ModelConfig.output_grain)
        self.grain = nn.Conv2d(ch[n], 2 * ch[n], 3, 1, 1) if cfg.output_grain else None
        self.to_img = nn.Conv2d(ch[n], 1, 3, 1, 1)
        init_weights(self)
        # after init_weights: its own initialisation (PyTorch's default for the gate)
        self.strands = StrandNoise(ch[n], cfg.strands, cfg.resolution[0]) if cfg.strands else None

    def inputs(self, z: torch.Tensor, labels: dict[str, torch.Tensor] | None
               ) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
        """(the initial map before its norm, the label embedding or None, the noise maps of
        the noise blocks, then the output noise map if any): what both this forward and the
        folded inference form start from."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [B, {self.z_dim}], got {tuple(z.shape)}")
        hb, wb = self.base_hw
        shapes = [(hb << (i - 1), wb << (i - 1)) for i in range(self.noise_from, len(self.blocks) + 1)]
        if self.out_noise_strength is not None or self.strands is not None:
            # the full-resolution map (output noise, strands), appended: the blocks' maps stay as they were
            shapes.append(tuple(self.content_resolution))
        noise = latent_noise(z, shapes)
        c = None
        if self.embed is not None:
            c = self.embed(check_labels(labels, self.label_axes, z.shape[0]), z.device).to(z.dtype)
            z = torch.cat([z, c], 1)
        return self.init(z).view(z.shape[0], -1, *self.base_hw), c, noise

    def forward(self, z: torch.Tensor, labels: dict[str, torch.Tensor] | None = None,
                frame: bool = True) -> torch.Tensor:
        """Images ``[B, 1, H, W]`` in [-1, 1]; ``frame=False``: the content only
        (``[B, 1, H, content width]``, what training compares with the films)."""
        x, c, noise = self.inputs(z, labels)
        x = glu(self.init_norm(x, c))
        feats = [x]
        gates = {b: (a, m) for (a, b), m in zip(self.pairs, self.sle)}
        for i, block in enumerate(self.blocks, start=1):
            gate = None
            if i in gates:
                a, m = gates[i]
                gate = m.gate(feats[a])
            x = block(x, c, gate=gate, noise=noise[i - self.noise_from] if i >= self.noise_from else None)
            feats.append(x)
        y = torch.tanh(self.to_img(self.output_features(x, noise)))
        return self.to_frame(y) if frame else y

    def to_frame(self, y: torch.Tensor) -> torch.Tensor:
        """Content ``[B, 1, H, content width]`` -> frame ``[B, 1, H, W]``: background (-1)
        to the right, where the ingest leaves the films' frames empty."""
        pad = self.resolution[1] - y.shape[-1]
        return F.pad(y, (0, pad), value=-1.0) if pad > 0 else y

    def output_features(self, x: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
        """The last feature map as the to-image conv sees it: plus the output noise, plus
        the gated strand dashes, plus the grain layer's GLU of that."""
        x = self.add_output_noise(x, noise)
        if self.strands is not None:
            x = self.strands(x, noise[-1])
        return x if self.grain is None else x + glu(self.grain(x))

    def add_output_noise(self, x: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
        if self.out_noise_strength is None:
            return x
        return x + self.out_noise_strength.to(x.dtype)[None, :, None, None] * noise[-1].to(x.dtype)


class DownBlock(nn.Module):
    """FastGAN DownBlockComp: (4x4 s2 conv, BN, lrelu, 3x3 conv, BN, lrelu) averaged with
    (avgpool, 1x1 conv, BN, lrelu)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2),
        )
        self.direct = nn.Sequential(
            nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.direct(x)) / 2


class TextureHead(nn.Module):
    """Patch discriminator on the high-pass residual (image minus its 3x3 mean) at full
    resolution. The residual is pixel-unshuffled (2x2 -> 4 channels, lossless), then a 3x3
    conv, a 4x4 stride-2 conv (receptive field ~14 px) and a 1x1 conv give patch logits,
    averaged. It sees the texture that the main path (whose first conv halves the
    resolution with a few channels) misses, and nothing of the layout, which the main path
    judges. Unshuffling first keeps it cheap: full-resolution convs with few channels are
    memory-bound on a CPU."""

    GAIN = 10.0  # the residual is ~0.03 in [-1, 1] units: bring it to O(1)

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(4, width, 3, 1, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hp = (x - box_mean3(x)) * self.GAIN
        return self.net(F.pixel_unshuffle(hp, 2)).mean(dim=(1, 2, 3))


class Decoder(nn.Module):
    """Small decoder for the self-supervised reconstruction: ``ups`` x (upsample, conv,
    BN, GLU), then a 1-channel tanh image."""

    def __init__(self, cin: int, ups: int, width: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        c = cin
        for i in range(ups):
            cout = max(8, width // 2 ** i)
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, 2 * cout, 3, 1, 1, bias=False),
                       nn.BatchNorm2d(2 * cout), GLU()]
            c = cout
        layers += [nn.Conv2d(c, 1, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FastGANDiscriminator(SavableModel, nn.Module):
    role = "discriminator"

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.label_axes = cfg.label_axes
        n = cfg.levels
        ch = [channels_at(i, n, cfg.d_channels, cfg.max_channels) for i in range(n + 1)]
        # level n: full resolution; the first conv halves it (no norm), then down-blocks.
        self.stem = nn.Sequential(nn.Conv2d(1, ch[n - 1], 4, 2, 1), nn.LeakyReLU(0.2))
        self.blocks = nn.ModuleList(DownBlock(ch[i], ch[i - 1]) for i in range(n - 1, 0, -1))
        c_out = ch[0]
        self.head = nn.Linear(c_out, 1)
        self.proj = nn.ModuleDict({a: nn.Embedding(len(c), c_out) for a, c in self.label_axes.items()})
        # reconstruction targets (ModelConfig.recon_rows): whole image from the final map,
        # a quarter from the 16-row map (when the image has >= 32 rows)
        self.rec_rows = min(cfg.resolution[0], cfg.recon_rows)
        self.recon_max = 8  # reconstruct at most this many reals per batch (cost)
        self.dec_big = Decoder(c_out, (self.rec_rows // BASE_ROWS).bit_length() - 1)
        self.dec_part = Decoder(ch[1], (self.rec_rows // BASE_ROWS).bit_length() - 1) if n >= 2 else None
        self.texture = TextureHead(cfg.texture_channels) if cfg.texture_channels else None
        init_weights(self)

    def forward(self, x: torch.Tensor, labels: dict[str, torch.Tensor] | None = None, recon_n: int = 0,
                gen: torch.Generator | None = None, x_texture: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits [B] and the reconstruction loss on the first ``recon_n`` images (0 if none).

        Labels use -1 for unknown classes: those axes add no projection term.
        ``gen`` (CPU generator) picks the reconstructed quarter. ``x_texture``: what the
        texture head sees instead of ``x`` (the trainer passes the images before the
        resampling augmentations blur their texture; ``TrainConfig.texture_view``).
        """
        labels = check_labels(labels, self.label_axes, x.shape[0], allow_unknown=True)
        h = self.stem(x)
        feats = [h]
        for block in self.blocks:
            h = block(h)
            feats.append(h)
        phi = F.leaky_relu(h, 0.2).mean(dim=(2, 3))
        out = self.head(phi).squeeze(1)
        if self.texture is not None:
            out = out + self.texture(x if x_texture is None else x_texture)
        for a, table in self.proj.items():
            y = labels[a].to(x.device)
            e = table(y.clamp(min=0)) * (y >= 0).unsqueeze(1).to(phi.dtype)
            out = out + (e * phi).sum(1)
        rec = out.new_zeros(())
        if recon_n > 0:
            k = min(recon_n, self.recon_max)
            rec = self._recon_loss(x[:k], h[:k], feats[-2][:k] if len(feats) >= 2 else None, gen)
        return out, rec

    def _recon_loss(self, x: torch.Tensor, f8: torch.Tensor, f16: torch.Tensor | None,
                    gen: torch.Generator | None) -> torch.Tensor:
        big = self.dec_big(f8)
        target = F.interpolate(x.float(), size=big.shape[-2:], mode="area")
        loss = F.mse_loss(big.float(), target)
        if self.dec_part is not None and f16 is not None:
            q = int(torch.randint(0, 4, (1,), generator=gen))
            fh, fw = f16.shape[-2] // 2, f16.shape[-1] // 2
            r, c = divmod(q, 2)
            part = self.dec_part(f16[:, :, r * fh:(r + 1) * fh, c * fw:(c + 1) * fw])
            xh, xw = x.shape[-2] // 2, x.shape[-1] // 2
            crop = x[:, :, r * xh:(r + 1) * xh, c * xw:(c + 1) * xw].float()
            loss = loss + F.mse_loss(part.float(), F.interpolate(crop, size=part.shape[-2:], mode="area"))
        return loss
