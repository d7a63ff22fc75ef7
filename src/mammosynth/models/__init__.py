"""GAN families for grayscale, non-square, label-conditioned mammograms.

GANs: ``fastgan`` (default): FastGAN-lite with skip-layer excitation, a self-supervised
reconstructing projection discriminator, trained with DiffAugment + adaptive p, lazy R1
and a generator EMA. ``dcgan``: the 2016 DCGAN baseline.

Every generator has ``z_dim``, ``resolution`` (H, W), ``label_axes`` and
``forward(z, labels) -> [B, 1, H, W]`` in [-1, 1]. GAN networks save and load themselves
(``save_pretrained`` / ``from_pretrained``: :mod:`mammosynth.models.base`).

``diffusion``: a class-conditional ``diffusers.UNet2DModel`` (:mod:`mammosynth.models.diffusion`).
"""
from __future__ import annotations

from typing import Any

from torch import nn

from .config import (ALL_FAMILIES, FAMILIES, FAMILY_DEFAULTS, ModelConfig, as_model_config, check_condition,
                     check_resolution, config_for_family, model_config_from_dict)
from .layers import count_parameters

__all__ = [
    "ALL_FAMILIES", "FAMILIES", "FAMILY_DEFAULTS", "ModelConfig", "build_generator", "build_discriminator",
    "build_network", "config_for_family", "model_config_from_dict",
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


def build_network(config: Any, role: str = "generator") -> nn.Module:
    """The ``role`` network (``generator`` / ``discriminator``) of any family's config; a
    diffusion family's generator is its UNet."""
    if getattr(config, "family", None) == "diffusion":
        if role != "generator":
            raise ValueError("the diffusion family has no discriminator")
        from .diffusion import build_unet

        return build_unet(config)
    if role not in ("generator", "discriminator"):
        raise ValueError(f"role must be generator or discriminator, got {role!r}")
    return build_generator(config) if role == "generator" else build_discriminator(config)
