"""GAN families for grayscale, non-square, label-conditioned mammograms.

``fastgan`` (default): FastGAN-lite with skip-layer excitation, a self-supervised
reconstructing projection discriminator, trained with DiffAugment + adaptive p, lazy R1
and a generator EMA. ``dcgan``: the 2016 DCGAN baseline.

Every generator has ``z_dim``, ``resolution`` (H, W), ``label_axes`` and
``forward(z, labels) -> [B, 1, H, W]`` in [-1, 1].
"""
from __future__ import annotations

from typing import Any

from torch import nn

from .config import FAMILIES, FAMILY_DEFAULTS, ModelConfig, as_model_config, check_condition, check_resolution
from .layers import count_parameters

__all__ = [
    "FAMILIES", "FAMILY_DEFAULTS", "ModelConfig", "build_generator", "build_discriminator",
    "check_condition", "check_resolution", "count_parameters",
]


def build_generator(model_config: "dict[str, Any] | ModelConfig") -> nn.Module:
    """The generator described by ``model_config`` (a :class:`ModelConfig` or its dict)."""
    cfg = as_model_config(model_config)
    if cfg.family == "fastgan":
        from .fastgan import FastGANGenerator

        return FastGANGenerator(cfg)
    from .dcgan import DCGANGenerator

    return DCGANGenerator(cfg)


def build_discriminator(model_config: "dict[str, Any] | ModelConfig") -> nn.Module:
    """The discriminator paired with :func:`build_generator`; ``forward(x, labels,
    recon_n=0, gen=None) -> (logits [B], auxiliary loss)``."""
    cfg = as_model_config(model_config)
    if cfg.family == "fastgan":
        from .fastgan import FastGANDiscriminator

        return FastGANDiscriminator(cfg)
    from .dcgan import DCGANDiscriminator

    return DCGANDiscriminator(cfg)
