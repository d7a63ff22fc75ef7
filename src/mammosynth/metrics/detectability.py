"""Classifier two-sample test: can a small CNN tell synthetic mammograms from real ones?

Why: Fréchet-type distances say "how far", not "how visible". A classifier trained to
separate the two sets and scored out of fold answers the question a radiologist would ask
("can you tell?") with an AUC: 0.5 means indistinguishable, 1.0 always told apart (Lopez-Paz
& Oquab 2017, classifier two-sample tests). The default GAN's samples give 0.97.

The floor
---------
A CNN trained on a few hundred images finds spurious differences even between two halves of
one set (0.55 for real vs real on mini-MIAS), so the synthetic AUC is judged against the AUC
of the same protocol on two disjoint halves of the real set (:func:`detectability_test`;
split by patient when ``real_groups`` is given, so one woman's films stay on one side).

Protocol (:func:`detectability`)
--------------------------------
* Inputs at native resolution (texture is what it should see); only images longer than
  ``max_side`` are area-downsampled.
* Balance: the larger side is subsampled (seeded) to the smaller's size, both capped at
  ``max_per_side``, so the AUC is not an artefact of class imbalance and the cost is bounded.
* Stratified k-fold CV (by group when groups are given); every image gets an out-of-fold
  score; AUC with a stratified bootstrap CI (:func:`.stats.bootstrap_auc_ci`), per stratum
  where each side has >= 5 images.
* The CNN: three stride-2 3x3 conv-BN-ReLU blocks (16, 32, 64 channels), global average
  pooling, one logit. No pooling or resizing before the first conv: its 3x3 kernels
  overlap at stride 2, so every pixel enters a filter and pixel-scale texture and noise
  stay visible (a high-pass filter evaluated at every second pixel still measures
  high-pass energy); a stride-1 stem doubled the cost on two cores. Trained with AdamW and a one-cycle schedule for a fixed number
  of steps (``epochs`` passes, at least ``min_steps``; no early stopping, nothing tuned on the
  test fold). Augmentation: random translation by up to ``shift`` px (zero fill); no blur, flip
  or resizing, which would alter the texture the test is about.
* Deterministic under ``seed`` for a given thread count.

Cost: 162 real vs 500 synthetic 128x128 films (162 vs 162 after balancing: 5 x 90 steps;
the floor on 80 vs 80: 5 x 40 steps) are about 650 steps of batch 32 at 0.09 CPU-s each on
one core, i.e. about a minute of CPU (8 passes: 47 CPU-s measured, everything included). With ``threads`` None torch uses every core this
process may run on; on a machine shared with other jobs ``threads=1`` is faster (OpenMP
threads wait on each other when one of them is descheduled).
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from ..utils import num_workers, progress
from .stats import bootstrap_auc_ci
from .twosample import MIN_STRATUM, Strata, check_stack, check_strata, finite, strata_index, strata_subset

BALANCE = ("subsample", "none")


@dataclass(frozen=True)
class DetectabilityConfig:
    """The classifier two-sample test; defaults are those of ``mammosynth evaluate``."""

    folds: int = 5
    max_side: int = 256
    balance: str = "subsample"
    max_per_side: int = 500
    #: a fixed schedule, no early stopping: ``epochs`` passes over the training folds, at
    #: least ``min_steps`` (blurred mini-MIAS films, sigma 1 px: AUC 0.997 after 10 passes, 0.92 after 8)
    epochs: int = 10
    min_steps: int = 40
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    channels: tuple[int, ...] = (16, 32, 64)
    shift: int = 4
    n_boot: int = 1000
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.folds < 2 or self.max_side < 16 or self.max_per_side < 2:
            raise ValueError("folds must be >= 2, max_side >= 16 and max_per_side >= 2")
        if self.balance not in BALANCE:
            raise ValueError(f"balance must be one of {BALANCE}, got {self.balance!r}")
        if self.epochs < 1 or self.min_steps < 1 or self.batch_size < 2 or self.lr <= 0 or not self.channels:
            raise ValueError("epochs, min_steps >= 1, batch_size >= 2, lr > 0 and channels non-empty required")

    def steps_for(self, n_train: int) -> int:
        """Optimiser steps per fold: ``epochs`` passes over ``n_train`` images, >= ``min_steps``."""
        return max(self.min_steps, self.epochs * -(-int(n_train) // self.batch_size))


@dataclass(frozen=True)
class DetectabilityResult:
    """Out-of-fold AUC of positives vs negatives, its bootstrap CI and per-stratum AUCs.

    ``pos_index`` / ``neg_index``: the images used (after balancing), ``pos_scores`` /
    ``neg_scores``: their out-of-fold logits (not in :meth:`to_dict`)."""

    auc: float
    ci_low: float
    ci_high: float
    n_pos: int
    n_neg: int
    n_pos_given: int
    n_neg_given: int
    seconds: float
    steps_per_fold: int
    level: float = 0.95
    n_boot: int = 1000
    strata: dict[str, dict[str, Any]] = field(default_factory=dict)
    pos_index: np.ndarray = field(default_factory=lambda: np.zeros(0, int), repr=False)
    neg_index: np.ndarray = field(default_factory=lambda: np.zeros(0, int), repr=False)
    pos_scores: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    neg_scores: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"auc": finite(self.auc), "ci_low": finite(self.ci_low), "ci_high": finite(self.ci_high),
                "level": self.level, "n_boot": self.n_boot, "n_pos": self.n_pos, "n_neg": self.n_neg,
                "n_pos_given": self.n_pos_given, "n_neg_given": self.n_neg_given,
                "seconds": round(self.seconds, 2), "steps_per_fold": self.steps_per_fold,
                "strata": {k: {kk: (finite(vv) if isinstance(vv, float) else vv) for kk, vv in v.items()}
                           for k, v in self.strata.items()}}


@dataclass(frozen=True)
class DetectabilityTest:
    """Synthetic-vs-real detectability and its real-vs-real floor.

    Verdict rule (:meth:`verdict`, ``margin`` m, default 0.10):

    * **fail**: the synthetic AUC's CI lies wholly above the floor AUC's CI
      (``synthetic.ci_low > floor.ci_high``) AND ``AUC - floor AUC >= m``: the CNN tells the
      synthetic films apart clearly better than it tells two halves of the real set apart,
      and by a margin that matters;
    * **warn**: not fail, but ``AUC - floor AUC >= m / 2`` (0.05 at the default);
    * **pass**: otherwise.
    """

    synthetic: DetectabilityResult
    floor: DetectabilityResult

    @property
    def margin(self) -> float:
        """AUC (synthetic vs real) minus the floor AUC (real vs real)."""
        return self.synthetic.auc - self.floor.auc

    def verdict(self, margin: float = 0.10) -> str:
        """"pass" | "warn" | "fail" by the rule in the class docstring."""
        if self.synthetic.ci_low > self.floor.ci_high and self.margin >= margin:
            return "fail"
        return "warn" if self.margin >= margin / 2 else "pass"

    def reason(self, margin: float = 0.10) -> str:
        """One sentence with the figures behind :meth:`verdict`."""
        s, f = self.synthetic, self.floor
        return (f"detectability AUC {s.auc:.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}] vs real-vs-real floor "
                f"{f.auc:.3f} [{f.ci_low:.3f}, {f.ci_high:.3f}]: margin {self.margin:+.3f} "
                f"({self.verdict(margin)} at margin {margin:.2f})")

    def to_dict(self, margin: float = 0.10) -> dict[str, Any]:
        return {"synthetic_vs_real": self.synthetic.to_dict(), "real_vs_real": self.floor.to_dict(),
                "margin": finite(self.margin), "verdict": self.verdict(margin), "verdict_margin": margin,
                "reason": self.reason(margin)}


# -- inputs ----------------------------------------------------------------------------
def _prepare(x: np.ndarray, max_side: int) -> np.ndarray:
    """Area-downsample a stack whose long side exceeds ``max_side``; otherwise as is."""
    h, w = x.shape[1:]
    if max(h, w) <= max_side:
        return x
    import torch
    import torch.nn.functional as F

    f = max_side / max(h, w)
    size = (max(1, round(h * f)), max(1, round(w * f)))
    return F.interpolate(torch.from_numpy(x).unsqueeze(1), size=size, mode="area").squeeze(1).numpy()


def _balance(n_pos: int, n_neg: int, config: DetectabilityConfig, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the positives and negatives used (sorted)."""
    if config.balance == "subsample":
        k = min(n_pos, n_neg, config.max_per_side)
        kp = kn = k
    else:
        kp, kn = min(n_pos, config.max_per_side), min(n_neg, config.max_per_side)
    pick = (lambda n, k: np.arange(n) if k >= n else np.sort(rng.choice(n, size=k, replace=False)))
    return pick(n_pos, kp), pick(n_neg, kn)


def _folds(n: int, k: int, groups: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Fold id per item: round-robin over a seeded permutation, or (with groups) whole
    groups greedily given to the fold with the fewest items so far."""
    if groups is None:
        out = np.empty(n, dtype=np.int64)
        out[rng.permutation(n)] = np.arange(n) % k
        return out
    uniq, inv = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    sizes = np.bincount(inv)
    fill = np.zeros(k, dtype=np.int64)
    gfold = np.empty(len(uniq), dtype=np.int64)
    for g in rng.permutation(len(uniq)):
        gfold[g] = int(np.argmin(fill))
        fill[gfold[g]] += sizes[g]
    return gfold[inv]


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(num_workers(threads))
    try:
        yield
    finally:
        torch.set_num_threads(old)


# -- the classifier --------------------------------------------------------------------
def build_texture_cnn(channels: Sequence[int] = (16, 32, 64)):
    """Stride-2 3x3 conv-BN-ReLU blocks, global average pooling, one logit."""
    import torch.nn as nn

    layers: list[nn.Module] = []
    c_in = 1
    for c in channels:
        layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c),
                   nn.ReLU(inplace=True)]
        c_in = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 1)]
    return nn.Sequential(*layers)


def _shift_batch(xb, shift: int, gen):
    """Each image translated by up to ``shift`` px in x and y (zero fill)."""
    import torch
    import torch.nn.functional as F

    if shift <= 0:
        return xb
    n, _, h, w = xb.shape
    padded = F.pad(xb, (shift, shift, shift, shift))
    off = torch.randint(0, 2 * shift + 1, (n, 2), generator=gen).tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(off)])


def _train_fold(x: np.ndarray, y: np.ndarray, config: DetectabilityConfig, seed: int, steps: int, desc: str,
                show: bool):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_texture_cnn(config.channels)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1) * 2.0 - 1.0
    yt = torch.from_numpy(y.astype(np.float32))
    bs = min(config.batch_size, len(yt))
    order, pos = torch.randperm(len(yt), generator=gen), 0
    model.train()
    for _ in progress(range(steps), total=steps, desc=desc, unit="step", disable=None if show else True):
        if pos + bs > len(order):  # reshuffle: every batch is full (BatchNorm needs >= 2)
            order, pos = torch.randperm(len(yt), generator=gen), 0
        idx = order[pos:pos + bs]
        pos += bs
        loss = F.binary_cross_entropy_with_logits(model(_shift_batch(xt[idx], config.shift, gen)).squeeze(1), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return model


def _scores(model, x: np.ndarray, batch_size: int = 128) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[s:s + batch_size], dtype=np.float32)).unsqueeze(1)
            out.append(model(xb * 2.0 - 1.0).squeeze(1).double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


# -- the protocol ----------------------------------------------------------------------
def _stratum_aucs(y: np.ndarray, s: np.ndarray, pos_strata: Strata, neg_strata: Strata, n_pos: int,
                  config: DetectabilityConfig) -> dict[str, dict[str, Any]]:
    out = {}
    for key, (pi, ni) in strata_index(pos_strata, neg_strata, MIN_STRATUM).items():
        sel = np.concatenate([pi, n_pos + ni])
        r = bootstrap_auc_ci(y[sel], s[sel], n_boot=config.n_boot, seed=config.seed)
        out[key] = {"auc": r["value"], "ci_low": r["ci_low"], "ci_high": r["ci_high"], "n_pos": len(pi),
                    "n_neg": len(ni)}
    return out


def detectability(pos_images: np.ndarray, neg_images: np.ndarray, pos_strata: Strata = None,
                  neg_strata: Strata = None, config: DetectabilityConfig = DetectabilityConfig(),
                  pos_groups: Sequence[str] | None = None, neg_groups: Sequence[str] | None = None,
                  progress: bool = False, desc: str = "detectability") -> DetectabilityResult:
    """Out-of-fold AUC of a CNN trained to tell ``pos_images`` from ``neg_images``.

    Images float [N, H, W] in [0, 1], both sets of one size. Strata: labels per image (or
    ``{axis: labels}``) for per-stratum AUCs; groups (e.g. patient ids) keep a group's
    images in one fold. See the module docstring for the protocol.
    """
    t0 = time.perf_counter()
    xp, _ = check_stack(pos_images, name="positive images")
    xn, _ = check_stack(neg_images, name="negative images")
    if xp.shape[1:] != xn.shape[1:]:
        raise ValueError(f"positive and negative images differ in size: {xp.shape[1:]} vs {xn.shape[1:]}")
    check_strata(pos_strata, len(xp), "positive strata")
    check_strata(neg_strata, len(xn), "negative strata")
    rng = np.random.default_rng(config.seed)
    pi, ni = _balance(len(xp), len(xn), config, rng)
    if min(len(pi), len(ni)) < config.folds:
        raise ValueError(f"need at least {config.folds} images per side (folds), got {len(pi)} and {len(ni)}")
    x = _prepare(np.concatenate([xp[pi], xn[ni]]), config.max_side)
    y = np.concatenate([np.ones(len(pi), np.int64), np.zeros(len(ni), np.int64)])
    groups = [None if g is None else np.asarray(g, dtype=str)[idx] for g, idx in ((pos_groups, pi), (neg_groups, ni))]
    fold = np.concatenate([_folds(len(pi), config.folds, groups[0], rng),
                           _folds(len(ni), config.folds, groups[1], rng)])
    scores = np.zeros(len(y))
    steps = config.steps_for(int((fold != 0).sum()))
    with _torch_threads(config.threads):
        for k in range(config.folds):
            test = fold == k
            model = _train_fold(x[~test], y[~test], config, config.seed * 1000 + k, steps,
                                f"{desc} fold {k + 1}/{config.folds}", progress)
            scores[test] = _scores(model, x[test])
    r = bootstrap_auc_ci(y, scores, n_boot=config.n_boot, seed=config.seed)
    strata = _stratum_aucs(y, scores, strata_subset(pos_strata, pi), strata_subset(neg_strata, ni), len(pi), config)
    return DetectabilityResult(auc=r["value"], ci_low=r["ci_low"], ci_high=r["ci_high"], n_pos=len(pi),
                               n_neg=len(ni), n_pos_given=len(xp), n_neg_given=len(xn),
                               seconds=time.perf_counter() - t0, steps_per_fold=steps, level=r["level"],
                               n_boot=config.n_boot, strata=strata, pos_index=pi, neg_index=ni,
                               pos_scores=scores[:len(pi)], neg_scores=scores[len(pi):])


def split_halves(n: int, groups: Sequence[str] | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of ``range(n)`` (seeded); with ``groups``, whole groups per half."""
    rng = np.random.default_rng(seed)
    side = _folds(n, 2, None if groups is None else np.asarray(groups, dtype=str), rng)
    return np.flatnonzero(side == 0), np.flatnonzero(side == 1)


def detectability_test(real_images: np.ndarray, syn_images: np.ndarray, real_strata: Strata = None,
                       syn_strata: Strata = None, config: DetectabilityConfig = DetectabilityConfig(),
                       real_groups: Sequence[str] | None = None, progress: bool = False) -> DetectabilityTest:
    """Synthetic (positive) vs real (negative) detectability, and the floor: the same
    protocol on two disjoint halves of the real set (by ``real_groups``, e.g. patient ids,
    when given). See :class:`DetectabilityTest` for the verdict rule."""
    real = np.asarray(real_images)
    groups = None if real_groups is None else np.asarray(real_groups, dtype=str)
    if groups is not None and len(groups) != len(real):
        raise ValueError(f"real_groups: {len(groups)} ids for {len(real)} images")
    syn = detectability(syn_images, real, syn_strata, real_strata, config, neg_groups=groups,
                        progress=progress, desc="synthetic vs real")
    a, b = split_halves(len(real), groups, config.seed)
    floor = detectability(real[a], real[b], strata_subset(real_strata, a), strata_subset(real_strata, b), config,
                          pos_groups=None if groups is None else groups[a],
                          neg_groups=None if groups is None else groups[b], progress=progress,
                          desc="real vs real")
    return DetectabilityTest(synthetic=syn, floor=floor)
