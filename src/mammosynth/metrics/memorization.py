"""Memorisation: does any synthetic image copy a training image?

For every synthetic image, its nearest training image is searched in the mammo-texture
feature space (features z-scored with the training set's mean and SD, Euclidean
distance). The same nearest-training distance is computed for real held-out images
(images the generator never saw): their distribution says how close an *independent*
image from the same population typically gets to the training set. For the ``top_k``
nearest candidates, SSIM is computed on small thumbnails (default 64x40) and the candidate
with the highest SSIM is reported as the pair (``train_id``, its feature ``distance`` and
``ssim``), next to the feature-space nearest neighbour (``nearest_train_id``,
``nearest_distance``).

**Near-copy rule** (a synthetic image is flagged when either holds):

1. its nearest-training distance is below the ``alpha``-quantile (default 1 %) of the
   held-out images' nearest-training distances **and** its best SSIM to a candidate is at
   least ``ssim_threshold`` (default 0.9); or
2. its nearest-training distance is near zero: at most ``zero_fraction`` (default 0.01)
   times the median held-out nearest-training distance (a pixel-level copy).

Without held-out images the reference distances come from the training set itself
(leave-one-out: each training image's distance to its nearest *other* training image);
the result says so in ``calibration``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .diversity import ssim
from .features import SetFeatures, standardise


@dataclass(frozen=True)
class MemorizationConfig:
    """Thresholds of the near-copy rule (see the module docstring)."""

    alpha: float = 0.01
    ssim_threshold: float = 0.9
    zero_fraction: float = 0.01
    top_k: int = 5
    n_closest: int = 8

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not -1.0 <= self.ssim_threshold <= 1.0:
            raise ValueError(f"ssim_threshold must be in [-1, 1], got {self.ssim_threshold}")
        if self.top_k < 1 or self.n_closest < 0 or self.zero_fraction < 0:
            raise ValueError("top_k must be >= 1, n_closest and zero_fraction >= 0")


def _nn(query: np.ndarray, ref: np.ndarray, k: int, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances of the ``k`` nearest ``ref`` rows for each ``query`` row."""
    from scipy.spatial.distance import cdist

    d = cdist(query, ref)
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    k = min(k, ref.shape[0] - (1 if exclude_self else 0))
    idx = np.argpartition(d, k - 1, axis=1)[:, :k]
    dist = np.take_along_axis(d, idx, 1)
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)


def find_memorization(train: SetFeatures, synthetic: SetFeatures, heldout: SetFeatures | None = None,
                      config: MemorizationConfig = MemorizationConfig()) -> dict[str, Any]:
    """The ``memorization`` block of :func:`~mammosynth.metrics.fidelity.compute_image_metrics`."""
    if len(train) < 2:
        raise ValueError(f"memorisation: training set has {len(train)} image(s); at least 2 needed")
    if len(synthetic) < 1:
        raise ValueError("memorisation: synthetic set is empty")
    if heldout is not None and len(heldout) < 2:
        raise ValueError(f"memorisation: held-out set has {len(heldout)} image(s); at least 2 needed")
    ref_sets = [heldout.features] if heldout is not None else []
    tr, syn, *rest = standardise(train.features, synthetic.features, *ref_sets)
    if heldout is not None:
        _, ref_d = _nn(rest[0], tr, 1)
        calibration = "heldout"
    else:
        _, ref_d = _nn(tr, tr, 1, exclude_self=True)
        calibration = "train-leave-one-out (no held-out set given)"
    ref_d = ref_d[:, 0]
    threshold = float(np.quantile(ref_d, config.alpha))
    zero = config.zero_fraction * float(np.median(ref_d))

    cand, cand_d = _nn(syn, tr, config.top_k)
    n_syn, k = cand.shape
    sims = ssim(np.repeat(synthetic.thumbs, k, axis=0), train.thumbs[cand.ravel()]).reshape(n_syn, k)
    best = np.argmax(sims, axis=1)
    rows = []
    for j in range(n_syn):
        b = int(best[j])
        nn_d = float(cand_d[j, 0])
        flagged = bool((nn_d < threshold and sims[j, b] >= config.ssim_threshold) or nn_d <= zero)
        rows.append({"synthetic_id": synthetic.ids[j], "train_id": train.ids[int(cand[j, b])],
                     "distance": float(cand_d[j, b]), "ssim": float(sims[j, b]),
                     "nearest_train_id": train.ids[int(cand[j, 0])], "nearest_distance": nn_d, "flagged": flagged})
    flagged = [r for r in rows if r["flagged"]]
    closest = sorted(rows, key=lambda r: (r["nearest_distance"], -r["ssim"]))[: config.n_closest]
    syn_d = cand_d[:, 0]
    qs = (0.01, 0.05, 0.25, 0.5)
    return {
        "available": True,
        "reason": None,
        "calibration": calibration,
        "rule": (f"flag when nearest-train distance < q{config.alpha:g} of reference distances and SSIM >= "
                 f"{config.ssim_threshold:g}, or distance <= {config.zero_fraction:g} x reference median"),
        "threshold": threshold,
        "zero_distance": zero,
        "ssim_threshold": float(config.ssim_threshold),
        "n_synthetic": int(n_syn),
        "n_train": len(train),
        "n_flagged": len(flagged),
        "fraction_flagged": len(flagged) / n_syn,
        "flagged": flagged,
        "closest": closest,
        "heldout_nn_quantiles": {f"q{q:g}": float(np.quantile(ref_d, q)) for q in qs},
        "synthetic_nn_quantiles": {f"q{q:g}": float(np.quantile(syn_d, q)) for q in qs},
        "fraction_closer_than_heldout_median": float((syn_d < np.median(ref_d)).mean()),
    }
