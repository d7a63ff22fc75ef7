"""Training configuration: one frozen dataclass; ``None`` fields take the family default.

:meth:`TrainConfig.resolved` fills every ``None`` the family uses from :data:`TRAIN_DEFAULTS`
(and the R1 heuristic), so the ``config.json`` of a run and the ``config`` of its
checkpoints hold concrete numbers for every setting that acts (GAN-only fields stay
``None`` in a diffusion run, and ``lr`` / ``label_dropout`` in a GAN run).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..data.schema import check_fields
from ..models.augment import parse_ops
from ..models.config import ModelConfig, model_config_from_dict

if TYPE_CHECKING:
    from .resample import ResampleConfig

LOSSES = ("hinge", "bce")
AMP_MODES = ("auto", "off", "bf16", "fp16")
BUDGET_CLOCKS = ("wall", "cpu")
TEXTURE_VIEWS = ("augmented", "exact")
D_BATCHES = ("split", "mixed")
CONTENT_MODES = ("auto", "full")
#: fastgan's spectral matching weight (training.spectral): the log-spectrum loss of a
#: 10-minute run's fakes was ~15 against ~0.05 between batches of real films
SPECTRAL_WEIGHT = 0.1

#: Family defaults for the optimisation. fastgan: hinge loss, DiffAugment with ADA p,
#: lazy R1, EMA. dcgan: the 2016 recipe (non-saturating BCE, Adam 2e-4, beta1 0.5,
#: no augmentation, no regularisation, no EMA).
TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "fastgan": dict(batch=8, lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.99, loss="hinge",
                    augment="translation,scale,brightness,contrast,cutout", ada_target=0.6, ada_kimg=5.0,
                    ada_interval=4, r1_gamma=None, r1_interval=16, ema_kimg=10.0, recon_weight=1.0,
                    spectral_weight=SPECTRAL_WEIGHT, d_batch="mixed", quality_n=128, resample_copies=4),
    "dcgan": dict(batch=64, lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, loss="bce", augment="",
                  ada_target=0.0, ada_kimg=5.0, ada_interval=4, r1_gamma=0.0, r1_interval=16, ema_kimg=0.0,
                  recon_weight=0.0, spectral_weight=0.0, d_batch="split", quality_n=128, resample_copies=0),
    # diffusion: AdamW 2e-4 (small UNet, small data), EMA as fastgan's, 10 % label dropout
    # (classifier-free guidance); a smaller quality score sample: each image costs
    # SNAPSHOT_STEPS x 2 UNet passes (training.diffusion)
    "diffusion": dict(batch=16, lr=2e-4, beta1=0.9, beta2=0.999, ema_kimg=10.0, label_dropout=0.1, quality_n=32,
                      resample_copies=0),
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Stops at ``kimg`` thousand images or after
    ``minutes`` of training in this session, whichever comes first (at least one is set).
    ``batch`` is the global batch (split over ranks)."""

    model: Any = field(default_factory=ModelConfig)  # ModelConfig (GANs) or DiffusionConfig
    minutes: float | None = 10.0
    kimg: float | None = None
    #: what ``minutes`` and ``snapshot_minutes`` count: "wall" time, or "cpu" time of this
    #: process (all its threads): on a shared machine a CPU budget buys the same training
    #: however loaded the machine is (benchmarks compare families at equal CPU minutes)
    budget_clock: str = "wall"
    batch: int | None = None
    seed: int = 0
    name: str | None = None
    lr_g: float | None = None
    lr_d: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    loss: str | None = None
    augment: str | None = None  # comma-separated subset of models.augment.AUGMENT_OPS
    ada_target: float | None = None  # 0 disables the adaptive p (p stays at ada_p0)
    ada_p0: float = 0.0
    ada_kimg: float | None = None
    ada_interval: int | None = None
    r1_gamma: float | None = None  # None: 0.0002 * H * W / batch (StyleGAN2-ADA heuristic)
    r1_interval: int | None = None
    ema_kimg: float | None = None  # 0: G_ema is a plain copy of G
    recon_weight: float | None = None
    #: GANs: weight of the spectral matching loss on G (training.spectral); 0 = off
    spectral_weight: float | None = None
    #: fastgan: what the discriminator's texture head sees: "augmented" (the same images as
    #: the main path) or "exact" (the images before augmentation: ADA's p reaches 1 within
    #: minutes on ~100 films, and its bilinear zoom then blurs every texture it judges)
    texture_view: str = "augmented"
    #: GANs: how reals and fakes go through the discriminator (its BatchNorm normalises
    #: each pass by its own batch statistics): "mixed", one pass of reals and fakes
    #: together in the D step and in the G step, or "split", one pass each (FastGAN's and
    #: DCGAN's recipe; see training.family)
    d_batch: str | None = None
    #: fastgan: "auto" builds the networks for the columns the training films' breasts
    #: occupy (``ModelConfig.content_width``, from ``training.data.content_width_for``) when
    #: the model does not set it, so a square 128x128 frame, mostly background, trains
    #: ~1.3x the images in a budget; "full": the whole frame
    content: str = "auto"
    #: resampled copies of each training film (training.resample): the film warped by a smooth
    #: random displacement and its width scaled, at its stored resolution, then fitted to the
    #: training resolution; films stored below twice that resolution get none. 0 = off
    resample_copies: int | None = None
    resample_displacement: float = 0.02  # the warp's SD at its control points, share of the height
    resample_width: float = 0.1  # the copy's width: the film's times 1 +- up to this
    lr: float | None = None  # diffusion: the UNet's learning rate
    label_dropout: float | None = None  # diffusion: P(all labels null) per image, for guidance
    #: micro-batches per optimiser step (diffusion): the same gradient in less memory
    accumulate: int = 1
    snapshot_minutes: float = 2.0  # grid + quality score + checkpoint, and at the end
    keep: int = 3  # periodic checkpoints kept (best.pt is kept apart)
    grid_cols: int = 8
    quality_n: int | None = None  # images per side for the quality score (family default)
    device: str = "auto"  # auto | cpu | cuda
    #: mixed precision: "auto" (bf16 autocast on GPUs that support it, else fp16 with a
    #: gradient scaler; bf16 on CPUs with bf16 matrix units, Intel AMX; none on other
    #: CPUs), "off", or "bf16" / "fp16" on any device (also to exercise the GPU path on CPU)
    amp: str = "auto"
    #: the preset this config was built from by ``presets.preset_config`` (recorded in
    #: config.json and checkpoints); None: built field by field, or a run from before presets
    preset: str | None = None

    def __post_init__(self) -> None:
        if self.minutes is None and self.kimg is None:
            raise ValueError("set a training budget: minutes or kimg")
        for name in ("minutes", "kimg"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be > 0, got {v!r}")
        if self.batch is not None and self.batch < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")
        if self.loss is not None and self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.augment is not None:
            parse_ops(self.augment)
        if self.content not in CONTENT_MODES:
            raise ValueError(f"content must be one of {CONTENT_MODES}, got {self.content!r}")
        if self.texture_view not in TEXTURE_VIEWS:
            raise ValueError(f"texture_view must be one of {TEXTURE_VIEWS}, got {self.texture_view!r}")
        if self.d_batch is not None and self.d_batch not in D_BATCHES:
            raise ValueError(f"d_batch must be one of {D_BATCHES}, got {self.d_batch!r}")
        if self.budget_clock not in BUDGET_CLOCKS:
            raise ValueError(f"budget_clock must be one of {BUDGET_CLOCKS}, got {self.budget_clock!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if self.preset is not None:
            from .presets import PRESETS  # presets builds TrainConfigs: imported late

            if self.preset not in PRESETS:
                raise ValueError(f"preset must be one of {tuple(PRESETS)} (resolved) or None, got {self.preset!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.keep < 1:
            raise ValueError(f"keep must be >= 1, got {self.keep}")
        if not 0.0 <= self.ada_p0 <= 1.0:
            raise ValueError(f"ada_p0 must be in [0, 1], got {self.ada_p0}")
        if self.snapshot_minutes <= 0:
            raise ValueError(f"snapshot_minutes must be > 0, got {self.snapshot_minutes}")
        if self.accumulate < 1 or (self.batch is not None and self.accumulate > self.batch):
            raise ValueError(f"accumulate must be in 1..batch, got {self.accumulate}")
        if self.label_dropout is not None and not 0.0 <= self.label_dropout < 1.0:
            raise ValueError(f"label_dropout must be in [0, 1), got {self.label_dropout}")
        self.resample_config()  # validates the three resample fields
        if self.quality_n is not None and self.quality_n < 2:
            raise ValueError(f"quality_n must be >= 2, got {self.quality_n}")

    def resolved(self) -> "TrainConfig":
        """A copy with every ``None`` replaced by the family default."""
        defaults = TRAIN_DEFAULTS[self.model.family]
        kw = {k: (defaults[k] if getattr(self, k) is None else getattr(self, k)) for k in defaults}
        if kw.get("r1_gamma", 0) is None:  # per pixel that D sees
            h, w = self.model.content_resolution
            kw["r1_gamma"] = round(0.0002 * h * w / kw["batch"], 6)
        return dataclasses.replace(self, **kw)

    def resample_config(self) -> "ResampleConfig":
        """The resampled copies this config asks for (``resample_copies`` None counts as 0)."""
        from .resample import ResampleConfig

        return ResampleConfig(copies=self.resample_copies or 0, displacement=self.resample_displacement,
                              width=self.resample_width)

    def with_budget(self, minutes: float | None, kimg: float | None) -> "TrainConfig":
        return dataclasses.replace(self, minutes=minutes, kimg=kimg)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        check_fields(cls, d, "train config")
        kw = dict(d)
        if isinstance(kw.get("amp"), bool):  # runs written before amp took a mode
            kw["amp"] = "auto" if kw["amp"] else "off"
        kw["model"] = model_config_from_dict(kw.get("model", {}))
        kw.setdefault("spectral_weight", 0.0)  # runs written before the spectral loss trained without it
        kw.setdefault("d_batch", "split")  # and those written before d_batch with split passes
        kw.setdefault("resample_copies", 0)  # and those written before the copies without them
        return cls(**kw)
