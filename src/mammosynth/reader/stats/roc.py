"""Empirical ROC area (Mann-Whitney) and its case-sampling covariance.

Scores are arrays whose last axis runs over cases; ``truth`` is 1 for abnormal (or
"synthetic") cases and 0 otherwise. Ties count one half.
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def _split(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(truth).astype(bool)
    if truth.all() or not truth.any():
        raise ValueError("ROC analysis needs at least one positive and one negative case")
    scores = np.asarray(scores, dtype=float)
    return scores[..., ~truth], scores[..., truth]


def _psi(neg: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Kernel matrix psi(x_neg, y_pos) over (..., n0, n1)."""
    d = pos[..., None, :] - neg[..., :, None]
    return (d > 0) + 0.5 * (d == 0)


def auc(scores, truth) -> np.ndarray:
    """Mann-Whitney AUC over the last axis (scalar for 1-D scores)."""
    neg, pos = _split(scores, truth)
    return _psi(neg, pos).mean(axis=(-2, -1))


def delong_cov(scores, truth) -> np.ndarray:
    """DeLong et al. (1988) covariance of the AUCs of the rows of ``scores`` (K, n)."""
    neg, pos = _split(np.atleast_2d(scores), truth)
    psi = _psi(neg, pos)  # K, n0, n1
    v10 = psi.mean(axis=1)  # structural components of positives: K, n1
    v01 = psi.mean(axis=2)  # of negatives: K, n0
    n0, n1 = neg.shape[-1], pos.shape[-1]
    s10 = np.atleast_2d(np.cov(v10)) if n1 > 1 else np.zeros((len(v10), len(v10)))
    s01 = np.atleast_2d(np.cov(v01)) if n0 > 1 else np.zeros((len(v01), len(v01)))
    return s10 / n1 + s01 / n0


def jackknife_cov(scores, truth, fom=None) -> np.ndarray:
    """Leave-one-case-out jackknife covariance of a figure of merit of each row (K, n).

    ``fom(scores, truth)`` maps (K, n) to K values; the AUC by default.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    truth = np.asarray(truth)
    fom = fom or auc
    n = scores.shape[-1]
    keep = ~np.eye(n, dtype=bool)
    jk = np.stack([fom(scores[:, keep[k]], truth[keep[k]]) for k in range(n)], axis=1)  # K, n
    centred = jk - jk.mean(axis=1, keepdims=True)
    return (n - 1) / n * centred @ centred.T


def auc_ci(scores, truth, alpha: float = 0.05) -> tuple[float, float, float, float]:
    """AUC, DeLong standard error and a (1 - alpha) normal CI clipped to [0, 1]."""
    a = float(auc(scores, truth))
    se = float(np.sqrt(max(delong_cov(scores, truth)[0, 0], 0.0)))
    z = stats.norm.ppf(1 - alpha / 2)
    return a, se, max(0.0, a - z * se), min(1.0, a + z * se)
