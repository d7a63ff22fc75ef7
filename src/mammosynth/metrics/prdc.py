"""Precision, recall, density and coverage (Naeem et al. 2020, "Reliable Fidelity and
Diversity Metrics for Generative Models"), exactly as in the reference ``prdc`` package.

With real samples ``X_i`` (N of them), fake samples ``Y_j`` (M) and ``r_i`` = distance from
``X_i`` to its k-th nearest other real sample (``s_j`` likewise among fakes):

* precision = (1/M) sum_j 1[exists i: |Y_j - X_i| <= r_i]
* recall    = (1/N) sum_i 1[exists j: |X_i - Y_j| <= s_j]
* density   = (1/(kM)) sum_j sum_i 1[|Y_j - X_i| <= r_i]
* coverage  = (1/N) sum_i 1[min_j |X_i - Y_j| <= r_i]

Identical sets give precision = recall = coverage = 1 and density = (k+1)/k (every real
ball holds its own centre plus its k neighbours).
"""
from __future__ import annotations

import numpy as np

from .frechet import check_features


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import cdist

    return cdist(a, b)  # direct differences: an exact copy is at distance exactly 0


def _kth_radius(x: np.ndarray, k: int) -> np.ndarray:
    d = _pairwise(x, x)
    np.fill_diagonal(d, 0.0)
    # index 0 after partition is the point itself (distance 0): the k-th neighbour is index k
    return np.partition(d, k, axis=1)[:, k]


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """PRDC of ``fake`` [M, D] against ``real`` [N, D]; both need more than ``k`` samples."""
    if k < 1:
        raise ValueError(f"PRDC: k must be >= 1, got {k}")
    real = check_features(real, "PRDC: real set", min_rows=k + 1)
    fake = check_features(fake, "PRDC: synthetic set", min_rows=k + 1)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"PRDC: feature dimensions differ ({real.shape[1]} vs {fake.shape[1]})")
    r_real = _kth_radius(real, k)
    r_fake = _kth_radius(fake, k)
    d = _pairwise(real, fake)  # [N, M]
    inside_real = d <= r_real[:, None]
    precision = inside_real.any(axis=0).mean()
    recall = (d <= r_fake[None, :]).any(axis=1).mean()
    density = inside_real.sum() / (k * fake.shape[0])
    coverage = (d.min(axis=1) <= r_real).mean()
    return {"precision": float(precision), "recall": float(recall), "density": float(density),
            "coverage": float(coverage)}
