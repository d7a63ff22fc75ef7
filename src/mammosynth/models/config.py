"""Model configuration shared by every GAN family (one frozen dataclass, JSON round-trip).

Resolution rule (both families): the generator starts from an 8-row base map and doubles
``n`` times, so ``H`` must be a power of two >= 16 and ``W`` a multiple of ``H / 8``.
128x80, 256x160, 512x320, 1024x640 (mammogram aspect 1.6) and 128x128 all qualify.

Content width (fastgan): a frame wider than the films' breasts (128x128 for mini-MIAS,
whose breasts fill ~60 of the 128 columns once ingested chest wall left) is mostly
background. ``content_width`` builds the networks for ``H x content_width``; the generator
pads its output on the right with background to the frame ``H x W``, so the models contract
(``[B, 1, H, W]``) holds. :func:`mammosynth.training.data.content_width_for` chooses it
from the training films.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..data.schema import CONDITION_AXES, check_fields

FAMILIES = ("fastgan", "dcgan")  # the GAN families (ModelConfig)
#: every generator family; ``diffusion`` has its own config (models.diffusion.DiffusionConfig)
ALL_FAMILIES = (*FAMILIES, "diffusion")
BASE_ROWS = 8

#: Per-family architecture defaults (``g_channels``/``d_channels``: channels of the
#: highest-resolution hidden feature map, doubling per halving up to ``max_channels``).
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    # FastGAN-lite: narrow high-resolution layers so 128 px trains on 2 CPU cores.
    # Bilinear up-blocks, noise inputs and the discriminator's texture head: parenchymal
    # texture instead of smooth tissue (README, "Realism").
    "fastgan": dict(z_dim=128, g_channels=4, d_channels=4, max_channels=64, embed_dim=32, upsample="bilinear",
                    noise_blocks=3, texture_channels=16, output_noise=True, output_grain=True),
    # DCGAN (Radford et al. 2016): ngf = ndf = 64 at H/2, doubling to 512, z of 100.
    "dcgan": dict(z_dim=100, g_channels=64, d_channels=64, max_channels=512, embed_dim=0),
}


def check_resolution(resolution: tuple[int, int] | list[int]) -> tuple[int, int]:
    """Validate ``(H, W)`` against the resolution rule; return it as a tuple of ints."""
    try:
        h, w = (int(v) for v in resolution)
    except (TypeError, ValueError):
        raise ValueError(f"resolution must be two integers H W, got {resolution!r}") from None
    if h < 16 or h & (h - 1):
        raise ValueError(f"resolution {h}x{w}: height must be a power of two >= 16 (e.g. 128x80, 256x160)")
    step = h // BASE_ROWS
    if w < step or w % step:
        raise ValueError(
            f"resolution {h}x{w}: width must be a positive multiple of height/8 = {step} "
            f"(e.g. {h}x{step * 5} for the mammogram aspect, or {h}x{h})"
        )
    return h, w


def check_condition(condition: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """Parse ``"density,finding"`` (or a sequence) into known condition axes, schema order."""
    if condition is None:
        return ()
    items = [c.strip() for c in condition.split(",")] if isinstance(condition, str) else [str(c) for c in condition]
    items = [c for c in items if c]
    for c in items:
        if c not in CONDITION_AXES:
            raise ValueError(f"unknown condition axis {c!r}; expected some of {tuple(CONDITION_AXES)}")
    if len(set(items)) != len(items):
        raise ValueError(f"condition axis given twice in {items}")
    return tuple(a for a in CONDITION_AXES if a in items)


UPSAMPLE_MODES = ("bilinear", "nearest")
#: fields added after runs were first written, with the value a saved config without
#: them was trained with
LEGACY = {"upsample": "nearest", "noise_blocks": 0, "texture_channels": 0, "output_noise": False,
          "output_grain": False, "strands": 0, "content_width": 0, "recon_rows": 64}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a generator/discriminator pair. Build with :meth:`for_family`."""

    family: str = "fastgan"
    resolution: tuple[int, int] = (128, 80)
    condition: tuple[str, ...] = ()
    z_dim: int = 128
    g_channels: int = 4
    d_channels: int = 4
    max_channels: int = 64
    embed_dim: int = 32  # class-embedding width (fastgan); dcgan uses one-hot concatenation
    #: fastgan up-blocks: "bilinear" (the conv sees a bilinearly upsampled map) or "nearest"
    #: (FastGAN's original). With noise inputs, nearest turns the noise into a period-2
    #: cross-hatch; bilinear gives isotropic texture. Without noise inputs bilinear gave
    #: even smoother tissue than nearest.
    upsample: str = "bilinear"
    #: fastgan: the top ``noise_blocks`` up-blocks get a per-pixel noise map added to their
    #: input with learned per-channel strengths (StyleGAN's noise inputs: stochastic
    #: detail such as parenchymal texture that a deterministic upsampling path renders
    #: smooth). The noise is drawn from the latent (``layers.latent_noise``), so an image
    #: stays a pure function of ``(z, labels)``. 0 = none (runs written before this field).
    noise_blocks: int = 3
    #: fastgan: channels of the discriminator's full-resolution texture head, a small
    #: patch discriminator on the high-pass residual whose mean patch logit adds to the
    #: image logit (the main path halves the resolution in its first conv and barely
    #: sees fine texture). 0 = none (runs written before this field).
    texture_channels: int = 16
    #: fastgan: a full-resolution noise map added (learned strength per channel) to the last
    #: feature map before the to-image conv. The noise inputs of the up-blocks enter before
    #: their bilinear upsampling, so without it nothing stochastic reaches the finest octave
    #: (the fakes' power above ~0.25 cycles/pixel was 1000x below the films'). False: runs
    #: written before this field.
    output_noise: bool = True
    #: fastgan: a full-resolution 3x3 conv and GLU whose output adds to the last feature map
    #: after the output noise, before the to-image conv. Without it the output noise reaches
    #: the image through linear convs only, so the finest grain is Gaussian and isotropic
    #: (README, "Local texture statistics"); the GLU lets the generator shape it into specks
    #: and short strands. False: runs written before this field.
    output_grain: bool = True
    #: fastgan: orientations of the strand input (``fastgan.StrandNoise``): the
    #: full-resolution noise map filtered by thin oriented line kernels and rectified, so
    #: that only sparse bright dashes remain, then added to the last feature map through
    #: per-pixel gates that the generator computes. The films' fibrous strands are thin (a
    #: pixel at 128 rows) and long; 3x3 convs of white noise make an isotropic grain, not
    #: lines. 0 = none (runs written before this field).
    strands: int = 8
    #: fastgan: columns the networks are built for (module docstring); the generator pads
    #: the rest of the frame with background. 0 = the whole width. Training chooses it from
    #: the films (``TrainConfig.content``); a multiple of H/8, at most W.
    content_width: int = 0
    #: fastgan: rows of the discriminator's self-supervised reconstructions (the whole
    #: image from its 8-row map, a quarter from its 16-row map; capped at the image's
    #: rows). At 32 rows instead of 64 the decoders ask D's features for the breast's
    #: shape and tissue layout rather than detail the texture head already judges: fewer
    #: broken outlines at 128 rows and ~1.1x the images per CPU-minute, detectability
    #: about the same (README, "Realism"). 64: runs written before this field. A power
    #: of two >= 8.
    recon_rows: int = 32

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown model family {self.family!r}; expected one of {FAMILIES}")
        if self.upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {self.upsample!r}")
        object.__setattr__(self, "resolution", check_resolution(self.resolution))
        object.__setattr__(self, "condition", check_condition(self.condition))
        for name in ("z_dim", "g_channels", "d_channels", "max_channels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"model {name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("noise_blocks", "texture_channels", "strands", "content_width"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"model {name} must be >= 0, got {getattr(self, name)!r}")
        if self.recon_rows < BASE_ROWS or self.recon_rows & (self.recon_rows - 1):
            raise ValueError(f"model recon_rows must be a power of two >= {BASE_ROWS}, got {self.recon_rows!r}")
        h, w = self.resolution
        if self.content_width and (self.content_width > w or self.content_width % (h // BASE_ROWS)):
            raise ValueError(f"content_width {self.content_width}: must be a multiple of height/8 = "
                             f"{h // BASE_ROWS} and at most the width {w} (0: the whole width)")
        if self.content_width == w:
            object.__setattr__(self, "content_width", 0)
        if self.family != "fastgan":  # fastgan options: other families have neither
            object.__setattr__(self, "noise_blocks", 0)
            object.__setattr__(self, "texture_channels", 0)
            object.__setattr__(self, "output_noise", False)
            object.__setattr__(self, "output_grain", False)
            object.__setattr__(self, "strands", 0)
            object.__setattr__(self, "content_width", 0)
        if self.family == "fastgan" and self.condition and self.embed_dim < 1:
            raise ValueError("fastgan with conditioning needs embed_dim >= 1")

    @classmethod
    def for_family(cls, family: str = "fastgan", **overrides: Any) -> "ModelConfig":
        """The family's default architecture with ``overrides`` applied (None values ignored)."""
        if family not in FAMILY_DEFAULTS:
            raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")
        kw = dict(FAMILY_DEFAULTS[family])
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(family=family, **kw)

    @property
    def label_axes(self) -> dict[str, tuple[str, ...]]:
        """Conditioned axis -> class names (a subset of :data:`CONDITION_AXES`)."""
        return {a: CONDITION_AXES[a] for a in self.condition}

    @property
    def levels(self) -> int:
        """Number of x2 upsamplings from the 8-row base to the full resolution."""
        return (self.resolution[0] // BASE_ROWS).bit_length() - 1

    @property
    def content_resolution(self) -> tuple[int, int]:
        """``(H, content width)``: what the networks are built for (the frame without the
        background padding on the right)."""
        h, w = self.resolution
        return h, self.content_width or w

    @property
    def base_size(self) -> tuple[int, int]:
        h, w = self.content_resolution
        return BASE_ROWS, w * BASE_ROWS // h

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["resolution"] = list(self.resolution)
        d["condition"] = list(self.condition)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        check_fields(cls, d, "model config")
        kw = dict(d)
        for name, value in LEGACY.items():  # runs written before these fields existed
            kw.setdefault(name, value)
        if "resolution" in kw:
            kw["resolution"] = tuple(kw["resolution"])
        if "condition" in kw:
            kw["condition"] = tuple(kw["condition"])
        return cls(**kw)


def as_model_config(cfg: "dict[str, Any] | ModelConfig") -> ModelConfig:
    return cfg if isinstance(cfg, ModelConfig) else ModelConfig.from_dict(cfg)


def model_config_from_dict(d: dict[str, Any]) -> "ModelConfig | Any":
    """The config a saved model dict describes: a :class:`ModelConfig` for the GANs, a
    :class:`~mammosynth.models.diffusion.DiffusionConfig` for ``family: diffusion``."""
    if isinstance(d, dict) and d.get("family") == "diffusion":
        from .diffusion import DiffusionConfig

        return DiffusionConfig.from_dict(d)
    return ModelConfig.from_dict(d)


def config_for_family(family: str, **overrides: Any) -> "ModelConfig | Any":
    """The family's default config with ``overrides`` applied (None values ignored; fields
    the family lacks are ignored too, so one CLI namespace serves every family)."""
    if family == "diffusion":
        from .diffusion import DiffusionConfig

        return DiffusionConfig.for_family(family, **overrides)
    names = {f.name for f in dataclasses.fields(ModelConfig)}
    return ModelConfig.for_family(family, **{k: v for k, v in overrides.items() if k in names})
