"""DCGAN (Radford, Metz & Chintala 2016): the baseline a plain-GAN thesis would use.

Generator: [z, one-hot labels] -> linear projection to an 8-row map (BN, ReLU) ->
4x4 stride-2 transposed convs (BN, ReLU) -> tanh. Discriminator: 4x4 stride-2 convs
(LeakyReLU 0.2, BN after the first) -> one logit from a full-size final conv.
Label conditioning is by concatenation: one-hot codes join z in G and enter D as
constant input planes (unknown labels -> all-zero planes). Non-square images start
from an 8 x (8 W / H) map instead of 4 x 4.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import SavableModel
from .config import ModelConfig
from .layers import channels_at, check_labels, init_weights, one_hot_labels


class DCGANGenerator(SavableModel, nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.z_dim = cfg.z_dim
        self.resolution = cfg.resolution
        self.label_axes = cfg.label_axes
        n = cfg.levels
        # g_channels is the width at H/2 (the last hidden map)
        ch = [channels_at(i, n - 1, cfg.g_channels, cfg.max_channels) for i in range(n)]
        self.n_cond = sum(len(c) for c in self.label_axes.values())
        self.base_hw = cfg.base_size
        self.project = nn.Sequential(
            nn.Linear(cfg.z_dim + self.n_cond, ch[0] * self.base_hw[0] * self.base_hw[1], bias=False),
        )
        self.project_norm = nn.Sequential(nn.BatchNorm2d(ch[0]), nn.ReLU(True))
        layers: list[nn.Module] = []
        for i in range(1, n):
            layers += [nn.ConvTranspose2d(ch[i - 1], ch[i], 4, 2, 1, bias=False), nn.BatchNorm2d(ch[i]), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ch[n - 1], 1, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, z: torch.Tensor, labels: dict[str, torch.Tensor] | None = None,
                frame: bool = True) -> torch.Tensor:
        """``frame``: as fastgan's; DCGAN always draws the whole frame (no content width)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [B, {self.z_dim}], got {tuple(z.shape)}")
        if self.n_cond:
            y = check_labels(labels, self.label_axes, z.shape[0])
            z = torch.cat([z, one_hot_labels(y, self.label_axes, z.device, z.dtype)], 1)
        x = self.project(z).view(z.shape[0], -1, *self.base_hw)
        return self.net(self.project_norm(x))


class DCGANDiscriminator(SavableModel, nn.Module):
    role = "discriminator"

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.label_axes = cfg.label_axes
        n = cfg.levels
        ch = [channels_at(i, n - 1, cfg.d_channels, cfg.max_channels) for i in range(n)]
        self.n_cond = sum(len(c) for c in self.label_axes.values())
        layers: list[nn.Module] = [nn.Conv2d(1 + self.n_cond, ch[n - 1], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for i in range(n - 1, 0, -1):
            layers += [nn.Conv2d(ch[i], ch[i - 1], 4, 2, 1, bias=False), nn.BatchNorm2d(ch[i - 1]), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ch[0], 1, cfg.base_size, 1, 0, bias=False)]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor, labels: dict[str, torch.Tensor] | None = None, recon_n: int = 0,
                gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits [B] and a zero auxiliary loss (DCGAN has no self-supervision)."""
        if self.n_cond:
            y = check_labels(labels, self.label_axes, x.shape[0], allow_unknown=True)
            code = one_hot_labels(y, self.label_axes, x.device, x.dtype)
            x = torch.cat([x, code[:, :, None, None].expand(-1, -1, *x.shape[-2:])], 1)
        out = self.net(x).flatten()
        return out, out.new_zeros(())
