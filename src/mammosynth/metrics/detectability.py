"""Classifier two-sample test: can a small CNN tell synthetic mammograms from real ones?

Why: Fréchet-type distances say "how far", not "how visible". A classifier trained to
separate the two sets and scored out of fold answers the question a radiologist would ask
("can you tell?") with an AUC: 0.5 means indistinguishable, 1.0 always told apart (Lopez-Paz
& Oquab 2017, classifier two-sample tests).

The floor
---------
A CNN trained on a few hundred images finds spurious differences even between two halves of
one set (0.55 for real vs real on mini-MIAS with the previous protocol), so the synthetic AUC is judged against the AUC
of the same protocol on two disjoint halves of the real set (:func:`detectability_floor`;
split by patient when ``real_groups`` is given, so one woman's films stay on one side).
One halving is luck as much as measure: on 54 held-back mini-MIAS films (128x128) six
halvings read 0.33 to 0.59 (mean 0.50, SD 0.09), so the floor is the mean over
``floor_splits`` halvings (3 by default), each with its own seed; its CI is the mean of
theirs (one split's sampling uncertainty, without the luck of the split). The floor depends
only on the real set and the settings: ``mammosynth evaluate`` caches it.

Protocol (:func:`detectability`)
--------------------------------
* All the data: no subsampling by default (``balance="batches"``): every training batch is
  half positives, half negatives, so class imbalance does not bias the networks and the AUC
  (which does not need equal sizes) uses every image; ``max_per_side`` (default 1000)
  caps the cost; ``balance="subsample"`` restores equal sizes.
* Inputs at native resolution; only images longer than ``max_side`` are area-downsampled.
* Stratified k-fold CV (by group when groups are given); every image gets an out-of-fold
  score; AUC with a stratified bootstrap CI (:func:`.stats.bootstrap_auc_ci`), per stratum
  where each side has >= 5 images.
* Two views, their logits averaged into the image's score:

  - **crops** (texture): a CNN with a stride-1 3x3 stem (``stem`` channels: 1-2 px
    texture) and stride-2 blocks (``channels``) trained for ``steps`` steps on random
    ``crop`` x ``crop`` windows (default 64, or the largest power of two <= the short side
    / 2; whole images below 16) at native resolution, centred on breast pixels
    (``pos_masks`` / ``neg_masks``; anywhere without masks), half flipped upside down
    (no resizing or blur, which would alter the texture). Whole images give a few dozen
    samples per fold; crops give thousands of distinct ones. An image's crop score is the
    mean logit over a fixed grid of up to ``score_crops`` crops inside its breast
    (:func:`.detectability_nets.score_grid`; the networks and their training:
    :mod:`.detectability_nets`);
  - **whole image** (layout: where breast, pectoral muscle and bright structures lie): the
    stride-2 CNN on the image area-downsampled to ``whole_side`` px on the long side,
    ``whole_steps`` steps, random shifts of up to ``shift`` px (``whole_side=0`` switches
    it off).

  AdamW with a one-cycle schedule, fixed step counts (no early stopping, nothing tuned on
  the test fold).
* Deterministic under ``seed`` for a given thread count.

Figures and cost
----------------
Measured (mini-MIAS 128x128, one thread): 54 held-back films vs 160 samples of a GAN
whose tissue is smooth blobs (beta 6.8 against 3.1): AUC 1.000 [1.000, 1.000] (crop view
1.000, whole-image view 0.998), floor (27 vs 27 films, by patient) 0.516 [0.359, 0.679];
95 s for the synthetic test and 89 s for the floor (cost is set by the fixed step counts,
hardly by the number of images). The previous whole-image, subsampled protocol gave the
same samples 0.706 [0.61, 0.80] (an outside detector: 0.97). What real films must lose
to be told apart (a blur, added noise): ``benchmarks/detectability_calibration.py`` and
the README. Not yet measured: the 162-film floor, 162 vs 1000; the defaults
``steps=300``, ``whole_steps=150`` are not tuned. With ``threads``
None the test keeps the caller's torch thread count (``mammosynth evaluate --threads``, a
benchmark's ``--threads``; torch's default is every core); on a machine shared with other
jobs ``threads=1`` is faster (OpenMP threads wait on each other when one is descheduled:
two 1-thread jobs side by side, each with a test that took every core, ran over 5x slower).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .detectability_nets import (CropCentres, crop_scores, score_grid, torch_threads, train_crop_net, train_whole_net,
                                 whole_scores)
from .stats import bootstrap_auc_ci
from .twosample import MIN_STRATUM, Strata, check_stack, check_strata, finite, strata_index, strata_subset

BALANCE = ("batches", "subsample", "none")


@dataclass(frozen=True)
class DetectabilityConfig:
    """The classifier two-sample test; defaults are those of ``mammosynth evaluate``."""

    folds: int = 5
    max_side: int = 256
    #: "batches": every training batch half positives, half negatives (all images used);
    #: "subsample": the larger side subsampled to the smaller's size; "none": as given
    balance: str = "batches"
    max_per_side: int = 1000
    #: crop side in px (None: 64, or the largest power of two <= the short side / 2; whole
    #: images when that is below 16)
    crop: int | None = None
    #: optimiser steps per fold of the crop network and of the whole-image network
    steps: int = 300
    whole_steps: int = 150
    #: crops per image averaged into its score (a fixed grid inside the breast)
    score_crops: int = 16
    #: long side of the whole-image view (area-downsampled); 0 switches the view off
    whole_side: int = 64
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    #: channels of the stride-2 blocks; ``stem``: a stride-1 conv before them in the crop network (0: none)
    channels: tuple[int, ...] = (16, 32, 64)
    stem: int = 16
    #: random translation (px) of the whole-image view
    shift: int = 2
    n_boot: int = 1000
    seed: int = 0
    threads: int | None = None
    #: the floor is the mean over this many random halvings of the real set (seeds
    #: ``seed``, ``seed + 1``, ...): six halvings of 54 films read 0.33 to 0.59
    floor_splits: int = 3

    def __post_init__(self) -> None:
        if self.folds < 2 or self.max_side < 16 or self.max_per_side < 2:
            raise ValueError("folds must be >= 2, max_side >= 16 and max_per_side >= 2")
        if self.floor_splits < 1:
            raise ValueError(f"floor_splits must be >= 1, got {self.floor_splits!r}")
        if self.balance not in BALANCE:
            raise ValueError(f"balance must be one of {BALANCE}, got {self.balance!r}")
        if self.steps < 1 or self.whole_steps < 0 or self.batch_size < 2 or self.lr <= 0 or not self.channels:
            raise ValueError("steps >= 1, whole_steps >= 0, batch_size >= 2, lr > 0 and channels non-empty required")
        if (self.crop is not None and self.crop < 4) or self.score_crops < 1 or self.whole_side < 0 or self.stem < 0:
            raise ValueError("crop >= 4 (or None), score_crops >= 1, whole_side >= 0 and stem >= 0 required")

    def crop_for(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """Crop (height, width) for images of ``shape`` (..., H, W): see ``crop``."""
        h, w = int(shape[-2]), int(shape[-1])
        c = self.crop
        if c is None:
            c = min(64, 1 << int(math.floor(math.log2(max(1, min(h, w) // 2)))))
            if c < 16:
                return h, w
        return min(c, h), min(c, w)


@dataclass(frozen=True)
class DetectabilityResult:
    """Out-of-fold AUC of positives vs negatives, its bootstrap CI and per-stratum AUCs.

    ``pos_index`` / ``neg_index``: the images used (all up to ``max_per_side`` unless
    ``balance="subsample"``), ``pos_scores`` / ``neg_scores``: their out-of-fold scores,
    ``pos_views`` / ``neg_views``: the crop and whole-image logits averaged into them (not
    in :meth:`to_dict`). ``steps_per_fold``: steps of the crop network."""

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
    #: per image [crop logit, whole-image logit], the two views behind the score
    pos_views: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    neg_views: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    #: a mean over repeated runs (:meth:`mean_of`, the floor): each run's AUC and its
    #: views' AUCs; empty for a single run
    split_aucs: tuple[float, ...] = ()
    split_views: tuple[dict[str, float | None], ...] = ()

    ARRAYS = ("pos_index", "neg_index", "pos_scores", "neg_scores", "pos_views", "neg_views")

    def __post_init__(self) -> None:
        # JSON (the cache) gives lists back
        object.__setattr__(self, "split_aucs", tuple(float(a) for a in self.split_aucs))
        object.__setattr__(self, "split_views", tuple(dict(v) for v in self.split_views))

    @classmethod
    def mean_of(cls, runs: Sequence["DetectabilityResult"]) -> "DetectabilityResult":
        """One result for the same test run on several random splits: AUC, CI bounds and
        per-stratum figures are the runs' means (a CI's width is one run's sampling
        uncertainty; the mean removes the luck of one split), seconds their sum, images and
        arrays those of the first run. ``split_aucs`` keeps each run's AUC."""
        runs = list(runs)
        if not runs:
            raise ValueError("mean_of needs at least one result")
        if len(runs) == 1:
            return runs[0]
        mean = lambda xs: float(np.mean(xs))  # noqa: E731
        strata = {}
        for name in set.intersection(*(set(r.strata) for r in runs)):
            per = [r.strata[name] for r in runs]
            strata[name] = {k: (mean([p[k] for p in per]) if isinstance(v, float) else v) for k, v in per[0].items()}
        first = runs[0]
        return dataclasses.replace(first, auc=mean([r.auc for r in runs]), ci_low=mean([r.ci_low for r in runs]),
                                   ci_high=mean([r.ci_high for r in runs]), seconds=sum(r.seconds for r in runs),
                                   strata=strata, split_aucs=tuple(r.auc for r in runs),
                                   split_views=tuple(r.view_aucs() for r in runs))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every field as numpy arrays (scalars and strata as one JSON string): a cache entry."""
        import json

        scalars = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in self.ARRAYS}
        return {"scalars": np.asarray(json.dumps(scalars, default=float)),
                **{k: np.asarray(getattr(self, k)) for k in self.ARRAYS}}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "DetectabilityResult":
        """Inverse of :meth:`to_arrays`."""
        import json

        return cls(**json.loads(str(arrays["scalars"])), **{k: np.asarray(arrays[k]) for k in cls.ARRAYS})

    def view_aucs(self) -> dict[str, float | None]:
        """The AUC of each view alone: ``texture`` (the crop network) and ``layout`` (the
        whole-image network; None when that view is off). Which one is high tells what gives
        the positives away: their tissue, or where things lie in the film."""
        from .stats import roc_auc

        if self.split_views:  # a mean over splits: the mean of each view's AUC
            return {k: (None if any(v[k] is None for v in self.split_views)
                        else finite(float(np.mean([v[k] for v in self.split_views])))) for k in ("texture", "layout")}
        if not len(self.pos_views) or not len(self.neg_views):
            return {"texture": None, "layout": None}
        y = np.r_[np.ones(len(self.pos_views), int), np.zeros(len(self.neg_views), int)]
        v = np.concatenate([self.pos_views, self.neg_views])
        layout_on = bool(np.any(v[:, 1] != 0))
        return {"texture": finite(roc_auc(y, v[:, 0])), "layout": finite(roc_auc(y, v[:, 1])) if layout_on else None}

    def to_dict(self) -> dict[str, Any]:
        return {"auc": finite(self.auc), "ci_low": finite(self.ci_low), "ci_high": finite(self.ci_high),
                "views": self.view_aucs(),
                "level": self.level, "n_boot": self.n_boot, "n_pos": self.n_pos, "n_neg": self.n_neg,
                "n_pos_given": self.n_pos_given, "n_neg_given": self.n_neg_given,
                "seconds": round(self.seconds, 2), "steps_per_fold": self.steps_per_fold,
                "splits": [finite(a) for a in self.split_aucs],
                "strata": {k: {kk: (finite(vv) if isinstance(vv, float) else vv) for kk, vv in v.items()}
                           for k, v in self.strata.items()}}


@dataclass(frozen=True)
class DetectabilityTest:
    """Synthetic-vs-real detectability and its real-vs-real floor.

    Verdict rule (:meth:`verdict`, ``margin`` m, default 0.10):

    * **fail**: the synthetic AUC's CI lies wholly above the floor AUC's CI
      (``synthetic.ci_low > floor.ci_high``) AND ``AUC - reference >= m``: the CNN tells the
      synthetic films apart clearly better than it tells two halves of the real set apart,
      and by a margin that matters;
    * **warn**: not fail, but ``AUC - reference >= m / 2`` (0.05 at the default);
    * **pass**: otherwise.

    The reference is the floor AUC, or chance (0.5) when the floor lies below it: an
    out-of-fold AUC under 0.5 is noise, not a lower bar (two phantom sets drawn from one
    generator read 0.531 against a floor of 0.461, which would otherwise warn).
    """

    synthetic: DetectabilityResult
    floor: DetectabilityResult

    @property
    def margin(self) -> float:
        """AUC (synthetic vs real) minus the floor AUC (real vs real), or minus 0.5 when
        the floor is below chance."""
        return self.synthetic.auc - max(self.floor.auc, 0.5)

    def verdict(self, margin: float = 0.10) -> str:
        """"pass" | "warn" | "fail" by the rule in the class docstring."""
        if self.synthetic.ci_low > self.floor.ci_high and self.margin >= margin:
            return "fail"
        return "warn" if self.margin >= margin / 2 else "pass"

    def reason(self, margin: float = 0.10) -> str:
        """One sentence with the figures behind :meth:`verdict`."""
        s, f = self.synthetic, self.floor
        splits = (f" (mean of {len(f.split_aucs)} halvings: {', '.join(f'{a:.3f}' for a in f.split_aucs)})"
                  if len(f.split_aucs) > 1 else "")
        return (f"detectability AUC {s.auc:.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}] vs real-vs-real floor "
                f"{f.auc:.3f} [{f.ci_low:.3f}, {f.ci_high:.3f}]{splits}: margin {self.margin:+.3f}"
                f"{' (over chance: the floor is below 0.5)' if f.auc < 0.5 else ''} "
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


def _prepare_masks(m: np.ndarray | None, n: int, shape: tuple[int, int], max_side: int) -> np.ndarray:
    """Masks on the grid of :func:`_prepare` (all True when none are given)."""
    if m is None:
        return np.ones((n, *shape), bool)
    m = np.asarray(m).astype(bool, copy=False)
    if m.shape[1:] == shape:
        return m
    return _prepare(m.astype(np.float32), max_side) > 0.5


def _balance(n_pos: int, n_neg: int, config: DetectabilityConfig, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the positives and negatives used (sorted): all up to ``max_per_side``
    (a seeded subsample beyond it), or equal numbers with ``balance="subsample"``."""
    if config.balance == "subsample":
        kp = kn = min(n_pos, n_neg, config.max_per_side)
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


def _check_masks(masks: np.ndarray | None, x: np.ndarray, name: str) -> np.ndarray | None:
    if masks is None:
        return None
    m = np.asarray(masks)
    if m.shape != x.shape:
        raise ValueError(f"{name}: shape {m.shape}, images {x.shape}")
    return m.astype(bool, copy=False)


def _oof_scores(x: np.ndarray, m: np.ndarray, y: np.ndarray, fold: np.ndarray, config: DetectabilityConfig,
                desc: str, show: bool) -> np.ndarray:
    """Out-of-fold scores [N, 2]: mean crop logit, whole-image logit (0 without that view)."""
    import torch

    crop = config.crop_for(x.shape)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) * 2.0 - 1.0
    grid = score_grid(m, crop, config.score_crops)
    xw = None
    if config.whole_side and config.whole_steps:
        xw = torch.from_numpy(np.ascontiguousarray(_prepare(x, config.whole_side), dtype=np.float32)) * 2.0 - 1.0
    out = np.zeros((len(y), 2))
    for k in range(config.folds):
        test, train = np.flatnonzero(fold == k), np.flatnonzero(fold != k)
        seed = config.seed * 1000 + k
        tag = f"{desc} fold {k + 1}/{config.folds}"
        net = train_crop_net(xt[train], y[train], CropCentres(m[train]), crop, config, seed, tag + " crops", show)
        out[test, 0] = crop_scores(net, xt[test], [grid[i] for i in test], crop)
        if xw is not None:
            net = train_whole_net(xw[train], y[train], config, seed + 500, tag + " whole", show)
            out[test, 1] = whole_scores(net, xw[test])
    return out


def detectability(pos_images: np.ndarray, neg_images: np.ndarray, pos_strata: Strata = None,
                  neg_strata: Strata = None, config: DetectabilityConfig = DetectabilityConfig(),
                  pos_groups: Sequence[str] | None = None, neg_groups: Sequence[str] | None = None,
                  progress: bool = False, desc: str = "detectability", pos_masks: np.ndarray | None = None,
                  neg_masks: np.ndarray | None = None) -> DetectabilityResult:
    """Out-of-fold AUC of CNNs trained to tell ``pos_images`` from ``neg_images``.

    Images float [N, H, W] in [0, 1], both sets of one size; masks (optional, bool, same
    shape) confine crop centres to the breast (None: anywhere). Strata: labels per image
    (or ``{axis: labels}``) for per-stratum AUCs; groups (e.g. patient ids) keep a
    group's images in one fold. See the module docstring for the protocol.
    """
    t0 = time.perf_counter()
    xp, _ = check_stack(pos_images, name="positive images")
    xn, _ = check_stack(neg_images, name="negative images")
    if xp.shape[1:] != xn.shape[1:]:
        raise ValueError(f"positive and negative images differ in size: {xp.shape[1:]} vs {xn.shape[1:]}")
    mp, mn = _check_masks(pos_masks, xp, "positive masks"), _check_masks(neg_masks, xn, "negative masks")
    check_strata(pos_strata, len(xp), "positive strata")
    check_strata(neg_strata, len(xn), "negative strata")
    rng = np.random.default_rng(config.seed)
    pi, ni = _balance(len(xp), len(xn), config, rng)
    if min(len(pi), len(ni)) < config.folds:
        raise ValueError(f"need at least {config.folds} images per side (folds), got {len(pi)} and {len(ni)}")
    x = _prepare(np.concatenate([xp[pi], xn[ni]]), config.max_side)
    m = np.concatenate([_prepare_masks(None if mm is None else mm[i], len(i), x.shape[1:], config.max_side)
                        for mm, i in ((mp, pi), (mn, ni))])
    y = np.concatenate([np.ones(len(pi), np.int64), np.zeros(len(ni), np.int64)])
    groups = [None if g is None else np.asarray(g, dtype=str)[idx] for g, idx in ((pos_groups, pi), (neg_groups, ni))]
    fold = np.concatenate([_folds(len(pi), config.folds, groups[0], rng),
                           _folds(len(ni), config.folds, groups[1], rng)])
    with torch_threads(config.threads):
        views = _oof_scores(x, m, y, fold, config, desc, progress)
    # one score per image: the two views' logits averaged (each a log-odds estimate)
    scores = views.mean(1) if config.whole_side and config.whole_steps else views[:, 0]
    r = bootstrap_auc_ci(y, scores, n_boot=config.n_boot, seed=config.seed)
    strata = _stratum_aucs(y, scores, strata_subset(pos_strata, pi), strata_subset(neg_strata, ni), len(pi), config)
    return DetectabilityResult(auc=r["value"], ci_low=r["ci_low"], ci_high=r["ci_high"], n_pos=len(pi),
                               n_neg=len(ni), n_pos_given=len(xp), n_neg_given=len(xn),
                               seconds=time.perf_counter() - t0, steps_per_fold=config.steps, level=r["level"],
                               n_boot=config.n_boot, strata=strata, pos_index=pi, neg_index=ni,
                               pos_scores=scores[:len(pi)], neg_scores=scores[len(pi):],
                               pos_views=views[:len(pi)], neg_views=views[len(pi):])


def split_halves(n: int, groups: Sequence[str] | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of ``range(n)`` (seeded); with ``groups``, whole groups per half."""
    rng = np.random.default_rng(seed)
    side = _folds(n, 2, None if groups is None else np.asarray(groups, dtype=str), rng)
    return np.flatnonzero(side == 0), np.flatnonzero(side == 1)


def detectability_test(real_images: np.ndarray, syn_images: np.ndarray, real_strata: Strata = None,
                       syn_strata: Strata = None, config: DetectabilityConfig = DetectabilityConfig(),
                       real_groups: Sequence[str] | None = None, progress: bool = False,
                       real_masks: np.ndarray | None = None, syn_masks: np.ndarray | None = None,
                       floor: DetectabilityResult | None = None) -> DetectabilityTest:
    """Synthetic (positive) vs real (negative) detectability, and the floor: the same
    protocol on two disjoint halves of the real set (by ``real_groups``, e.g. patient ids,
    when given). See :class:`DetectabilityTest` for the verdict rule. ``floor``: a floor
    computed before with the same real set and config (it depends on nothing else), reused."""
    real = np.asarray(real_images)
    groups = None if real_groups is None else np.asarray(real_groups, dtype=str)
    if groups is not None and len(groups) != len(real):
        raise ValueError(f"real_groups: {len(groups)} ids for {len(real)} images")
    rm = None if real_masks is None else np.asarray(real_masks)
    syn = detectability(syn_images, real, syn_strata, real_strata, config, neg_groups=groups,
                        progress=progress, desc="synthetic vs real", pos_masks=syn_masks, neg_masks=rm)
    if floor is not None:
        return DetectabilityTest(synthetic=syn, floor=floor)
    return DetectabilityTest(synthetic=syn, floor=detectability_floor(real, real_strata, config, groups, progress, rm))


def detectability_floor(real_images: np.ndarray, real_strata: Strata = None,
                        config: DetectabilityConfig = DetectabilityConfig(), real_groups: Sequence[str] | None = None,
                        progress: bool = False, real_masks: np.ndarray | None = None) -> DetectabilityResult:
    """The floor: the test between two disjoint halves of the real set (whole ``real_groups``,
    e.g. patients, per half), averaged over ``config.floor_splits`` random halvings, each
    with its own seed for the split, the folds and the networks (:meth:`DetectabilityResult.mean_of`)."""
    real = np.asarray(real_images)
    groups = None if real_groups is None else np.asarray(real_groups, dtype=str)
    rm = None if real_masks is None else np.asarray(real_masks)
    runs = []
    for k in range(config.floor_splits):
        cfg = dataclasses.replace(config, seed=config.seed + k)
        a, b = split_halves(len(real), groups, cfg.seed)
        desc = "real vs real" + (f" (split {k + 1}/{config.floor_splits})" if config.floor_splits > 1 else "")
        runs.append(detectability(real[a], real[b], strata_subset(real_strata, a), strata_subset(real_strata, b), cfg,
                                  pos_groups=None if groups is None else groups[a],
                                  neg_groups=None if groups is None else groups[b], progress=progress,
                                  desc=desc, pos_masks=None if rm is None else rm[a],
                                  neg_masks=None if rm is None else rm[b]))
    return DetectabilityResult.mean_of(runs)
