"""``evaluate()``: the whole fitness-for-use protocol for one synthetic set, in one call.

The protocol is the list of registered checks (:mod:`.registry`, built-in ones in
:mod:`.steps`): governance record, comparison with the real population, conditioning
fidelity, realism, a classifier trained with and without synthetic data tested on
independent real images, subgroup analyses, near-copies and diversity (Pesapane et al.,
Diagnostics 2025, plus image-level checks). ``evaluate`` runs each check's compute on
one shared :class:`~.registry.EvalInputs` (every image decoded once:
:class:`~mammosynth.metrics.images.EvalImages`), judges them and writes

``OUT/report.html`` (self-contained), ``OUT/metrics.json`` (everything, no NaN) and
``OUT/dataset_card.md`` (Markdown with YAML front matter), and returns the metrics.

Which real images are used for what
-----------------------------------
* fidelity and realism ``real``: the real set as given (``PATH`` or ``PATH:split``);
* ``train`` (default: the real set's ``train`` split): trains the downstream and
  conditioning classifiers; the generator's training set for memorisation;
* ``test`` (default: the real set's ``test`` split): scores every classifier;
* ``heldout`` for memorisation: the real ``test`` split (else ``val``, else ``test``).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..data.prepared import PreparedDataset, atomic_write_text
from ..metrics.images import DecodeStore, EvalImages
from ..metrics.stats import CI_METHODS
from ..metrics.utility import TASKS, ClassifierConfig
from .registry import EvalInputs, writers
from .verdict import verdict

REPORT_FILES = ("report.html", "metrics.json", "dataset_card.md")


@dataclass(frozen=True)
class EvaluateConfig:
    """Settings of :func:`evaluate`; ``mammosynth evaluate`` uses these defaults."""

    task: str | None = None  # finding | density | malignancy; None = auto-choose
    seeds: int = 3  # classifier trainings per regime (seeds seed .. seed+seeds-1)
    seed: int = 0
    max_images: int | None = None  # cap per set (seeded random subset); None = all
    inception_weights: str | None = None  # local TorchScript InceptionV3 for FID/KID
    cache_dir: str | None = None  # feature cache (default: $MAMMOSYNTH_CACHE or ~/.cache/mammosynth)
    use_cache: bool = True
    image_metrics: bool = True  # fidelity / diversity / memorisation (compute_image_metrics)
    #: other image-metric settings (an ImageMetricsConfig: frd on/off, MS-SSIM pairs...); its
    #: cache_dir, use_cache and seed are always replaced by this config's, and its
    #: inception_weights when ``inception_weights`` is set here. None: ImageMetricsConfig().
    image_config: Any = None
    n_boot: int = 1000
    ci_method: str = "percentile"  # or "bca"
    min_subgroup_per_class: int = 5
    threads: int | None = None  # torch.set_num_threads; None leaves torch's default
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    realism: bool = True  # the Realism step (detectability, spectrum, fine detail)
    #: a mammosynth.metrics.realism.RealismConfig; None: RealismConfig()
    realism_config: Any = None
    edits: str | None = None  # an edited set (mammosynth edit) to validate: the "2d. Edits" step
    #: a mammosynth.edit.validate.EditValidationConfig; None: its defaults with this seed and n_boot
    edit_validation: Any = None

    def __post_init__(self) -> None:
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS} or None, got {self.task!r}")
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        if self.max_images is not None and self.max_images < 2:
            raise ValueError(f"max_images must be >= 2, got {self.max_images}")
        if self.ci_method not in CI_METHODS:
            raise ValueError(f"ci_method must be one of {CI_METHODS}, got {self.ci_method!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")


# -- helpers -------------------------------------------------------------------------
def _open(ds: PreparedDataset | str | os.PathLike | None, what: str) -> PreparedDataset | None:
    if ds is None or isinstance(ds, PreparedDataset):
        return ds
    out = PreparedDataset(ds)
    if len(out) == 0:
        raise ValueError(f"{ds}: {what} set has no images" + (f" in split {out.split!r}" if out.split else ""))
    return out


def _split_of(ds: PreparedDataset, split: str) -> PreparedDataset | None:
    """``ds``'s root restricted to ``split`` (None when that split is empty)."""
    out = PreparedDataset(ds.root, split=split)
    return out if len(out) else None


def subset(ds: PreparedDataset, n: int | None, seed: int) -> PreparedDataset:
    """A seeded random subset of at most ``n`` records (the same object when no cap applies)."""
    if n is None or len(ds) <= n:
        return ds
    keep = np.sort(np.random.default_rng(seed).choice(len(ds), n, replace=False))
    out = object.__new__(PreparedDataset)
    out.__dict__.update(ds.__dict__)
    out.records = [ds.records[int(i)] for i in keep]
    return out


def json_safe(obj: Any, path: str = "", replaced: list[str] | None = None) -> Any:
    """Plain-JSON copy of ``obj``: numpy -> Python, tuples -> lists, NaN/inf -> None
    (every replacement is listed in ``replaced`` so it is never silent)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v, f"{path}.{k}", replaced) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, f"{path}[{i}]", replaced) for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist(), path, replaced)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        if not math.isfinite(v):
            if replaced is not None:
                replaced.append(path.lstrip("."))
            return None
        return v
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, os.PathLike):
        return str(obj)
    if dataclasses.is_dataclass(obj):
        return json_safe(dataclasses.asdict(obj), path, replaced)
    return str(obj)


def _describe(ds: PreparedDataset | None) -> dict[str, Any] | None:
    if ds is None:
        return None
    return {"path": str(ds.root), "split": ds.split, "n_images": len(ds), "kind": ds.kind,
            "content_hash": ds.content_hash, "created": ds.info.get("created"), "counts": ds.counts()}


# -- the protocol --------------------------------------------------------------------
def evaluate(real: PreparedDataset | str | os.PathLike, synthetic: PreparedDataset | str | os.PathLike,
             out: str | os.PathLike, config: EvaluateConfig = EvaluateConfig(),
             train: PreparedDataset | str | os.PathLike | None = None,
             test: PreparedDataset | str | os.PathLike | None = None) -> dict[str, Any]:
    """Run every check, write report.html, metrics.json and dataset_card.md to ``out``.

    Returns the metrics dict (as written to metrics.json). Raises ValueError/
    FileNotFoundError for unreadable or empty inputs.
    """
    t_start = time.perf_counter()
    real, synthetic = _open(real, "real"), _open(synthetic, "synthetic")
    train, test = _open(train, "train"), _open(test, "test")
    train = train if train is not None else _split_of(real, "train")
    test = test if test is not None else _split_of(real, "test")
    heldout = _split_of(real, "test") or _split_of(real, "val") or test
    cap = config.max_images
    real, synthetic = subset(real, cap, config.seed), subset(synthetic, cap, config.seed + 1)
    train = subset(train, cap, config.seed + 2) if train is not None else None
    test = subset(test, cap, config.seed + 3) if test is not None else None
    heldout = subset(heldout, cap, config.seed + 4) if heldout is not None else None
    if config.threads is not None:
        import torch

        previous_threads = torch.get_num_threads()
        torch.set_num_threads(config.threads)
        try:
            return _evaluate(real, synthetic, out, config, train, test, heldout, t_start)
        finally:
            torch.set_num_threads(previous_threads)
    return _evaluate(real, synthetic, out, config, train, test, heldout, t_start)


def _evaluate(real: PreparedDataset, synthetic: PreparedDataset, out: str | os.PathLike, config: EvaluateConfig,
              train: PreparedDataset | None, test: PreparedDataset | None, heldout: PreparedDataset | None,
              t_start: float) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = DecodeStore()  # one per evaluation: the real set and its splits share decoded files
    wrap = lambda ds, name: EvalImages(ds, store, name) if ds is not None else None  # noqa: E731
    inputs = EvalInputs(real=wrap(real, "real"), synthetic=wrap(synthetic, "synthetic"), train=wrap(train, "train"),
                        test=wrap(test, "test"), heldout=wrap(heldout, "heldout"), config=config, out_dir=out)
    metrics: dict[str, Any] = {
        "mammosynth_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": dataclasses.asdict(config),
        "datasets": {"real": _describe(real), "synthetic": _describe(synthetic), "train": _describe(train),
                     "test": _describe(test), "heldout": _describe(heldout)},
    }
    timings: dict[str, float] = {}
    for check in writers():
        shared_before = sum(inputs.timings.values())
        t = time.perf_counter()
        metrics[check.key] = _record(check.compute(inputs))
        # a shared stage (classifier inputs...) is timed on its own, not in the check that ran it first
        timings[check.key] = time.perf_counter() - t - (sum(inputs.timings.values()) - shared_before)
    timings.update(inputs.timings)
    metrics["images"] = {"decoded": store.decodes, "decoding_s": store.seconds}
    metrics["verdict"] = verdict(metrics)
    timings["total_before_report"] = time.perf_counter() - t_start
    metrics["timings_s"] = timings
    replaced: list[str] = []
    safe = json_safe(metrics, replaced=replaced)
    safe["non_finite_replaced"] = replaced

    from .card import dataset_card
    from .html import render_report

    t = time.perf_counter()
    atomic_write_text(out / "metrics.json", json.dumps(safe, indent=2, allow_nan=False) + "\n")
    atomic_write_text(out / "dataset_card.md", dataset_card(safe))
    atomic_write_text(out / "report.html", render_report(safe, inputs.roles(), out))
    safe["timings_s"]["report"] = time.perf_counter() - t
    safe["timings_s"]["total"] = time.perf_counter() - t_start
    safe["images"]["decoded"] = store.decodes  # the report's thumbnails reuse decoded images
    atomic_write_text(out / "metrics.json", json.dumps(safe, indent=2, allow_nan=False) + "\n")
    return safe


def _record(result: Any) -> Any:
    """A check's result as stored in metrics (typed results -> their ``to_dict()``)."""
    return result.to_dict() if hasattr(result, "to_dict") else result
