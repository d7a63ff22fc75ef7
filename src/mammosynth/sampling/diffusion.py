"""``DiffusionPipeline``: a trained conditional denoising UNet behind the same API as
:class:`~mammosynth.sampling.pipeline.GanPipeline`.

>>> pipe = load_pipeline("runs/00004-diffusion-128x80-density")     # doctest: +SKIP
>>> out = pipe(n=8, density="D", seed=0)                              # doctest: +SKIP
>>> pipe.sampler, pipe.steps, pipe.guidance = "ddim", 20, 2.0         # doctest: +SKIP
>>> pipe.save_pretrained("my-diffusion")                              # doctest: +SKIP

Sampling: DPM-Solver++ 2M (default) or DDIM, deterministic both (eta 0), in ``steps``
steps (25 by default: the usual floor for DPM-Solver++ quality), with classifier-free
guidance ``guidance`` (1 = conditional only; each step then costs one UNet pass per image,
two otherwise). Image ``i`` of seed ``s`` starts from noise drawn from
``torch.Generator().manual_seed(latent_seed(s, i))``: like a GAN image it depends only on
the weights, the sampling settings and ``(s, i)`` (and, by float rounding, on the batch).

Saved layout (diffusers'): ``model_index.json`` (components, and mammosynth's own keys under
``mammosynth``: model config, label axes and frequencies, provenance, sampling defaults),
``unet/`` (``config.json`` + ``diffusion_pytorch_model.safetensors``, loadable by
``diffusers.UNet2DModel.from_pretrained(dir, subfolder="unet")``) and ``scheduler/``
(``scheduler_config.json`` of the default sampler).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from .. import __version__
from ..data.prepared import atomic_write_text
from ..models.diffusion import SAMPLE_STEPS, DiffusionConfig, build_unet, class_index, noise_scheduler, sample
from .pipeline import WEIGHTS_NAME, Pipeline, checkpoint_provenance, latent_seed, read_checkpoint

MODEL_INDEX = "model_index.json"
SAMPLERS = ("dpm++", "ddim")
SCHEDULER_CLASS = {"dpm++": "DPMSolverMultistepScheduler", "ddim": "DDIMScheduler"}
DEFAULT_STEPS = SAMPLE_STEPS
MAX_STEPS = 1000


def is_diffusion(path: Path, checkpoint: str | os.PathLike = "best") -> bool:
    """Whether ``path`` (run directory, checkpoint file, saved directory) holds a diffusion model."""
    path = Path(path)
    if path.is_dir() and (path / MODEL_INDEX).is_file():
        return True
    if path.is_dir() and (path / WEIGHTS_NAME).is_file():
        return False
    run_dir = path if path.is_dir() else (path.parent.parent if path.parent.name == "checkpoints" else None)
    if run_dir is not None and (run_dir / "config.json").is_file():
        try:
            return json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["model"]["family"] == "diffusion"
        except (json.JSONDecodeError, KeyError, TypeError):
            pass  # the checkpoint itself says
    if not path.exists():
        return False  # the GAN loader names the missing path
    _, ckpt = read_checkpoint(path, checkpoint)
    return (ckpt.get("config") or {}).get("model", {}).get("family") == "diffusion"


class DiffusionPipeline(Pipeline):
    """Sample labelled synthetic mammograms from a class-conditional ``UNet2DModel``."""

    def __init__(self, unet, model_config: DiffusionConfig | Mapping[str, Any],
                 label_freq: Mapping[str, Mapping[str, float]] | None = None,
                 provenance: Mapping[str, Any] | None = None, sampler: str = "dpm++", steps: int = DEFAULT_STEPS,
                 guidance: float | None = None, shape_reference=None):
        from ..training.diffusion import DEFAULT_GUIDANCE

        super().__init__(label_freq, provenance, shape_reference)
        self.model_config = model_config if isinstance(model_config, DiffusionConfig) else \
            DiffusionConfig.from_dict(dict(model_config))
        self.unet = unet.eval().requires_grad_(False)
        self.sampler, self.steps = sampler, steps
        self.guidance = DEFAULT_GUIDANCE if guidance is None else guidance
        self._check_sampling()

    def _check_sampling(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if not 1 <= int(self.steps) <= MAX_STEPS:
            raise ValueError(f"steps must be in 1..{MAX_STEPS}, got {self.steps}")
        if not self.guidance >= 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}")

    @property
    def network(self):
        return self.unet

    @property
    def label_axes(self) -> dict[str, tuple[str, ...]]:
        return self.model_config.label_axes

    @property
    def resolution(self) -> tuple[int, int]:
        return tuple(self.model_config.resolution)  # type: ignore[return-value]

    def sampling_settings(self) -> dict[str, Any]:
        return {"sampler": self.sampler, "steps": int(self.steps), "guidance": float(self.guidance)}

    def __repr__(self) -> str:
        return (f"DiffusionPipeline(resolution={self.resolution}, label_axes={self.label_axes}, "
                f"{self.sampling_settings()}, run={self.provenance.get('run')!r})")

    def noise(self, seed: int, indices: list[int] | range, attempts: list[int] | None = None):
        """``[len(indices), 1, H, W]`` starting noise, one draw per image index (on CPU);
        ``attempts``: the shape gate's redraw number per image (default 0)."""
        import torch

        h, w = self.resolution
        attempts = attempts or [0] * len(indices)
        return torch.stack([torch.randn(1, h, w, generator=torch.Generator().manual_seed(latent_seed(seed, i, k)))
                            for i, k in zip(indices, attempts)])

    def _images(self, seed, idx, cond, attempts=None):
        self._check_sampling()
        # a scheduler per batch: schedulers keep a step counter (batches run in threads)
        scheduler = noise_scheduler(self.model_config, self.sampler)
        classes = class_index(cond, self.label_axes)
        return sample(self.unet, scheduler, self.noise(seed, idx, attempts).to(self.device), classes, int(self.steps),
                      float(self.guidance), self.label_axes)

    # -- loading and saving ---------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, checkpoint: str | os.PathLike = "best", device: Any = None,
                        sampler: str | None = None, steps: int | None = None,
                        guidance: float | None = None) -> "DiffusionPipeline":
        """Load a run directory, a checkpoint file or a :meth:`save_pretrained` directory;
        ``sampler``/``steps``/``guidance`` override the saved defaults."""
        path = Path(path)
        if path.is_dir() and (path / MODEL_INDEX).is_file():
            pipe = cls._from_saved(path)
        elif path.exists():
            ckpt_path, ckpt = read_checkpoint(path, checkpoint)
            try:
                cfg = DiffusionConfig.from_dict(dict(ckpt["config"]["model"]))
                state = ckpt["unet_ema"]
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{ckpt_path}: not a diffusion checkpoint ({exc})") from exc
            unet = build_unet(cfg)
            try:
                unet.load_state_dict(state)
            except RuntimeError:
                from ..training.checkpoint import describe_state_mismatch

                raise ValueError(f"{ckpt_path}: unet_ema weights do not fit the model config "
                                 f"({describe_state_mismatch(unet, state)})") from None
            pipe = cls(unet, cfg, label_freq=ckpt.get("label_freq"), provenance=checkpoint_provenance(ckpt_path, ckpt),
                       shape_reference=cls._read_shape_reference(ckpt.get("shape_reference"), ckpt_path))
        else:
            raise FileNotFoundError(f"{path}: not found (expected a run directory, a checkpoint "
                                    f"or a directory written by save_pretrained)")
        for name, value in (("sampler", sampler), ("steps", steps), ("guidance", guidance)):
            if value is not None:
                setattr(pipe, name, value)
        pipe._check_sampling()
        return pipe.to(device) if device is not None else pipe

    @classmethod
    def _from_saved(cls, directory: Path) -> "DiffusionPipeline":
        from diffusers import UNet2DModel

        index_path = directory / MODEL_INDEX
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            own = index["mammosynth"]
            cfg = DiffusionConfig.from_dict(own["model"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{index_path}: not a mammosynth diffusion pipeline ({type(exc).__name__}: {exc})") from exc
        try:
            unet = UNet2DModel.from_pretrained(str(directory / "unet"))
        except Exception as exc:  # diffusers raises OSError / EnvironmentError / its own types
            raise ValueError(f"{directory / 'unet'}: cannot load the UNet ({type(exc).__name__}: {exc})") from exc
        sampling = own.get("sampling") or {}
        provenance = dict(own.get("provenance") or {})
        provenance.setdefault("pretrained_dir", str(directory))
        return cls(unet, cfg, label_freq=own.get("label_freq"), provenance=provenance,
                   sampler=sampling.get("sampler", "dpm++"), steps=sampling.get("steps", DEFAULT_STEPS),
                   guidance=sampling.get("guidance"),
                   shape_reference=cls._read_shape_reference(own.get("shape_reference"), index_path))

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write diffusers' layout (module docstring) to ``directory``; returns it."""
        import diffusers

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.unet.save_pretrained(str(directory / "unet"))
        noise_scheduler(self.model_config, self.sampler).save_pretrained(str(directory / "scheduler"))
        provenance = dict(self.provenance)
        provenance.setdefault("checkpoint_sha256", self.checkpoint_sha256)
        provenance.pop("pretrained_dir", None)
        index = {
            "_class_name": "MammosynthDiffusionPipeline",
            "_diffusers_version": diffusers.__version__,
            "unet": ["diffusers", "UNet2DModel"],
            "scheduler": ["diffusers", SCHEDULER_CLASS[self.sampler]],
            "mammosynth": {
                "mammosynth_version": __version__, "model": self.model_config.to_dict(),
                "resolution": list(self.resolution), "label_axes": {a: list(c) for a, c in self.label_axes.items()},
                "label_freq": self.label_freq, "sampling": self.sampling_settings(), "provenance": provenance,
                **({"shape_reference": self.shape_reference.to_dict()} if self.shape_reference is not None else {}),
            },
        }
        atomic_write_text(directory / MODEL_INDEX, json.dumps(index, indent=2, default=str) + "\n")
        return directory
