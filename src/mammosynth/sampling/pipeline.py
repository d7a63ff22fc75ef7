"""Pipelines: a trained generator behind a diffusers-style API. :class:`Pipeline` holds
what every family shares; :class:`GanPipeline` is the GANs',
:class:`~mammosynth.sampling.diffusion.DiffusionPipeline` the diffusion family's, and
:func:`load_pipeline` loads either from a run, a checkpoint or a saved directory.

>>> pipe = GanPipeline.from_pretrained("runs/00003-phantom", checkpoint="best")  # doctest: +SKIP
>>> out = pipe(n=16, density="D", finding="mass", view="MLO", seed=0)            # doctest: +SKIP
>>> out.images.shape, out.labels[0]                                               # doctest: +SKIP
((16, 128, 80), {'density': 'D', 'finding': 'mass', 'view': 'MLO', 'laterality': 'R'})
>>> pipe.save_pretrained("my-model")                                              # doctest: +SKIP

Reproducibility: image ``i`` of seed ``s`` depends only on the weights and ``(s, i)``.
Its latent comes from a ``torch.Generator`` (CPU) seeded with a hash of ``(s, i)``, its
labels from :func:`mammosynth.sampling.mix.labels_for`; so ``pipe(n=1, seed=0, start=5)``
is image 5 of ``pipe(n=16, seed=0)``. Batches of a different size can differ by float
rounding inside the network (BLAS/conv kernels sum in a batch-dependent order: a few
uint16 steps, invisible); the same batch size on the same device with the same
``workers`` setting (1, or more: see :meth:`GanPipeline.__call__`) gives bit-identical
images.

A pretrained directory (``save_pretrained``) holds ``config.json`` (model config, label
axes, training label frequencies, training provenance) and ``model.safetensors`` (the
EMA generator weights).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from .. import __version__
from ..data.prepared import atomic_write_text, sha256_file
from .mix import Mix, labels_for, resolve_mix

if TYPE_CHECKING:
    import torch

    from .shape_gate import ShapeGateConfig, ShapeReference

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PRETRAINED_FORMAT = 1


@dataclass
class PipelineOutput:
    """Result of a pipeline's ``__call__`` (every family)."""

    images: np.ndarray  # [N, H, W] uint16, chest wall left
    labels: list[dict[str, str]]  # per image: conditioned axes + laterality
    indices: list[int] = field(default_factory=list)  # image indices (start .. start+n-1)
    seed: int = 0
    background_removed: list[bool] = field(default_factory=list)  # per image: breast found, outside set to 0
    #: per image, with the shape gate on (None without it): ``{"attempt": k, "passed": bool}``,
    #: k the candidate kept (0: the first draw)
    shape: list[dict[str, Any]] | None = None


def latent_seed(seed: int, index: int, attempt: int = 0) -> int:
    """The 63-bit torch seed of image ``index``'s latent (a hash of seed and index);
    ``attempt`` k > 0: the shape gate's k-th redraw of that image (another hash)."""
    if index < 0 or attempt < 0:
        raise ValueError(f"image index and attempt must be >= 0, got {index} and {attempt}")
    key = f"mammosynth-latent\x00{int(seed)}\x00{int(index)}" + (f"\x00{int(attempt)}" if attempt else "")
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


GanPipelineOutput = PipelineOutput  # the name before there was more than one family


def _build_generator(model_config: dict[str, Any]):
    from ..models import build_generator

    return build_generator(model_config)


def _state_dict_sha256(module) -> str:
    """SHA-256 over a module's state dict (names, dtypes, shapes, bytes): a weights id."""
    from ..models.base import state_sha256

    return state_sha256(module)


def read_checkpoint(path: Path, checkpoint: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """The checkpoint file ``path`` is (a file), or the ``checkpoint`` (best, latest or a
    file) of run directory ``path``, and its validated contents."""
    from ..training.checkpoint import find_checkpoint, load_checkpoint

    if path.is_file():
        ckpt_path = path
    elif str(checkpoint) in ("best", "latest"):
        ckpt_path = Path(find_checkpoint(path, which=str(checkpoint)))
    else:
        ckpt_path = Path(checkpoint)
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"{ckpt_path}: checkpoint file not found")
    return ckpt_path, load_checkpoint(ckpt_path)


def checkpoint_provenance(ckpt_path: Path, ckpt: dict[str, Any]) -> dict[str, Any]:
    """Where a pipeline's weights came from: run, checkpoint (and its SHA-256), progress, data."""
    run_dir = ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent
    return {
        "run": run_dir.name,
        "run_dir": str(run_dir),
        "checkpoint": str(ckpt_path),
        "checkpoint_sha256": sha256_file(ckpt_path),
        "step": ckpt.get("step"),
        "kimg": ckpt.get("kimg"),
        "dataset": ckpt.get("dataset"),
        "train_config": ckpt.get("config"),
    }


def load_pipeline(path: str | os.PathLike, checkpoint: str | os.PathLike = "best", device: Any = None,
                  **options: Any) -> "Pipeline":
    """The pipeline of any family for a run directory, a checkpoint file or a
    ``save_pretrained`` directory: a :class:`GanPipeline`, or a
    :class:`~mammosynth.sampling.diffusion.DiffusionPipeline` (``options``: its sampler,
    steps and guidance). The one entry point of ``generate``, the benchmarks and reports."""
    from .diffusion import DiffusionPipeline, is_diffusion

    path = Path(path)
    if is_diffusion(path, checkpoint):
        return DiffusionPipeline.from_pretrained(path, checkpoint=checkpoint, device=device, **options)
    return GanPipeline.from_pretrained(path, checkpoint=checkpoint, device=device)


class Pipeline:
    """What every family's pipeline shares: labels, mixes, batching, CPU workers, the
    background step and uint16 output. A family implements :meth:`_images` (and its own
    loading and saving); :func:`load_pipeline` picks the family of a run or directory."""

    def __init__(self, label_freq: Mapping[str, Mapping[str, float]] | None = None,
                 provenance: Mapping[str, Any] | None = None, shape_reference: "ShapeReference | None" = None):
        self.label_freq = {a: dict(f) for a, f in (label_freq or {}).items()}
        self.provenance = dict(provenance or {})
        #: the training films' outlines, for the shape gate (None: a model trained before
        #: runs stored them; set one with sampling.reference_from_dataset)
        self.shape_reference = shape_reference

    @staticmethod
    def _read_shape_reference(saved: Mapping[str, Any] | None, where: Path) -> "ShapeReference | None":
        """The shape reference a checkpoint or saved pipeline holds (None when it has none)."""
        from .shape_gate import ShapeReference

        if saved is None:
            return None
        try:
            return ShapeReference.from_dict(saved)
        except ValueError as exc:
            raise ValueError(f"{where}: shape_reference: {exc}") from None

    #: the module whose weights generate (its device is the pipeline's)
    @property
    def network(self):
        raise NotImplementedError

    @property
    def label_axes(self) -> dict[str, tuple[str, ...]]:
        raise NotImplementedError

    @property
    def resolution(self) -> tuple[int, int]:
        raise NotImplementedError

    @property
    def device(self):
        import torch

        for t in self.network.parameters():
            return t.device
        return torch.device("cpu")

    @property
    def checkpoint_sha256(self) -> str:
        """SHA-256 of the training checkpoint the weights came from (or of the weights)."""
        if "checkpoint_sha256" not in self.provenance:
            self.provenance["checkpoint_sha256"] = _state_dict_sha256(self.network)
        return self.provenance["checkpoint_sha256"]

    def to(self, device: Any) -> "Pipeline":
        """Move the network to ``device`` (``"cuda"``, ``"cpu"``...); returns self."""
        self.network.to(device)
        return self

    def sampling_settings(self) -> dict[str, Any]:
        """Settings besides the weights that decide the images (diffusion: sampler, steps,
        guidance); recorded with every generated image and set."""
        return {}

    def _inference_scope(self):
        """A context for one ``__call__`` (GAN: kernels derived from the weights, made once)."""
        return contextlib.nullcontext()

    def _images(self, seed: int, idx: list[int], cond: dict[str, "torch.Tensor"],
                attempts: list[int] | None = None) -> "torch.Tensor":
        """``[B, 1, H, W]`` images in about [-1, 1] for image indices ``idx`` of ``seed`` with
        class indices ``cond`` (on the pipeline's device); randomness from ``(seed, i)`` alone,
        or ``(seed, i, attempt)`` for the shape gate's redraws (``attempts``: one per image)."""
        raise NotImplementedError

    # -- sampling -------------------------------------------------------------------
    def resolve_mix(self, mix: Mapping[str, Any] | None = None, **fixed: str) -> Mix:
        """Proportions for every axis: ``mix`` plus fixed labels (``density="D"``), the rest
        following the training label frequencies. See :func:`mammosynth.sampling.mix.resolve_mix`."""
        mix = dict(mix or {})
        for axis, value in fixed.items():
            if value is None:
                continue
            if axis in mix:
                raise ValueError(f"{axis!r} given both as a fixed label and in mix")
            mix[axis] = {str(value): 1.0}
        return resolve_mix(mix, self.label_axes, self.label_freq)

    def __call__(
        self,
        n: int = 1,
        *,
        seed: int = 0,
        start: int = 0,
        mix: Mapping[str, Any] | None = None,
        batch_size: int = 16,
        remove_background: bool = True,
        workers: int | None = None,
        progress: bool = False,
        shape_gate: "ShapeGateConfig | None" = None,
        **labels: str,
    ) -> PipelineOutput:
        """Generate images ``start .. start+n-1`` of ``seed``.

        ``labels`` fix an axis for every image (``density="D"``, ``finding="mass"``,
        ``view="MLO"``, ``laterality="L"``); ``mix`` gives proportions
        (``{"density": "A:0.5,B:0.5"}``); other axes follow the training frequencies.
        ``remove_background``: set everything outside the breast to exactly 0, with the
        same segmentation the ingest applies to real images, at the same working size
        (:func:`mammosynth.data.preprocess.breast_masks`), so synthetic images share
        the real prepared images' exactly flat background (a tanh output only nears it);
        an image in which no breast is found is left as generated.
        ``workers`` (CPU only; default: torch's CPU thread count): batches computed side
        by side, each with one intra-op thread. The generator's layers are narrow, so
        this is about 1.5x faster than splitting every op over the threads; the torch
        thread count is restored afterwards. A batch's images depend on the batch size,
        the device and whether ``workers`` is 1 (float rounding at most), not on the
        worker that runs it nor on ``n``.
        ``shape_gate``: redraw images whose breast outline no training film comes near
        (:mod:`mammosynth.sampling.shape_gate`; needs :attr:`shape_reference`).
        """
        import torch

        from ..utils import progress as progress_bar

        if n < 0 or start < 0 or batch_size < 1:
            raise ValueError(f"need n >= 0, start >= 0 and batch_size >= 1, got n={n}, start={start}, "
                             f"batch_size={batch_size}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if shape_gate is not None:
            self.check_shape_gate()
        resolved = self.resolve_mix(mix, **labels)
        indices = list(range(start, start + n))
        all_labels = [labels_for(seed, i, resolved) for i in indices]
        h, w = self.resolution
        images = np.empty((n, h, w), dtype=np.uint16)
        removed = np.zeros(n, dtype=bool)
        shape: list[dict[str, Any]] = [{}] * n
        batches = list(range(0, n, batch_size))
        threads = torch.get_num_threads()
        # not clamped to the number of batches: a batch is computed the same way (one
        # intra-op thread when workers > 1) however many batches this call has
        workers = 1 if self.device.type != "cpu" else (workers or threads)

        def run(b: int) -> int:
            idx = indices[b:b + batch_size]
            images[b:b + len(idx)], removed[b:b + len(idx)], shape[b:b + len(idx)] = self._batch(
                seed, idx, all_labels[b:b + batch_size], remove_background, threads if workers == 1 else 1, shape_gate)
            return len(idx)

        def show(it):
            return progress_bar(it, total=len(batches), desc="generate", unit="batch", disable=not progress)

        with self._inference_scope():
            if workers == 1:
                for _ in show(map(run, batches)):
                    pass
            else:
                from concurrent.futures import ThreadPoolExecutor

                torch.set_num_threads(1)
                try:
                    with ThreadPoolExecutor(workers) as pool:
                        for _ in show(pool.map(run, batches)):
                            pass
                finally:
                    torch.set_num_threads(threads)
        return PipelineOutput(images=images, labels=all_labels, indices=indices, seed=int(seed),
                              background_removed=removed.tolist(), shape=shape if shape_gate is not None else None)

    def check_shape_gate(self) -> None:
        """ValueError unless the shape gate can run: a reference at the model's resolution."""
        ref = self.shape_reference
        if ref is None:
            raise ValueError("this model holds no shape reference (trained before runs stored their films' "
                             "outlines): set pipe.shape_reference = reference_from_dataset(TRAINING_SET, "
                             "pipe.resolution) (mammosynth.sampling), or generate with the shape gate off")
        if tuple(ref.size) != tuple(self.resolution):
            raise ValueError(f"the shape reference was made at {tuple(ref.size)}, the model draws {self.resolution}")

    def _unit(self, seed: int, idx: list[int], cond: dict[str, "torch.Tensor"], attempts: list[int]) -> np.ndarray:
        """Float32 ``[B, H, W]`` images in [0, 1] (the network's output, clamped)."""
        import torch

        h, w = self.resolution
        with torch.inference_mode():  # grad mode is per thread: set it in the worker
            x = self._images(seed, idx, cond, attempts if any(attempts) else None).float()
            if x.shape[1:] != (1, h, w):
                raise ValueError(f"generator returned shape {tuple(x.shape)}, expected [B, 1, {h}, {w}]")
            return x[:, 0].clamp(-1.0, 1.0).add_(1.0).mul_(0.5).cpu().numpy()

    def _batch(self, seed: int, idx: list[int], labels: list[dict[str, str]], remove_background: bool,
               seg_workers: int, gate: "ShapeGateConfig | None" = None
               ) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """One batch: uint16 images ``[B, H, W]``, per image whether its background was removed,
        and per image the shape gate's record (empty dicts without the gate)."""
        import torch

        from ..data.preprocess import breast_masks, zero_background

        cond = {axis: torch.tensor([classes.index(lab[axis]) for lab in labels], dtype=torch.long, device=self.device)
                for axis, classes in self.label_axes.items()}
        unit = self._unit(seed, idx, cond, [0] * len(idx))
        masks = breast_masks(unit, workers=seg_workers) if remove_background or gate is not None else None
        shape: list[dict[str, Any]] = [{} for _ in idx]
        if gate is not None:
            shape = self._gate(seed, idx, cond, unit, masks, gate, seg_workers)
        found = zero_background(unit, workers=seg_workers, masks=masks) if remove_background else \
            np.zeros(len(idx), dtype=bool)
        np.multiply(unit, np.float32(65535.0), out=unit)
        return np.rint(unit, out=unit).astype(np.uint16), found, shape

    def _gate(self, seed: int, idx: list[int], cond: dict[str, "torch.Tensor"], unit: np.ndarray, masks: np.ndarray,
              gate: "ShapeGateConfig", seg_workers: int) -> list[dict[str, Any]]:
        """The shape gate on one batch, in place on ``unit`` and ``masks``: each failing image
        is redrawn (attempts 1, 2, ...) until a candidate passes or ``gate.attempts`` are
        spent, keeping the candidate least above the thresholds. Returns per image the record."""
        from ..data.preprocess import breast_masks

        verdict = self.shape_reference.judge(masks, gate.quantile)
        excess = verdict.excess.copy()
        kept = np.zeros(len(idx), dtype=int)
        todo = np.flatnonzero(~verdict.passed)
        for attempt in range(1, gate.attempts):
            if not len(todo):
                break
            sub = {a: t[todo] for a, t in cond.items()}
            u = self._unit(seed, [idx[j] for j in todo], sub, [attempt] * len(todo))
            m = breast_masks(u, workers=seg_workers)
            v = self.shape_reference.judge(m, gate.quantile)
            better = v.excess < excess[todo]
            for row, j in enumerate(todo):
                if better[row]:
                    unit[j], masks[j], excess[j], kept[j] = u[row], m[row], v.excess[row], attempt
            todo = todo[~v.passed]
        return [{"attempt": int(k), "passed": bool(e <= 1.0)} for k, e in zip(kept, excess)]


class GanPipeline(Pipeline):
    """Sample labelled synthetic mammograms from a conditional generator.

    ``generator`` follows the models contract: attributes ``z_dim``, ``resolution``
    ``(H, W)``, ``label_axes`` ``{axis: classes}``, and ``forward(z, labels)`` returning
    ``[B, 1, H, W]`` in [-1, 1]. ``model_config`` (needed by :meth:`save_pretrained`)
    rebuilds it with ``mammosynth.models.build_generator``.
    """

    def __init__(
        self,
        generator,
        model_config: Mapping[str, Any] | None = None,
        label_freq: Mapping[str, Mapping[str, float]] | None = None,
        provenance: Mapping[str, Any] | None = None,
        shape_reference: "ShapeReference | None" = None,
    ):
        for attr in ("z_dim", "resolution", "label_axes"):
            if not hasattr(generator, attr):
                raise ValueError(f"generator lacks the {attr!r} attribute required by the models contract")
        import torch

        from ..models.inference import prepare_for_inference

        super().__init__(label_freq, provenance, shape_reference)
        # channels-last: faster convolutions on CPUs (oneDNN) and on tensor-core GPUs
        self.generator = generator.eval().to(memory_format=torch.channels_last)
        for p in self.generator.parameters():
            p.requires_grad_(False)
        # the inference form (FastGAN: folded kernels), sharing the generator's weights
        self.inference_generator = prepare_for_inference(self.generator)
        self.model_config = dict(model_config) if model_config is not None else None

    # -- properties -----------------------------------------------------------------
    @property
    def network(self):
        return self.generator

    @property
    def label_axes(self) -> dict[str, tuple[str, ...]]:
        return {a: tuple(c) for a, c in self.generator.label_axes.items()}

    @property
    def z_dim(self) -> int:
        return int(self.generator.z_dim)

    @property
    def resolution(self) -> tuple[int, int]:
        h, w = self.generator.resolution
        return int(h), int(w)

    def __repr__(self) -> str:
        return (f"GanPipeline(resolution={self.resolution}, z_dim={self.z_dim}, "
                f"label_axes={self.label_axes}, run={self.provenance.get('run')!r})")

    def _inference_scope(self):
        # kernels derived from the weights made once per call (FoldedFastGAN.inference_cache)
        return getattr(self.inference_generator, "inference_cache", contextlib.nullcontext)()

    # -- loading and saving ---------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, checkpoint: str | os.PathLike = "best",
                        device: Any = None) -> "GanPipeline":
        """Load a run directory, a checkpoint file, or a :meth:`save_pretrained` directory.

        ``checkpoint``: ``"best"`` or ``"latest"`` (for a run directory), or a checkpoint
        file path. Raises FileNotFoundError / ValueError naming the file.
        """
        path = Path(path)
        if path.is_dir() and (path / WEIGHTS_NAME).is_file():
            pipe = cls._from_saved(path)
        elif path.is_dir() or path.is_file():
            pipe = cls._from_checkpoint(path, checkpoint)
        else:
            raise FileNotFoundError(f"{path}: not found (expected a run directory, a checkpoint "
                                    f"or a directory written by a pipeline's save_pretrained)")
        return pipe.to(device) if device is not None else pipe

    @classmethod
    def _from_checkpoint(cls, path: Path, checkpoint: str | os.PathLike) -> "GanPipeline":
        from ..training.checkpoint import describe_state_mismatch

        ckpt_path, ckpt = read_checkpoint(path, checkpoint)
        if (ckpt.get("config") or {}).get("model", {}).get("family") == "diffusion":
            raise ValueError(f"{ckpt_path}: a diffusion run; load it with mammosynth.sampling.load_pipeline")
        try:
            model_config = dict(ckpt["config"]["model"])
            state = ckpt["G_ema"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{ckpt_path}: checkpoint lacks the model config or G_ema weights ({exc})") from exc
        generator = _build_generator(model_config)
        try:
            generator.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"{ckpt_path}: G_ema weights do not fit the model config "
                             f"({describe_state_mismatch(generator, state)})") from None
        return cls(generator, model_config=model_config, label_freq=ckpt.get("label_freq"),
                   provenance=checkpoint_provenance(ckpt_path, ckpt),
                   shape_reference=cls._read_shape_reference(ckpt.get("shape_reference"), ckpt_path))

    @classmethod
    def _from_saved(cls, directory: Path) -> "GanPipeline":
        from safetensors.torch import load_file

        from ..training.checkpoint import describe_state_mismatch

        cfg_path, w_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        if not cfg_path.is_file():
            raise FileNotFoundError(f"{cfg_path}: missing; {directory} is not a saved GanPipeline")
        try:
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
            model_config = dict(cfg["model"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{cfg_path}: not a GanPipeline config ({type(exc).__name__}: {exc})") from exc
        if cfg.get("format_version") != PRETRAINED_FORMAT:
            raise ValueError(f"{cfg_path}: format_version {cfg.get('format_version')!r} not supported")
        try:
            state = load_file(str(w_path))
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise ValueError(f"{w_path}: cannot read weights ({type(exc).__name__}: {exc})") from exc
        generator = _build_generator(model_config)
        try:
            generator.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"{w_path}: weights do not fit the model config in {cfg_path} "
                             f"({describe_state_mismatch(generator, state)})") from None
        saved_axes = {a: tuple(c) for a, c in (cfg.get("label_axes") or {}).items()}
        if saved_axes and saved_axes != {a: tuple(c) for a, c in generator.label_axes.items()}:
            raise ValueError(f"{cfg_path}: label_axes {saved_axes} differ from the model's {generator.label_axes}")
        provenance = dict(cfg.get("provenance") or {})
        provenance.setdefault("pretrained_dir", str(directory))
        return cls(generator, model_config=model_config, label_freq=cfg.get("label_freq"), provenance=provenance,
                   shape_reference=cls._read_shape_reference(cfg.get("shape_reference"), cfg_path))

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``directory``; returns it."""
        from safetensors.torch import save_file

        from ..utils import current_umask

        if self.model_config is None:
            raise ValueError("save_pretrained needs the model config (build the pipeline with model_config=...)")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous().clone() for k, v in self.generator.state_dict().items()}
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{WEIGHTS_NAME}.", suffix=".tmp")
        os.close(fd)
        try:
            save_file(state, tmp, metadata={"format": "pt", "mammosynth_version": __version__})
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's 0600 would hide it from colleagues
            os.replace(tmp, directory / WEIGHTS_NAME)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        provenance = dict(self.provenance)
        provenance.setdefault("checkpoint_sha256", self.checkpoint_sha256)
        provenance.pop("pretrained_dir", None)
        cfg = {
            "_class_name": type(self).__name__,
            "format_version": PRETRAINED_FORMAT,
            "mammosynth_version": __version__,
            "model": self.model_config,
            "z_dim": self.z_dim,
            "resolution": list(self.resolution),
            "label_axes": {a: list(c) for a, c in self.label_axes.items()},
            "label_freq": self.label_freq,
            "provenance": provenance,
            **({"shape_reference": self.shape_reference.to_dict()} if self.shape_reference is not None else {}),
        }
        atomic_write_text(directory / CONFIG_NAME, json.dumps(cfg, indent=2, default=str) + "\n")
        return directory

    def latents(self, seed: int, indices: list[int] | range, attempts: list[int] | None = None) -> "torch.Tensor":
        """``[len(indices), z_dim]`` standard-normal latents, one per image index (on CPU);
        ``attempts``: the shape gate's redraw number per image (default 0, the first draw)."""
        import torch

        out = torch.empty(len(indices), self.z_dim)
        for row, i in enumerate(indices):
            g = torch.Generator().manual_seed(latent_seed(seed, i, attempts[row] if attempts else 0))
            out[row] = torch.randn(self.z_dim, generator=g)
        return out

    def _images(self, seed, idx, cond, attempts=None):
        return self.inference_generator(self.latents(seed, idx, attempts).to(self.device), cond)
