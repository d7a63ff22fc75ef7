"""``evaluate()``: the whole fitness-for-use protocol for one synthetic set, in one call.

Steps (Pesapane et al., Diagnostics 2025): (1) governance record of model and source
data, (2) statistical comparison with the real population (+ conditioning fidelity),
(3) a classifier trained with and without synthetic data, tested on independent real
images, (4) subgroup analyses; plus near-copy (memorisation) and diversity checks from
:func:`mammosynth.metrics.fidelity.compute_image_metrics`.

Writes ``OUT/report.html`` (self-contained), ``OUT/metrics.json`` (everything, no NaN)
and ``OUT/dataset_card.md`` (Markdown with YAML front matter) and returns the metrics.

Which real images are used for what
-----------------------------------
* fidelity ``real``: the real set as given (``PATH`` or ``PATH:split``);
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
from ..metrics.conditioning import conditioned_axes, conditioning_fidelity
from ..metrics.equity import equity_analysis
from ..metrics.stats import CI_METHODS, unavailable
from ..metrics.utility import (TASK_DEFINITIONS, TASKS, ClassifierConfig, choose_task, load_inputs, regime_scores,
                               summarise_regimes, task_labels, task_problem)
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


def governance(real: PreparedDataset, synthetic: PreparedDataset) -> dict[str, Any]:
    """Step 1: what the synthetic set came from (source data, model, generation settings)."""
    settings = synthetic.info.get("settings") or {}
    gen = settings.get("generator")
    if not isinstance(gen, dict):
        gen = (synthetic.info.get("source") or {}).get("generator")
    gen = gen if isinstance(gen, dict) else {}
    first = (synthetic.records[0].generation if synthetic.records else None) or {}
    model = {k: gen.get(k) or first.get(k) for k in ("checkpoint_sha256", "run", "step", "kimg")}
    model.update(resolution=gen.get("resolution"), label_axes=gen.get("label_axes"))
    return {
        "real": {"path": str(real.root), "source": real.info.get("source") or {}, "content_hash": real.content_hash,
                 "manifest_sha256": real.info.get("manifest_sha256"), "settings": real.info.get("settings") or {},
                 "created": real.info.get("created")},
        "synthetic": {"path": str(synthetic.root), "kind": synthetic.kind, "source": synthetic.info.get("source") or {},
                      "content_hash": synthetic.content_hash,
                      "manifest_sha256": synthetic.info.get("manifest_sha256"), "created": synthetic.info.get("created"),
                      "complete": synthetic.info.get("complete"), "provenance": synthetic.info.get("provenance")},
        "model": model,
        "generation_settings": settings,
    }


def _image_metrics(real, synthetic, train, heldout, config: EvaluateConfig) -> dict[str, Any]:
    if not config.image_metrics:
        return unavailable("image metrics switched off (image_metrics=False)")
    try:
        from ..metrics.fidelity import ImageMetricsConfig, compute_image_metrics
    except ImportError as exc:
        return unavailable(f"mammosynth.metrics.fidelity could not be imported ({exc})")
    ic = config.image_config if config.image_config is not None else ImageMetricsConfig()
    if not isinstance(ic, ImageMetricsConfig):
        raise ValueError(f"image_config must be an ImageMetricsConfig, got {type(ic).__name__}")
    ic = dataclasses.replace(ic, cache_dir=config.cache_dir, use_cache=config.use_cache, seed=config.seed)
    if config.inception_weights is not None:
        ic = dataclasses.replace(ic, inception_weights=config.inception_weights)
    try:
        out = compute_image_metrics(real, synthetic, train=train, heldout=heldout, config=ic)
    except (ValueError, RuntimeError) as exc:
        return unavailable(f"image metrics failed: {exc}")
    return {"available": True, "reason": None, **out}


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
    timings: dict[str, float] = {}
    metrics: dict[str, Any] = {
        "mammosynth_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": dataclasses.asdict(config),
        "datasets": {"real": _describe(real), "synthetic": _describe(synthetic), "train": _describe(train),
                     "test": _describe(test), "heldout": _describe(heldout)},
        "governance": governance(real, synthetic),
    }

    t = time.perf_counter()
    metrics["image_metrics"] = _image_metrics(real, synthetic, train, heldout, config)
    timings["image_metrics"] = time.perf_counter() - t

    if train is None or test is None:
        why = ("no real training split (pass --train)" if train is None else "no real test split (pass --test)")
        metrics["conditioning"] = unavailable(why)
        metrics["utility"] = unavailable(why)
        metrics["equity"] = unavailable(why)
    else:
        t = time.perf_counter()
        size = config.classifier.input_size
        kw = {"cache_dir": config.cache_dir, "use_cache": config.use_cache}
        train_x = load_inputs(train, size, desc="classifier inputs: train", **kw)
        test_x = load_inputs(test, size, desc="classifier inputs: test", **kw)
        syn_x = load_inputs(synthetic, size, use_cache=False, cache_dir=config.cache_dir,
                            desc="classifier inputs: synthetic")
        timings["classifier_inputs"] = time.perf_counter() - t

        t = time.perf_counter()
        axes, axes_from = conditioned_axes(synthetic)
        cond_axes = conditioning_fidelity(train.records, train_x, test.records, test_x, synthetic.records, syn_x,
                                          axes, config.classifier, seed=config.seed)
        metrics["conditioning"] = {"available": bool(axes), "reason": None if axes else "no conditioned axis found "
                                   f"({axes_from})", "axes_from": axes_from, "axes": cond_axes}
        timings["conditioning"] = time.perf_counter() - t

        t = time.perf_counter()
        metrics["utility"], metrics["equity"] = _utility(train, test, synthetic, train_x, test_x, syn_x, config)
        timings["utility_equity"] = time.perf_counter() - t

    metrics["verdict"] = verdict(metrics)
    timings["total_before_report"] = time.perf_counter() - t_start
    metrics["timings_s"] = timings
    replaced: list[str] = []
    safe = json_safe(metrics, replaced=replaced)
    safe["non_finite_replaced"] = replaced

    from .card import dataset_card
    from .html import render_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    atomic_write_text(out / "metrics.json", json.dumps(safe, indent=2, allow_nan=False) + "\n")
    atomic_write_text(out / "dataset_card.md", dataset_card(safe))
    atomic_write_text(out / "report.html", render_report(safe, {"real": real, "synthetic": synthetic, "train": train,
                                                                "test": test, "heldout": heldout}))
    safe["timings_s"]["report"] = time.perf_counter() - t
    safe["timings_s"]["total"] = time.perf_counter() - t_start
    atomic_write_text(out / "metrics.json", json.dumps(safe, indent=2, allow_nan=False) + "\n")
    return safe


def _utility(train, test, synthetic, train_x, test_x, syn_x, config: EvaluateConfig) -> tuple[dict, dict]:
    """Steps 3 and 4: regimes (a)/(b)/(c) on the real test split, then subgroups."""
    cc = config.classifier
    if config.task is not None:
        task = config.task
        problem = task_problem(task, train.records, test.records, synthetic.records, cc.min_per_class)
        why = f"given ({config.task})"
        if problem:
            msg = f"task {task!r}: {problem}"
            return unavailable(msg, task=task), unavailable(msg)
    else:
        task, why = choose_task(train.records, test.records, synthetic.records, cc.min_per_class)
        if task is None:
            return unavailable(why, task=None), unavailable(why)
    seeds = [config.seed + k for k in range(config.seeds)]
    ytr, yte, ysy = (task_labels(d.records, task) for d in (train, test, synthetic))
    scores, skipped = regime_scores(train_x, ytr, syn_x, ysy, test_x, seeds, cc)
    summary = summarise_regimes(yte, scores, skipped, n_boot=config.n_boot, ci_method=config.ci_method,
                                seed=config.seed)
    mean_scores = {r: np.mean(s, axis=0) for r, s in scores.items()}
    util = {"available": True, "reason": None, "task": task, "task_definition": TASK_DEFINITIONS[task],
            "task_choice": why, "seeds": seeds,
            "classifier": {**dataclasses.asdict(cc), "steps": cc.steps_for(int((ytr >= 0).sum())),
                           "model": "3-block CNN (conv-BN-ReLU-maxpool) + global "
                           "average pooling, AdamW, one-cycle LR, class-weighted cross-entropy"},
            "n_train": {"real": int((ytr >= 0).sum()), "synthetic": int((ysy >= 0).sum())},
            "n_test": {"total": int((yte >= 0).sum()), "positive": int((yte == 1).sum()),
                       "negative": int((yte == 0).sum())},
            "ci": f"stratified bootstrap ({config.n_boot} replicates, {config.ci_method}) on seed-averaged scores",
            "paired_test": "DeLong test for correlated AUCs on the same real test images (seed-averaged scores)",
            **summary}
    util["roc"] = _roc(yte, mean_scores)
    eq = equity_analysis(test.records, yte, mean_scores, task, n_boot=config.n_boot, ci_method=config.ci_method,
                         seed=config.seed, min_per_class=config.min_subgroup_per_class)
    eq.update(available=True, reason=None, task=task)
    return util, eq


def _roc(y: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, Any]:
    from ..metrics.stats import class_problem, roc_curve_points

    known = y >= 0
    if class_problem(y[known]):
        return {}
    out = {}
    for regime, s in scores.items():
        fpr, tpr = roc_curve_points(y[known], s[known])
        out[regime] = {"fpr": fpr, "tpr": tpr}
    return out
