"""The diffusion family: a class-conditional ``diffusers.UNet2DModel`` on one-channel,
non-square mammograms, trained as a DDPM (Ho et al. 2020) with epsilon or v prediction
(Salimans & Ho 2022).

Conditioning: the conditioned axes (density, finding, view) are folded into one class
index, one digit per axis in a mixed radix in which each axis has one extra "null" digit
(unknown label, or dropped for classifier-free guidance). The UNet adds that class's
learned embedding to its timestep embedding (``num_class_embeds``), so the saved UNet is a
plain diffusers model: ``UNet2DModel.from_pretrained(dir, subfolder="unet")`` loads it.
The all-null class is the unconditional model of classifier-free guidance (Ho & Salimans
2022): training replaces every label of an image with null with probability
``TrainConfig.label_dropout``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from math import prod
from typing import Any

import torch

from ..data.schema import CONDITION_AXES, check_fields

PREDICTIONS = ("epsilon", "v")
BETA_SCHEDULES = ("squaredcos_cap_v2", "linear", "scaled_linear")
#: sampler steps of a pipeline by default (DPM-Solver++ needs about 25 for its quality)
SAMPLE_STEPS = 25

#: architecture defaults: sized for a few CPU cores at 64-128 rows (~1 M parameters, 1.8 GFLOP per
#: UNet pass at 128x80);
#: wider ones (e.g. ``--channels 64,128,256,256``) for a GPU
DIFFUSION_DEFAULTS: dict[str, Any] = dict(channels=(16, 32, 64, 64), layers_per_block=1, attention_levels=1,
                                          norm_groups=8, prediction="v", timesteps=1000,
                                          beta_schedule="squaredcos_cap_v2")


@dataclass(frozen=True)
class DiffusionConfig:
    """Architecture and noise schedule of a conditional denoising UNet."""

    family: str = "diffusion"
    resolution: tuple[int, int] = (128, 80)
    condition: tuple[str, ...] = ()
    #: channels of each UNet level, full resolution first; every level but the last halves
    #: the size, so H and W must be multiples of 2 ** (levels - 1)
    channels: tuple[int, ...] = DIFFUSION_DEFAULTS["channels"]
    layers_per_block: int = 1
    #: the lowest-resolution levels with self-attention (0: none); attention is quadratic in
    #: the pixels of a level, so only the small maps get it
    attention_levels: int = 1
    norm_groups: int = 8  # GroupNorm groups; must divide every channel count
    prediction: str = "v"  # "epsilon" (the noise) or "v" (velocity; steadier at few steps)
    timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"  # diffusers' name of the cosine schedule

    def __post_init__(self) -> None:
        from .config import check_condition

        if self.family != "diffusion":
            raise ValueError(f"DiffusionConfig family must be 'diffusion', got {self.family!r}")
        try:
            h, w = (int(v) for v in self.resolution)
        except (TypeError, ValueError):
            raise ValueError(f"resolution must be two integers H W, got {self.resolution!r}") from None
        ch = tuple(int(c) for c in self.channels)
        if not ch or min(ch) < 1:
            raise ValueError(f"channels must be positive integers, got {self.channels!r}")
        f = 2 ** (len(ch) - 1)
        if h < f or w < f or h % f or w % f:
            raise ValueError(f"resolution {h}x{w}: with {len(ch)} UNet levels H and W must be multiples of {f}")
        if any(c % self.norm_groups for c in ch):
            raise ValueError(f"norm_groups {self.norm_groups} must divide every channel count {ch}")
        if not 0 <= self.attention_levels <= len(ch):
            raise ValueError(f"attention_levels must be in 0..{len(ch)}, got {self.attention_levels}")
        if self.layers_per_block < 1 or self.timesteps < 2:
            raise ValueError("layers_per_block must be >= 1 and timesteps >= 2")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if self.beta_schedule not in BETA_SCHEDULES:
            raise ValueError(f"beta_schedule must be one of {BETA_SCHEDULES}, got {self.beta_schedule!r}")
        object.__setattr__(self, "resolution", (h, w))
        object.__setattr__(self, "channels", ch)
        object.__setattr__(self, "condition", check_condition(self.condition))

    @classmethod
    def for_family(cls, family: str = "diffusion", **overrides: Any) -> "DiffusionConfig":
        kw = {k: v for k, v in overrides.items() if v is not None and k in {f.name for f in dataclasses.fields(cls)}}
        if isinstance(kw.get("channels"), str):
            kw["channels"] = tuple(int(c) for c in kw["channels"].split(","))
        return cls(family=family, **kw)

    @property
    def label_axes(self) -> dict[str, tuple[str, ...]]:
        return {a: CONDITION_AXES[a] for a in self.condition}

    @property
    def num_classes(self) -> int | None:
        """Class embeddings: the product of (classes + null) over the axes; None unconditioned."""
        return prod(len(c) + 1 for c in self.label_axes.values()) if self.condition else None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(resolution=list(self.resolution), condition=list(self.condition), channels=list(self.channels))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DiffusionConfig":
        check_fields(cls, d, "diffusion model config")
        kw = dict(d)
        for k in ("resolution", "condition", "channels"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(**kw)


def build_unet(cfg: DiffusionConfig) -> torch.nn.Module:
    """The ``diffusers.UNet2DModel`` of ``cfg`` (1 channel in and out, ``(H, W)`` samples)."""
    from diffusers import UNet2DModel

    n = len(cfg.channels)
    attn = [i >= n - cfg.attention_levels for i in range(n)]
    down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn)
    up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn))
    # heads of 32 channels, or fewer and wider heads for narrow (test-sized) levels
    attn_ch = [c for c, a in zip(cfg.channels, attn) if a] + [cfg.channels[-1]]
    head = 32 if all(c % 32 == 0 for c in attn_ch) else math.gcd(*attn_ch)
    return UNet2DModel(sample_size=tuple(cfg.resolution), in_channels=1, out_channels=1, down_block_types=down,
                       up_block_types=up, block_out_channels=cfg.channels, layers_per_block=cfg.layers_per_block,
                       norm_num_groups=cfg.norm_groups, attention_head_dim=head, add_attention=cfg.attention_levels > 0,
                       num_class_embeds=cfg.num_classes)


def noise_scheduler(cfg: DiffusionConfig, kind: str = "ddpm"):
    """A diffusers scheduler for ``cfg``'s schedule: ``ddpm`` (training), ``ddim`` or
    ``dpm++`` (DPM-Solver++ 2M; sampling). Sampling timesteps are "trailing" (they start at
    the last training step, whose signal is near zero: Lin et al. 2024)."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    common = dict(num_train_timesteps=cfg.timesteps, beta_schedule=cfg.beta_schedule,
                  prediction_type="v_prediction" if cfg.prediction == "v" else "epsilon", clip_sample=False)
    if kind == "ddpm":
        return DDPMScheduler(**common)
    common.pop("clip_sample")
    if kind == "ddim":
        return DDIMScheduler(**common, clip_sample=False, timestep_spacing="trailing", set_alpha_to_one=False)
    if kind == "dpm++":
        return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2,
                                           timestep_spacing="trailing", final_sigmas_type="zero")
    raise ValueError(f"unknown sampler {kind!r}; expected ddim or dpm++")


def class_index(labels: dict[str, torch.Tensor], label_axes: dict[str, tuple[str, ...]],
                drop: torch.Tensor | None = None) -> torch.Tensor | None:
    """One class index per image from per-axis labels (``-1``: unknown -> the axis's null
    digit); ``drop`` [B] bool: every axis null (the unconditional class). None unconditioned."""
    if not label_axes:
        return None
    out, stride = None, 1
    for axis, classes in label_axes.items():
        y = labels[axis].long()
        k = len(classes)
        digit = torch.where((y >= 0) & (y < k), y, torch.full_like(y, k))
        if drop is not None:
            digit = torch.where(drop.to(digit.device), torch.full_like(digit, k), digit)
        out = digit * stride if out is None else out + digit * stride
        stride *= k + 1
    return out


def null_class(label_axes: dict[str, tuple[str, ...]], n: int, device: Any = None) -> torch.Tensor | None:
    """The unconditional class index, ``n`` times."""
    if not label_axes:
        return None
    idx = sum(len(c) * prod(len(p) + 1 for p in list(label_axes.values())[:i])
              for i, c in enumerate(label_axes.values()))
    return torch.full((n,), idx, dtype=torch.long, device=device)


@torch.no_grad()
def sample(unet: torch.nn.Module, scheduler: Any, noise: torch.Tensor, classes: torch.Tensor | None,
           steps: int = 25, guidance: float = 1.0, label_axes: dict[str, tuple[str, ...]] | None = None
           ) -> torch.Tensor:
    """Denoise ``noise`` [B, 1, H, W] in ``steps`` scheduler steps; returns x0 in about [-1, 1].

    ``guidance`` > 1 (with classes): classifier-free guidance,
    ``pred = uncond + guidance * (cond - uncond)``, both halves in one batch. The scheduler
    must be deterministic (DDIM with eta 0, DPM-Solver++): the image is then a function of
    the weights, the noise and the class.
    """
    scheduler.set_timesteps(steps, device=noise.device)
    x = noise * scheduler.init_noise_sigma
    uncond = null_class(label_axes or {}, noise.shape[0], noise.device) if classes is not None else None
    for t in scheduler.timesteps:
        pred = guided_prediction(unet, scheduler.scale_model_input(x, t), t, classes, uncond, guidance)
        x = scheduler.step(pred, t, x).prev_sample
    return x


@torch.no_grad()
def guided_prediction(unet: torch.nn.Module, x: torch.Tensor, t: Any, classes: torch.Tensor | None,
                      uncond: torch.Tensor | None, guidance: float = 1.0) -> torch.Tensor:
    """The UNet's prediction for ``x`` at step ``t`` (float32): conditional only when
    ``guidance`` is 1 or there are no classes, else ``uncond + guidance * (cond - uncond)``
    with both halves in one batch (``uncond``: the null class, as many as ``classes``)."""
    dtype = next(unet.parameters()).dtype
    if classes is None or uncond is None or guidance == 1.0:
        return unet(x.to(dtype), t, class_labels=classes).sample.float()
    both = torch.cat([classes, uncond]).to(x.device)
    cond, unc = unet(torch.cat([x, x]).to(dtype), t, class_labels=both).sample.float().chunk(2)
    return unc + guidance * (cond - unc)
