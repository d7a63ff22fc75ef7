"""``generate``: write a labelled synthetic set in the prepared-dataset format.

The set is resumable and index-reproducible:

* image ``i`` is ``syn-<seed>-<i:06d>``; its latent and labels depend only on
  ``(checkpoint, seed, i)`` (see :mod:`mammosynth.sampling.pipeline` and
  :mod:`mammosynth.sampling.mix`), not on ``n``, nor on the batch size beyond float
  rounding (a few uint16 steps);
* a rerun skips finished images (``DatasetWriter.has``). Batches are aligned to multiples
  of ``batch`` and a batch with a missing image is recomputed whole, so an interrupted run
  completed by a rerun is bit-identical to an uninterrupted run with the same ``batch``;
* ``dataset.json`` is written (``complete: false``) before the first image so a rerun with
  other settings (model, seed, mix, format) is refused even when the first run was cut off;
* every image goes through :func:`mammosynth.provenance.mark_image` before it is written,
  and the finished set is signed with :func:`mammosynth.provenance.finalize_synthetic_set`.

Records: ``synthetic=True``, ``split=None``, ``patient_id = "synthetic-<hash(seed, i)>"``,
labels = the conditions used (``finding`` -> one ``Finding(kind, "unknown", box=None)``),
``laterality`` from the ``laterality`` mix (default ``R``; every image is stored chest wall
left, ``preprocessing.flipped`` is True for ``L`` as for a normalised real L image). Axes
the model was not conditioned on are recorded as unknown (density ``unknown``, view
``other``; finding: no findings) and are absent from ``generation.conditions``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from threadpoolctl import threadpool_limits

from .. import __version__
from ..data.prepared import DATASET_JSON, FORMAT_SUFFIX, MANIFEST, REJECTS, DatasetWriter
from ..data.schema import Finding, ImageRecord
from ..utils import check_device, check_output_dir, is_temporary, num_workers, remove_temporaries
from .mix import describe
from .pipeline import Pipeline, load_pipeline
from .shape_gate import ShapeGateConfig, reference_from_dataset

CHECKPOINT_CHOICES = ("best", "latest")
SHAPE_GATE_CHOICES = ("auto", "on", "off")


@dataclass(frozen=True)
class GenerateConfig:
    """Settings of one ``generate`` run (the CLI's defaults)."""

    mix: Mapping[str, str | Mapping[str, float]] = field(default_factory=dict)  # axis -> "A:0.5,B:0.5"
    seed: int = 0
    fmt: str = "png16"  # png16 | png8 | tiff | dicom
    batch: int = 16  # fastest on 2 CPU cores with one batch per core (8: -15 %, 32: -10 %, 64: -20 %); raise it on a GPU
    checkpoint: str = "best"  # best | latest | path to a checkpoint file
    key: str | None = None  # provenance signing key (directory or private key file)
    overwrite: bool = False
    device: str = "auto"  # auto (cuda when available) | cpu | cuda | cuda:1 ...
    remove_background: bool = True  # outside the breast exactly 0, as the ingest does for real images
    # redraw images whose breast outline no training film comes near (sampling.shape_gate);
    # auto: on when the model holds its training films' outlines (runs since the gate)
    shape_gate: str = "auto"  # auto | on | off
    shape: ShapeGateConfig = field(default_factory=ShapeGateConfig)
    shape_reference: str | None = None  # a prepared dataset (PATH[:split]) for models without a reference
    writers: int | None = None  # threads that watermark and write images (None: one per CPU core, at most 4)
    # diffusion only (None: the pipeline's defaults, DPM-Solver++, 25 steps, guidance 1.5)
    sampler: str | None = None  # dpm++ | ddim
    steps: int | None = None
    guidance: float | None = None

    def __post_init__(self) -> None:
        if self.fmt not in FORMAT_SUFFIX:
            raise ValueError(f"format must be one of {tuple(FORMAT_SUFFIX)}, got {self.fmt!r}")
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.writers is not None and self.writers < 1:
            raise ValueError(f"writers must be >= 1, got {self.writers}")
        if self.shape_gate not in SHAPE_GATE_CHOICES:
            raise ValueError(f"shape_gate must be one of {SHAPE_GATE_CHOICES}, got {self.shape_gate!r}")
        if self.shape_reference is not None and self.shape_gate == "off":
            raise ValueError("a shape reference was given with the shape gate off")

    def sampling_options(self) -> dict[str, Any]:
        return {k: v for k in ("sampler", "steps", "guidance") if (v := getattr(self, k)) is not None}


def image_id(seed: int, index: int) -> str:
    return f"syn-{int(seed)}-{int(index):06d}"


def synthetic_patient_id(seed: int, index: int) -> str:
    return "synthetic-" + hashlib.sha256(f"{int(seed)}\x00{int(index)}".encode()).hexdigest()[:16]


def resolve_device(device: str) -> str:
    if device != "auto":
        return check_device(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def make_record(pipe: Pipeline, seed: int, index: int, labels: Mapping[str, str],
                background_removed: bool = True, shape: Mapping[str, Any] | None = None) -> ImageRecord:
    """The manifest record of image ``index`` with ``labels`` (file fields filled by the
    writer); ``background_removed`` records the pipeline's background step for this image,
    ``shape`` the shape gate's record (``{"attempt", "passed"}``; None: the gate was off)."""
    axes = pipe.label_axes
    conditions = {a: labels[a] for a in axes}
    findings = ()
    if conditions.get("finding", "none") != "none":
        findings = (Finding(kind=conditions["finding"], pathology="unknown", box=None),)
    laterality = labels.get("laterality", "R")
    h, w = pipe.resolution
    generation = {
        "seed": int(seed),
        "index": int(index),
        "conditions": conditions,
        "checkpoint_sha256": pipe.checkpoint_sha256,
        "run": pipe.provenance.get("run"),
        "step": pipe.provenance.get("step"),
        "kimg": pipe.provenance.get("kimg"),
        **pipe.sampling_settings(),
        **({"shape_gate": dict(shape)} if shape else {}),
        "mammosynth_version": __version__,
    }
    return ImageRecord(
        image_id=image_id(seed, index),
        patient_id=synthetic_patient_id(seed, index),
        laterality=laterality,
        view=conditions.get("view", "other"),
        density=conditions.get("density", "unknown"),
        findings=findings,
        source_dataset="mammosynth-synthetic",
        bit_depth=16,
        preprocessing={"orientation": "chest_wall_left", "flipped": laterality == "L", "size": [h, w],
                       "steps": ["remove_background"] if background_removed else []},
        split=None,
        synthetic=True,
        generation=generation,
    )


def shape_gate_for(pipe: Pipeline, config: GenerateConfig) -> ShapeGateConfig | None:
    """The shape gate this set runs with (None: off); loads ``config.shape_reference`` into
    ``pipe``. ValueError for ``on`` without a reference, naming how to get one."""
    if config.shape_reference is not None:
        pipe.shape_reference = reference_from_dataset(config.shape_reference, pipe.resolution)
    if config.shape_gate == "off" or (config.shape_gate == "auto" and pipe.shape_reference is None):
        return None
    pipe.check_shape_gate()
    return config.shape


def _settings(pipe: Pipeline, config: GenerateConfig, mix, gate: ShapeGateConfig | None = None) -> dict[str, Any]:
    """What identifies a set: a rerun with other settings into the same directory is refused."""
    prov = pipe.provenance
    return {
        "generator": {
            "checkpoint_sha256": pipe.checkpoint_sha256,
            "run": prov.get("run"),
            "step": prov.get("step"),
            "kimg": prov.get("kimg"),
            "resolution": list(pipe.resolution),
            "label_axes": {a: list(c) for a, c in pipe.label_axes.items()},
        },
        "seed": config.seed,
        "mix": describe(mix),
        "format": config.fmt,
        "remove_background": config.remove_background,
        "latent_scheme": "sha256(seed,index)->torch.Generator.randn",
        # only for families with sampling settings: GAN sets keep the settings they were written with
        **({"sampling": pipe.sampling_settings()} if pipe.sampling_settings() else {}),
        # only with the gate on: sets written without it keep their settings
        **({"shape_gate": {**gate.to_dict(), "thresholds": {
            k: v if math.isfinite(v) else None for k, v in zip(
                ("atypicality", "jaggedness", "split"), pipe.shape_reference.thresholds(gate.quantile))},
            "reference": config.shape_reference or "model"}} if gate is not None else {}),
    }


#: batches per pipeline call: enough for the pipeline's CPU workers to run side by side,
#: few enough that an interruption loses little (images are stored after each call)
CHUNK_BATCHES = 4


def _chunks(todo: list[int], n: int, batch: int, per_call: int) -> list[tuple[int, int]]:
    """``(start, count)`` pipeline calls covering every batch (aligned to ``batch``) that
    holds an index of ``todo``: runs of consecutive batches, at most ``per_call`` each."""
    starts = sorted({(i // batch) * batch for i in todo})
    calls: list[tuple[int, int]] = []
    for b0 in starts:
        if calls and calls[-1][0] + calls[-1][1] == b0 and calls[-1][1] < per_call * batch:
            calls[-1] = (calls[-1][0], calls[-1][1] + min(batch, n - b0))
        else:
            calls.append((b0, min(batch, n - b0)))
    return calls


#: files of a set that mammosynth itself writes, besides the images and masks its rows name
OWN_FILES = {DATASET_JSON, MANIFEST, REJECTS, "provenance.json", "provenance.json.sig"}
#: stored images of rows never committed (a kill between the file and its row)
OWN_IMAGE_RE = re.compile(r"^images/syn-\d+-\d{6}\.(png|tif|dcm)(\.c2pa)?$")


def _named_files(out: Path) -> set[str]:
    """Relative paths the set's manifest and dataset.json name (images, masks, C2PA sidecars).
    A row that does not parse names nothing (so its file, if any, must match OWN_IMAGE_RE)."""
    named: set[str] = set()
    manifest = out / MANIFEST
    if manifest.is_file():
        for line in manifest.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                named.add(str(row.get("file")))
                named.update(str(f.get("mask")) for f in row.get("findings") or [] if isinstance(f, dict))
    info = out / DATASET_JSON
    if info.is_file():
        try:
            files = json.loads(info.read_text(encoding="utf-8")).get("files") or {}
        except (json.JSONDecodeError, AttributeError):
            files = {}
        named.update(map(str, files))
    return named | {f"{p}.c2pa" for p in named}


def _clear_output(out: Path) -> None:
    """Remove a previous synthetic set for --overwrite: only files mammosynth wrote and can
    name; refuse (removing nothing) when the folder holds anything else."""
    if not out.exists():
        return
    if not out.is_dir() or out.is_symlink():
        raise ValueError(f"{out}: exists and is not a directory")
    if not any(out.iterdir()):
        return
    info = out / DATASET_JSON
    if info.is_file():
        try:
            kind = json.loads(info.read_text(encoding="utf-8")).get("kind")
        except json.JSONDecodeError as exc:
            raise ValueError(f"{info}: not valid JSON ({exc}); refusing to overwrite {out}") from exc
        if kind != "synthetic":
            raise ValueError(f"{out}: holds a {kind!r} dataset; --overwrite only replaces synthetic sets")
    elif not (out / MANIFEST).is_file():
        raise ValueError(f"{out}: not empty and not a synthetic set; refusing to overwrite it")
    named = _named_files(out) | OWN_FILES
    ours, foreign, dirs = [], [], []
    for top, subdirs, files in os.walk(out):
        rel_top = Path(top).relative_to(out)
        for d in subdirs:
            rel = (rel_top / d).as_posix()
            if rel not in ("images", "masks") or (Path(top) / d).is_symlink():
                foreign.append(rel + "/")
        subdirs[:] = [d for d in subdirs if (rel_top / d).as_posix() in ("images", "masks")
                      and not (Path(top) / d).is_symlink()]
        for f in files:
            rel = (rel_top / f).as_posix()
            p = Path(top) / f
            own = (rel in named or OWN_IMAGE_RE.match(rel) or is_temporary(f)) and not p.is_symlink()
            (ours if own else foreign).append(rel)
        if rel_top.parts:
            dirs.append(Path(top))
    if foreign:
        shown = ", ".join(sorted(foreign)[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ValueError(f"{out}: holds files mammosynth did not write ({shown}); refusing to overwrite it "
                         "(move them away or use another --out)")
    for rel in ours:
        (out / rel).unlink()
    for d in sorted(dirs, reverse=True):
        d.rmdir()


def shape_gate_summary(records) -> dict[str, int]:
    """How many images of a set the shape gate redrew, and how many kept failing (the
    least-atypical candidate was kept): a measure of the model in itself."""
    gates = [(r.generation or {}).get("shape_gate") or {} for r in records]
    return {"images": len(gates), "redrawn": sum(g.get("attempt", 0) > 0 for g in gates),
            "failed": sum(g.get("passed") is False for g in gates)}


def check_arguments(out: Path, config: GenerateConfig) -> None:
    """Everything that can be refused before a model is loaded or an image made: the output
    folder, the signing key, the device."""
    from ..provenance.keys import load_private_key

    check_output_dir(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: is a file, not a folder")
    if config.key is not None:
        load_private_key(config.key)
    check_device(config.device)


def generate(
    run: str | os.PathLike,
    n: int,
    out: str | os.PathLike,
    config: GenerateConfig = GenerateConfig(),
    *,
    pipe: Pipeline | None = None,
    callback: Callable[[int, ImageRecord], None] | None = None,
) -> Path:
    """Generate ``n`` labelled images from ``run`` into the prepared dataset ``out``.

    ``run``: a run directory, a checkpoint file or a ``save_pretrained`` directory
    (ignored when an already loaded ``pipe`` is given). ``callback(index, record)`` runs
    after each stored image. Returns ``out``.
    """
    from .. import provenance
    from ..utils import progress

    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out = Path(out)
    check_arguments(out, config)
    options = config.sampling_options()
    if pipe is None:
        pipe = load_pipeline(run, checkpoint=config.checkpoint, **options)
    elif options:
        for name, value in options.items():
            setattr(pipe, name, value)
    if options and not pipe.sampling_settings():
        raise ValueError(f"{run}: sampler, steps and guidance apply to diffusion models only")
    pipe.to(resolve_device(config.device))
    mix = pipe.resolve_mix(config.mix)
    gate = shape_gate_for(pipe, config)
    settings = _settings(pipe, config, mix, gate)
    if config.overwrite:
        _clear_output(out)
    writer = DatasetWriter(out, kind="synthetic", source={"generator": settings["generator"],
                                                          "provenance": pipe.provenance},
                           settings=settings, fmt=config.fmt)
    wanted = {image_id(config.seed, i) for i in range(n)}
    extra_ids = sorted(r.image_id for r in writer.records if r.image_id not in wanted)
    if extra_ids:
        raise ValueError(f"{out}: already holds {len(extra_ids)} images beyond the {n} requested "
                         f"(e.g. {extra_ids[0]}); use a new output directory or --overwrite")
    extra = {"complete": False, "n": n, "batch": config.batch}
    if not (out / DATASET_JSON).is_file():
        writer.close(extra=extra)  # pins the settings before the first image
    remove_temporaries(out, recursive=True)  # a killed run's leftovers (no writer is active here)
    file_writer = provenance.write_synthetic_dicom if config.fmt == "dicom" else None
    todo = [i for i in range(n) if not writer.has(image_id(config.seed, i))]
    todo_set = set(todo)

    def store(i: int, image, labels: Mapping[str, str], removed: bool, shape) -> ImageRecord:
        """Watermark and write image ``i`` (a writer thread); the main thread commits it."""
        record = make_record(pipe, config.seed, i, labels, removed, shape)
        marked, text = provenance.mark_image(image, record, record.generation)
        return writer.store(record, marked, text=text, file_writer=file_writer)

    # Watermarking and PNG/DICOM encoding cost several times the generation on a CPU: they
    # run in threads (numpy, zlib and hashlib release the GIL) while the next call is
    # generated. Rows are committed in index order, each after its file is on disk, and at
    # most two calls' images are in flight, so an interruption loses at most those.
    workers = config.writers or min(4, num_workers())
    bar = progress(range(len(todo)), total=len(todo), desc=f"generate {out.name}")
    pending: list[tuple[int, Future]] = []

    def commit_pending() -> None:
        for i, fut in pending:
            stored = writer.commit(fut.result())
            next(bar, None)
            if callback is not None:
                callback(i, stored)
        pending.clear()

    # numpy's BLAS gets one thread meanwhile: the watermark's small matrix products are
    # slower threaded, and BLAS threads in every writer oversubscribe the cores (2 cores,
    # 128 px: 166 -> 224 img/s with one writer, 111 -> 264 with two)
    # (the pool is shut down by hand: on an error, queued images are cancelled, not written)
    with threadpool_limits(limits=1, user_api="blas"):
        pool = ThreadPoolExecutor(workers, thread_name_prefix="mammosynth-write")
        try:
            for b0, count in _chunks(todo, n, config.batch, CHUNK_BATCHES):
                result = pipe(n=count, seed=config.seed, start=b0, mix=mix, batch_size=config.batch,
                              remove_background=config.remove_background, shape_gate=gate)
                commit_pending()  # the previous call's images, written while this one was generated
                shapes = result.shape or [None] * len(result.indices)
                pending.extend((i, pool.submit(store, i, image, labels, removed, shape))
                               for image, labels, i, removed, shape in zip(
                                   result.images, result.labels, result.indices, result.background_removed, shapes)
                               if i in todo_set)
            commit_pending()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    for _ in bar:  # closes the progress bar
        pass
    writer.close(extra={**extra, "complete": True,
                        **({"shape_gate": shape_gate_summary(writer.records)} if gate is not None else {})})
    remove_temporaries(out, recursive=True)  # never signed: the writers are done, any left is stale
    provenance.finalize_synthetic_set(out, key=config.key)
    return out

