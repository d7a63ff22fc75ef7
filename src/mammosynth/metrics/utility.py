"""Downstream utility: does adding synthetic mammograms help a classifier on real images?

Protocol (Pesapane et al., Diagnostics 2025, step 3): one small classifier is trained on
(a) the real training split, (b) real training + synthetic images, (c) synthetic images
only, each scored on the same independent real test split. Reported per regime: AUC with
a stratified bootstrap 95% CI (on the seed-averaged scores), the per-seed AUCs as
mean +- SD, and a paired DeLong test of (b) vs (a) on the same test images.

The classifier
--------------
A 3-block CNN (conv-BN-ReLU-maxpool, 8/16/32 channels, global average pooling) on
images downsampled to 64x40 (box filter), trained with AdamW, a one-cycle learning rate
and class-weighted cross-entropy for the same number of optimiser steps in every regime
(``epochs`` passes over the real training split, at least ``min_steps``: equal compute,
so (b) is not favoured by more training, only by more data). Why a CNN on pixels rather than a linear probe on
the texture features: it sees what a downstream CAD model sees (lesion shape, synthetic
artefacts), needs no downloaded weights, and costs about 20 s per training at the default
500 steps on two CPU cores (3 regimes x 3 seeds: about 3 minutes). Downsampled inputs are cached in the
metrics feature cache per dataset content hash.

Tasks (:data:`TASKS`): ``finding`` (any finding vs none), ``density`` (dense C/D vs
non-dense A/B; unknown density excluded), ``malignancy`` (malignant vs benign or no
finding; unknown pathology excluded).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..data.schema import ImageRecord
from ..utils import fit_one_cycle
from .stats import bootstrap_auc_ci, class_problem, delong_test, mean_spread, roc_auc, unavailable

TASKS = ("finding", "density", "malignancy")
TASK_DEFINITIONS = {
    "finding": "any finding (positive) vs no finding",
    "density": "dense breast, ACR C or D (positive) vs non-dense A or B",
    "malignancy": "malignant finding (positive) vs benign finding or no finding",
}
REGIMES = {"real": "(a) real train", "real+synthetic": "(b) real train + synthetic",
           "synthetic": "(c) synthetic only"}


@dataclass(frozen=True)
class ClassifierConfig:
    """The downstream CNN; defaults are used by ``mammosynth evaluate``."""

    input_size: tuple[int, int] = (64, 40)
    epochs: int = 8
    #: at least this many optimiser steps, whatever the set size: 8 passes over 200 images
    #: are 32 steps, after which the CNN cannot even tell phantom density A from D
    #: (kappa 0.1 on the demo's real test split; 0.85 after 500 steps)
    min_steps: int = 500
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    channels: tuple[int, ...] = (8, 16, 32)
    min_per_class: int = 2  # fewer training images of a class -> regime not trained

    def __post_init__(self) -> None:
        if len(self.input_size) != 2 or min(self.input_size) < 8:
            raise ValueError(f"input_size must be (H, W) with both >= 8, got {self.input_size}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.min_steps < 1:
            raise ValueError("epochs, min_steps and batch_size must be >= 1 and lr > 0")

    def steps_for(self, n: int) -> int:
        """Optimiser steps for a training set of ``n`` images: ``epochs`` passes, at least
        ``min_steps``."""
        return max(self.min_steps, self.epochs * -(-int(n) // self.batch_size))


def task_label(record: ImageRecord, task: str) -> int | None:
    """The binary label of ``record`` for ``task`` (None when unknown)."""
    if task == "finding":
        return int(bool(record.findings))
    if task == "density":
        if record.density in ("C", "D"):
            return 1
        return 0 if record.density in ("A", "B") else None
    if task == "malignancy":
        m = record.malignant
        return None if m is None else int(m)
    raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")


def task_labels(records: Sequence[ImageRecord], task: str) -> np.ndarray:
    """Labels as an int array with -1 for unknown."""
    return np.array([(-1 if (v := task_label(r, task)) is None else v) for r in records], dtype=np.int64)


def task_problem(task: str, train: Sequence[ImageRecord], test: Sequence[ImageRecord],
                 synthetic: Sequence[ImageRecord], min_per_class: int = 2) -> str | None:
    """Why ``task`` cannot be evaluated on these sets (None when it can)."""
    for name, recs in (("real train", train), ("real test", test), ("synthetic", synthetic)):
        y = task_labels(recs, task)
        y = y[y >= 0]
        problem = class_problem(y, min_per_class=min_per_class)
        if problem:
            return f"{name} set: {problem.replace('test set', 'set')}"
    return None


def choose_task(train: Sequence[ImageRecord], test: Sequence[ImageRecord], synthetic: Sequence[ImageRecord],
                min_per_class: int = 2) -> tuple[str | None, str]:
    """First task of :data:`TASKS` whose labels allow training and testing, with the reason."""
    reasons = []
    for task in TASKS:
        problem = task_problem(task, train, test, synthetic, min_per_class)
        if problem is None:
            skipped = f" ({'; '.join(reasons)})" if reasons else ""
            return task, f"auto-chosen: first of {list(TASKS)} with both classes in real train, real test " \
                         f"and synthetic sets{skipped}"
        reasons.append(f"{task}: {problem}")
    return None, "no task has both classes in real train, real test and synthetic sets: " + "; ".join(reasons)


# -- inputs --------------------------------------------------------------------------
INPUTS_VERSION = 1  # bump when the inputs' resampling (box filter from [0, 1]) changes: old entries are never read


def load_inputs(ds: Any, size: tuple[int, int], cache_dir: str | os.PathLike | None = None,
                use_cache: bool = True, desc: str = "") -> np.ndarray:
    """All images of ``ds`` downsampled to ``size`` as float32 [N, H, W] in [0, 1].

    Cached in the metrics feature cache (:class:`mammosynth.metrics.cache.FeatureCache`,
    ``cache_dir`` or its default) under the dataset's content hash and ``size``; otherwise
    the box-filtered view of ``ds`` (a PreparedDataset or a shared
    :class:`~mammosynth.metrics.images.EvalImages`, whose decoded images are reused).
    """
    from .cache import FeatureCache, cache_key
    from .images import as_eval_images

    cache = FeatureCache(cache_dir, enabled=use_cache and len(ds) > 0)
    key = cache_key(what="classifier_inputs", version=INPUTS_VERSION, content_hash=ds.content_hash,
                    size=list(size))
    hit = cache.load(key)
    if hit is not None and hit.get("x") is not None and hit["x"].shape == (len(ds), size[0], size[1]):
        return hit["x"]
    out = as_eval_images(ds).view(size, "box", desc=desc or f"loading {ds.root.name}")
    cache.save(key, {"x": out})
    return out


# -- the classifier ------------------------------------------------------------------
def _build_model(n_out: int, channels: tuple[int, ...]):
    import torch.nn as nn

    layers: list[nn.Module] = []
    c_in = 1
    for c in channels:
        layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2)]
        c_in = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(c_in, n_out)]
    return nn.Sequential(*layers)


def train_classifier(x: np.ndarray, y: np.ndarray, n_classes: int | Sequence[int],
                     config: ClassifierConfig = ClassifierConfig(), seed: int = 0, steps: int | None = None,
                     desc: str = "training"):
    """Train the CNN on images ``x`` [N, H, W] in [0, 1].

    One head: ``y`` [N] with labels in ``[0, n_classes)``. Several heads (one network, one
    softmax per label axis): ``n_classes`` a sequence and ``y`` [N, heads], -1 = unknown
    (ignored by that head's loss). Each head's cross-entropy is class-weighted (inverse
    frequency). ``steps`` (optimiser steps) defaults to ``config.steps_for(len(x))``; giving
    it explicitly matches the compute budget across training sets.
    """
    import torch
    import torch.nn.functional as F

    heads = [int(n_classes)] if np.ndim(n_classes) == 0 else [int(k) for k in n_classes]
    y = np.asarray(y, dtype=np.int64).reshape(len(y), -1) if len(heads) > 1 else np.asarray(y, dtype=np.int64)[:, None]
    if len(x) != len(y) or len(y) < 2:
        raise ValueError(f"need equal numbers (>= 2) of images and labels, got {len(x)} and {len(y)}")
    if y.shape[1] != len(heads):
        raise ValueError(f"labels have {y.shape[1]} columns for {len(heads)} heads")
    for h, k in enumerate(heads):
        col = y[:, h]
        if col.max() >= k or col.min() < (-1 if len(heads) > 1 else 0):
            raise ValueError(f"labels must be in [0, {k}), got range [{col.min()}, {col.max()}]")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = _build_model(sum(heads), config.channels)
    model.heads = tuple(heads)
    weights = []
    for h, k in enumerate(heads):
        col = y[:, h][y[:, h] >= 0]
        counts = np.bincount(col, minlength=k).astype(np.float64)
        w = np.where(counts > 0, max(len(col), 1) / (k * np.maximum(counts, 1)), 0.0)
        weights.append(torch.tensor(w, dtype=torch.float32))
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1) * 2.0 - 1.0
    yt = torch.from_numpy(y)
    bs = min(config.batch_size, len(yt))
    steps = steps if steps is not None else config.steps_for(len(yt))
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    order, pos = torch.randperm(len(yt), generator=gen), 0

    def step_loss():
        nonlocal order, pos
        if pos + bs > len(order):  # reshuffle: every batch is full (BatchNorm needs >= 2)
            order, pos = torch.randperm(len(yt), generator=gen), 0
        idx = order[pos:pos + bs]
        pos += bs
        out = model(xt[idx])
        loss = out.new_zeros(())
        for h, (logits, w) in enumerate(zip(out.split(heads, dim=1), weights)):
            target = yt[idx, h]
            if (target >= 0).any():
                loss = loss + F.cross_entropy(logits, target, weight=w, ignore_index=-1)
        return loss

    return fit_one_cycle(model, step_loss, steps, config.lr, config.weight_decay, desc)


def predict_heads(model, x: np.ndarray, batch_size: int = 256) -> list[np.ndarray]:
    """Class probabilities per head, each [N, n_classes], for images ``x`` [N, H, W] in [0, 1]."""
    import torch

    heads = list(model.heads)
    out: list[list[np.ndarray]] = [[] for _ in heads]
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size], dtype=np.float32))
            for h, logits in enumerate(model(xb.unsqueeze(1) * 2.0 - 1.0).split(heads, dim=1)):
                out[h].append(torch.softmax(logits, dim=1).numpy())
    return [np.concatenate(o).astype(np.float64) if o else np.zeros((0, k)) for o, k in zip(out, heads)]


def predict_proba(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities [N, n_classes] of a one-head model."""
    return predict_heads(model, x, batch_size)[0]


# -- the protocol --------------------------------------------------------------------
def regime_scores(train_x: np.ndarray, train_y: np.ndarray, syn_x: np.ndarray, syn_y: np.ndarray,
                  test_x: np.ndarray, seeds: Sequence[int], config: ClassifierConfig = ClassifierConfig(),
                  real_scores: Sequence[np.ndarray] | None = None
                  ) -> tuple[dict[str, list[np.ndarray]], dict[str, str]]:
    """Positive-class scores on ``test_x`` per regime and seed; reasons for regimes skipped.

    Labels ``-1`` (unknown) are dropped from training. ``real_scores``: regime (a)'s scores
    from an earlier evaluation with the same real splits, task, seeds and config (regime (a)
    sees no synthetic image), reused instead of retraining.
    """
    tr = train_y >= 0
    sy = syn_y >= 0
    sets = {
        "real": (train_x[tr], train_y[tr]),
        "real+synthetic": (np.concatenate([train_x[tr], syn_x[sy]]), np.concatenate([train_y[tr], syn_y[sy]])),
        "synthetic": (syn_x[sy], syn_y[sy]),
    }
    scores: dict[str, list[np.ndarray]] = {}
    skipped: dict[str, str] = {}
    # the same number of optimiser steps for every regime: config.epochs passes over the real
    # training images, at least min_steps (a fair, equal-compute comparison; more data is
    # not more training)
    steps = config.steps_for(int(tr.sum()))
    for regime, (x, y) in sets.items():
        problem = class_problem(y, min_per_class=config.min_per_class)
        if problem:
            skipped[regime] = f"training set: {problem.replace('test set', 'set')}"
            continue
        if regime == "real" and real_scores is not None and len(real_scores) == len(seeds):
            scores[regime] = [np.asarray(r) for r in real_scores]
            continue
        scores[regime] = []
        for seed in seeds:
            model = train_classifier(x, y, 2, config, seed=seed, steps=steps, desc=f"{regime} seed {seed}")
            scores[regime].append(predict_proba(model, test_x)[:, 1])
    return scores, skipped


def summarise_regimes(test_y: np.ndarray, scores: dict[str, list[np.ndarray]], skipped: dict[str, str],
                      n_boot: int = 1000, ci_method: str = "percentile", seed: int = 0,
                      min_per_class: int = 1) -> dict[str, Any]:
    """AUC + CI per regime (seed-averaged scores), seed spread, and DeLong (b) vs (a)."""
    known = test_y >= 0
    y = test_y[known]
    problem = class_problem(y, min_per_class=min_per_class)
    regimes: dict[str, Any] = {}
    for regime, label in REGIMES.items():
        if regime in skipped:
            regimes[regime] = unavailable(skipped[regime], label=label)
            continue
        if problem:
            regimes[regime] = unavailable(f"real test set: {problem}", label=label)
            continue
        per_seed = [roc_auc(y, s[known]) for s in scores[regime]]
        mean_scores = np.mean(scores[regime], axis=0)[known]
        res = bootstrap_auc_ci(y, mean_scores, n_boot=n_boot, method=ci_method, seed=seed)
        res.update(label=label, seeds=mean_spread(per_seed), per_seed=per_seed)
        regimes[regime] = res
    if "real" in scores and "real+synthetic" in scores and not problem:
        paired = delong_test(y, np.mean(scores["real"], axis=0)[known],
                             np.mean(scores["real+synthetic"], axis=0)[known])
    else:
        paired = unavailable(problem or "regime (a) or (b) was not trained", method="delong", p_value=None)
    paired["compared"] = "(b) real+synthetic minus (a) real"
    return {"regimes": regimes, "paired_b_vs_a": paired}
