"""Intensity moments and histogram distances over breast pixels (Korkinof et al. style).

Breast pixels are those brighter than ``threshold`` (images in [0, 1]; the prepared
background is 0). Each set is summarised by the pooled histogram of its breast pixels
(``N_BINS`` bins over [0, 1]) and the power sums ``n, sum x, sum x^2, sum x^3, sum x^4``,
from which the first four moments are exact (no binning error):

* mean, SD (population), skewness, kurtosis (Fisher's *excess* kurtosis: 0 for a normal).

Histogram distances between the two pooled distributions:

* ``wasserstein``: Wasserstein-1 (earth mover's) distance in intensity units ([0, 1]
  scale), from the binned CDFs;
* ``js``: Jensen-Shannon *distance* (square root of the base-2 divergence), in [0, 1];
* ``ks``: Kolmogorov-Smirnov statistic, max |CDF_real - CDF_syn|, in [0, 1].
"""
from __future__ import annotations

import numpy as np

N_BINS = 256
BIN_EDGES = np.linspace(0.0, 1.0, N_BINS + 1)
MOMENTS = ("mean", "sd", "skewness", "kurtosis")


def breast_mask(img: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels brighter than ``threshold`` (the image is in [0, 1])."""
    return np.asarray(img) > threshold


def intensity_summary(img: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """``(histogram counts [N_BINS], power sums [5])`` of one [0, 1] image's breast pixels."""
    img = np.asarray(img, dtype=np.float64)
    if not np.isfinite(img).all():
        raise ValueError("intensity: image contains NaN or infinity")
    x = img[breast_mask(img, threshold)]
    idx = np.clip((x * N_BINS).astype(np.int64), 0, N_BINS - 1)
    hist = np.bincount(idx, minlength=N_BINS).astype(np.float64)
    x2 = x * x
    sums = np.array([x.size, x.sum(), x2.sum(), (x2 * x).sum(), (x2 * x2).sum()], dtype=np.float64)
    return hist, sums


def moments_from_sums(sums: np.ndarray) -> dict[str, float]:
    """Mean, SD, skewness and excess kurtosis from power sums ``[n, S1, S2, S3, S4]``."""
    n, s1, s2, s3, s4 = (float(v) for v in np.asarray(sums, dtype=np.float64))
    if n < 2:
        raise ValueError(f"intensity: {int(n)} breast pixels; at least 2 needed (is the threshold too high?)")
    mu = s1 / n
    e2, e3, e4 = s2 / n, s3 / n, s4 / n
    m2 = e2 - mu * mu
    m3 = e3 - 3 * mu * e2 + 2 * mu ** 3
    m4 = e4 - 4 * mu * e3 + 6 * mu * mu * e2 - 3 * mu ** 4
    if m2 <= 1e-12:
        raise ValueError("intensity: breast pixels have no variation (SD 0): skewness and kurtosis undefined")
    return {"mean": mu, "sd": float(np.sqrt(m2)), "skewness": float(m3 / m2 ** 1.5),
            "kurtosis": float(m4 / (m2 * m2) - 3.0)}


def _normalised(h: np.ndarray, name: str) -> np.ndarray:
    h = np.asarray(h, dtype=np.float64)
    if h.shape != (N_BINS,):
        raise ValueError(f"intensity: {name} histogram must have {N_BINS} bins, got shape {h.shape}")
    if not np.isfinite(h).all() or (h < 0).any():
        raise ValueError(f"intensity: {name} histogram has negative, NaN or infinite counts")
    total = h.sum()
    if total <= 0:
        raise ValueError(f"intensity: {name} histogram is empty (no breast pixels above the threshold)")
    return h / total


def histogram_distances(h_real: np.ndarray, h_syn: np.ndarray) -> dict[str, float]:
    """Wasserstein-1, Jensen-Shannon distance and KS statistic between two histograms."""
    p = _normalised(h_real, "real")
    q = _normalised(h_syn, "synthetic")
    cdf_diff = np.cumsum(p) - np.cumsum(q)
    width = 1.0 / N_BINS
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    js = float(np.sqrt(max(0.5 * (kl_p + kl_q), 0.0)))
    return {"wasserstein": float(np.abs(cdf_diff).sum() * width), "js": min(js, 1.0),
            "ks": float(np.abs(cdf_diff).max())}


def intensity_report(real_hist: np.ndarray, real_sums: np.ndarray, syn_hist: np.ndarray,
                     syn_sums: np.ndarray) -> dict:
    """The ``intensity`` block of :func:`~mammosynth.metrics.fidelity.compute_image_metrics`."""
    return {
        "moments": {"real": moments_from_sums(real_sums), "synthetic": moments_from_sums(syn_sums)},
        "distances": histogram_distances(real_hist, syn_hist),
        "histograms": {"bin_edges": BIN_EDGES.tolist(),
                       "real": _normalised(real_hist, "real").tolist(),
                       "synthetic": _normalised(syn_hist, "synthetic").tolist()},
    }
