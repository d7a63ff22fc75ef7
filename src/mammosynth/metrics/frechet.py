"""Fréchet distance and Kernel Inception Distance (KID) on any feature matrices.

* Fréchet distance (Heusel et al. 2017): ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})``
  with unbiased covariances. The trace term is computed as
  ``sum(sqrt(eig(S1^{1/2} S2 S1^{1/2})))`` (symmetric PSD, real eigenvalues), which is exact
  for singular covariances too (fewer images than dimensions) and needs no ``eps`` fudge;
  with fewer samples than dimensions it is computed from the samples instead
  (nuclear norm of the cross-Gram matrix, O(n m d) rather than O(d^3)).
* KID (Bińkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets (clean-fid / torch-fidelity
  defaults: 100 subsets of up to 1000 samples); reports mean and standard deviation.

Inputs must be finite 2-D arrays ``[N, D]``; otherwise ValueError names the problem.
"""
from __future__ import annotations

import numpy as np


def check_features(x: np.ndarray, name: str, min_rows: int = 2) -> np.ndarray:
    """Validate a feature matrix: 2-D, at least ``min_rows`` rows, finite. Returns float64."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D feature matrix [N, D], got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name}: {arr.shape[0]} samples; at least {min_rows} needed")
    if arr.shape[1] < 1:
        raise ValueError(f"{name}: feature dimension is 0")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ValueError(f"{name}: {bad} sample(s) contain NaN or infinity")
    return arr


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_from_stats(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """Fréchet distance between Gaussians N(mu1, s1) and N(mu2, s2)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    s1, s2 = np.atleast_2d(s1), np.atleast_2d(s2)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"Fréchet: inconsistent shapes mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    for a, n in ((mu1, "mu1"), (mu2, "mu2"), (s1, "sigma1"), (s2, "sigma2")):
        if not np.isfinite(a).all():
            raise ValueError(f"Fréchet: {n} contains NaN or infinity")
    r1 = _sqrt_psd(s1)
    inner = r1 @ s2 @ r1
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = mu1 - mu2
    d = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    # round-off can make a zero distance slightly negative
    scale = max(float(np.trace(s1) + np.trace(s2)), 1e-300)
    if d < 0:
        if d < -1e-6 * scale:
            raise ValueError(f"Fréchet: negative distance {d:g} (numerical failure)")
        d = 0.0
    return d


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Fréchet distance between the Gaussian fits of feature sets ``x`` [N, D] and ``y`` [M, D].

    Needs at least 2 samples per set (for a covariance). With fewer samples than dimensions
    the covariances are singular; the value is still exact for those estimates but biased
    upwards, so compare only values computed with equal set sizes.
    """
    x = check_features(x, "Fréchet: first set")
    y = check_features(y, "Fréchet: second set")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"Fréchet: feature dimensions differ ({x.shape[1]} vs {y.shape[1]})")
    if max(len(x), len(y)) < x.shape[1]:
        return _frechet_gram(x, y)
    return frechet_from_stats(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))


def _frechet_gram(x: np.ndarray, y: np.ndarray) -> float:
    """Same value via the samples when there are fewer samples than dimensions.

    With centred data A [n, d], B [m, d], S1 = A'A/(n-1) and S2 = B'B/(m-1), the non-zero
    eigenvalues of S1 S2 are the squared singular values of C = A B' / sqrt((n-1)(m-1)),
    so Tr (S1 S2)^{1/2} is the nuclear norm of C: O(n m d) instead of O(d^3).
    """
    a, b = x - x.mean(0), y - y.mean(0)
    n, m = len(x), len(y)
    tr_covmean = float(np.linalg.svd(a @ b.T, compute_uv=False).sum()) / np.sqrt((n - 1) * (m - 1))
    diff = x.mean(0) - y.mean(0)
    tr1, tr2 = float((a * a).sum()) / (n - 1), float((b * b).sum()) / (m - 1)
    d = float(diff @ diff + tr1 + tr2 - 2.0 * tr_covmean)
    if d < 0:
        if d < -1e-6 * max(tr1 + tr2, 1e-300):
            raise ValueError(f"Fréchet: negative distance {d:g} (numerical failure)")
        d = 0.0
    return d


def _kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    k = a @ b.T / a.shape[1] + 1.0
    return k * k * k  # cubic polynomial kernel; much faster than k ** 3


def kernel_inception_distance(
    x: np.ndarray, y: np.ndarray, n_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Unbiased KID (MMD^2, cubic polynomial kernel) as ``(mean, std)`` over random subsets.

    ``subset_size`` is capped at the smaller set size; at least 2 samples per set are needed.
    The unbiased estimate can be slightly negative for identical distributions.
    """
    x = check_features(x, "KID: first set")
    y = check_features(y, "KID: second set")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"KID: feature dimensions differ ({x.shape[1]} vs {y.shape[1]})")
    if n_subsets < 1 or subset_size < 2:
        raise ValueError(f"KID: n_subsets must be >= 1 and subset_size >= 2, got {n_subsets}, {subset_size}")
    m = min(len(x), len(y), subset_size)
    rng = np.random.default_rng(seed)
    # Kernels of the full sets once; a subset's kernel sums are c' K c with its 0/1
    # indicator vector c, computed for all subsets with one matrix product each.
    kxx, kyy, kxy = _kernel(x, x), _kernel(y, y), _kernel(x, y)
    cx = np.zeros((n_subsets, len(x)))
    cy = np.zeros((n_subsets, len(y)))
    for i in range(n_subsets):
        cx[i, rng.choice(len(x), m, replace=False)] = 1.0
        cy[i, rng.choice(len(y), m, replace=False)] = 1.0
    sxx = (((cx @ kxx) * cx).sum(1) - cx @ np.diag(kxx)) / (m * (m - 1))
    syy = (((cy @ kyy) * cy).sum(1) - cy @ np.diag(kyy)) / (m * (m - 1))
    sxy = ((cx @ kxy) * cy).sum(1) / (m * m)
    vals = sxx + syy - 2.0 * sxy
    return float(vals.mean()), float(vals.std())
