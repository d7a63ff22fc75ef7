"""Presets: model widths, batch and mixed precision for the hardware a run trains on.

A preset is a layer of defaults between the family's and the caller's: family defaults
< preset < values the caller gives. :func:`preset_config` is the one way to apply one (the
CLI's ``--preset`` uses it); it records the resolved name in :attr:`TrainConfig.preset`,
hence in the run's ``config.json`` and checkpoints. It is a constructor rather than a
:class:`TrainConfig` field acting in :meth:`TrainConfig.resolved` because a
:class:`ModelConfig` holds concrete widths: only a constructor still sees which widths
the caller gave.

Presets size ``fastgan`` and ``diffusion`` (and set amp, which is precision, not recipe):
``dcgan`` keeps its 2016 recipe (64 channels doubling to 512, batch 64) under every preset.
For ``diffusion`` a preset sets the UNet's channels per level (``channels``), ResNet layers
per block, the levels with self-attention and the batch; the training recipe (AdamW 2e-4,
EMA, label dropout) stays the family's.

Widths (``g_channels``/``d_channels``: channels at full resolution, doubling per halving up
to ``max_channels``). FastGAN (Liu et al. 2021, ngf = ndf = 64) has 32 channels at 256 px,
16 at 512 and 8 at 1024, doubling to 512 at 8x8. Memory and GFLOP are
:mod:`mammosynth.models.cost` estimates, conditioned on three label axes (the README
table, ``benchmarks/presets.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..models.config import ModelConfig, config_for_family
from .config import TrainConfig
from .distributed import uses_cuda


@dataclass(frozen=True)
class Preset:
    """Values a preset gives a run; ``None``: the family default
    (``models.config.FAMILY_DEFAULTS``, ``training.config.TRAIN_DEFAULTS``)."""

    name: str
    hardware: str  # what it is for, one line
    g_channels: int | None = None
    d_channels: int | None = None
    max_channels: int | None = None
    batch: int | None = None
    amp: str = TrainConfig.amp
    #: diffusion: UNet channels per level (full resolution first), ResNet layers per block,
    #: lowest levels with self-attention, batch (``DiffusionConfig``, ``TrainConfig.batch``)
    unet_channels: tuple[int, ...] | None = None
    unet_layers: int | None = None
    unet_attention: int | None = None
    unet_batch: int | None = None

    def model_fields(self, family: str) -> dict[str, Any]:
        if family == "fastgan":
            return {"g_channels": self.g_channels, "d_channels": self.d_channels, "max_channels": self.max_channels}
        if family == "diffusion":
            return {"channels": self.unet_channels, "layers_per_block": self.unet_layers,
                    "attention_levels": self.unet_attention}
        return {}

    def train_fields(self, family: str) -> dict[str, Any]:
        batch = {"fastgan": self.batch, "diffusion": self.unet_batch}.get(family)
        return {"batch": batch, "amp": self.amp}


PRESETS: dict[str, Preset] = {
    # the family defaults themselves (no numbers here: they follow FAMILY_DEFAULTS and
    # TRAIN_DEFAULTS): FastGAN-lite, 4 channels at full resolution, sized for 2 CPU cores
    "cpu": Preset("cpu", "a few CPU cores, 128-256 px"),
    # FastGAN's own width at 256 px (32 at full resolution), capped at 256 rather than 512:
    # the 8-32-row layers hold most parameters and little compute. At 512x320 and batch 32
    # training needs ~9 GiB with bf16 (estimate, grain layer included): any 16-24 GB GPU; 8x the cpu
    # preset's channels at 256 px, so texture layers are no longer a few channels wide.
    #
    # diffusion, gpu: the README's suggested widening (64, 128, 256, 256; DDPM's CIFAR UNet
    # has 128, 256, 256, 256) with DDPM's 2 layers per block; still 4 levels, so every size
    # the cpu preset takes (64x40 up) works; attention at the lowest level only (64x40
    # tokens at 512x320). 25 M parameters, 0.7 TFLOP per UNet pass at 512x320. A UNet keeps
    # full-resolution activations for backward in every block: ~1.7 GiB per 512x320 image
    # in bf16, so batch 16: ~7 GiB at 256x160, ~27 GiB at 512x320 (a 40 GB GPU; add
    # ``--accumulate 2`` on a 24 GB one).
    "gpu": Preset("gpu", "one 16-80 GB GPU, 256-512 px", g_channels=32, d_channels=32, max_channels=256, batch=32,
                  unet_channels=(64, 128, 256, 256), unet_layers=2, unet_attention=1, unet_batch=16),
    # 1024x640: 4x FastGAN's 1024-px top width (8), doubling to FastGAN's 512. ~75 GiB at
    # batch 64 with bf16 (estimate; the grain layer's full-resolution activations took it
    # from ~67): an 80 GB GPU with little room for what the estimate leaves out (``--batch
    # 48`` there), an H100/H200 at 94-141 GB with room.
    # 64 channels at full resolution would need ~100 GiB and 3x the compute (3.4 TFLOP
    # per training image), an H200-only configuration for a texture gain not yet measured.
    # diffusion, gpu-large: 5 levels (H and W multiples of 16: 128x80 and up) so that the
    # lowest, attended level of a 1024x640 film is 64x40 (with 4 it would be 128x80:
    # 10 k tokens, ~200 GFLOP per attention layer and image), 64 channels at full
    # resolution (128 there would need ~8 GiB of activations per 1024x640 image in bf16),
    # batch 8: ~57 GiB in bf16 at 1024x640, 100 M parameters (larger batches with
    # ``--accumulate``).
    "gpu-large": Preset("gpu-large", "one 80 GB+ GPU, 1024x640", g_channels=32, d_channels=32, max_channels=512,
                        batch=64, unet_channels=(64, 128, 256, 512, 512), unet_layers=2, unet_attention=1,
                        unet_batch=8),
}
PRESET_CHOICES = ("auto", *PRESETS)


def resolve_preset(name: str, device: str = "auto") -> Preset:
    """The preset called ``name``; ``auto``: ``gpu`` when ``device`` trains on CUDA, else ``cpu``."""
    if name == "auto":
        name = "gpu" if uses_cuda(device) else "cpu"
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESET_CHOICES)}")
    return PRESETS[name]


def preset_config(preset: str = "auto", model: dict[str, Any] | None = None, **fields: Any) -> TrainConfig:
    """A :class:`TrainConfig` from a preset: ``model`` holds :class:`ModelConfig` (or
    ``DiffusionConfig``) fields (``family`` included), ``fields`` the other
    :class:`TrainConfig` fields. Widths, batch and amp left out or ``None`` take the
    preset's values, then the family's.

    >>> preset_config("gpu", model={"resolution": (512, 320)}, minutes=60).model.g_channels
    32
    """
    p = resolve_preset(preset, fields.get("device") or TrainConfig.device)
    model = dict(model or {})
    family = model.pop("family", ModelConfig.family)
    for k, v in p.model_fields(family).items():
        if model.get(k) is None:
            model[k] = v  # None again when the preset leaves it to the family
    for k, v in p.train_fields(family).items():
        if fields.get(k) is None:
            fields[k] = v
    return TrainConfig(model=config_for_family(family, **model), preset=p.name, **fields)
