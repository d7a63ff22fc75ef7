"""PRDC (Naeem et al. 2020) against known answers and a brute-force reference."""
from __future__ import annotations

import numpy as np
import pytest

from mammosynth.metrics.prdc import prdc


def _reference(real, fake, k):
    """Literal transcription of the paper's formulas with loops."""
    def kth(x):
        return np.array([np.sort(np.linalg.norm(x - xi, axis=1))[k] for xi in x])

    rr, rf = kth(real), kth(fake)
    d = np.array([[np.linalg.norm(xi - yj) for yj in fake] for xi in real])
    precision = np.mean([any(d[i, j] <= rr[i] for i in range(len(real))) for j in range(len(fake))])
    recall = np.mean([any(d[i, j] <= rf[j] for j in range(len(fake))) for i in range(len(real))])
    density = sum(d[i, j] <= rr[i] for i in range(len(real)) for j in range(len(fake))) / (k * len(fake))
    coverage = np.mean([d[i].min() <= rr[i] for i in range(len(real))])
    return precision, recall, density, coverage


def test_identical_sets():
    x = np.random.default_rng(0).standard_normal((60, 5))
    r = prdc(x, x, k=5)
    assert r["precision"] == r["recall"] == r["coverage"] == 1.0
    assert r["density"] == pytest.approx(6 / 5)  # own centre + k neighbours per ball


def test_far_apart_sets_score_zero():
    rng = np.random.default_rng(1)
    r = prdc(rng.standard_normal((40, 3)), rng.standard_normal((40, 3)) + 100, k=5)
    assert r == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_mode_dropping_lowers_recall_not_precision():
    rng = np.random.default_rng(2)
    real = np.concatenate([rng.standard_normal((100, 2)), rng.standard_normal((100, 2)) + 20])
    fake = rng.standard_normal((100, 2))  # only the first mode
    r = prdc(real, fake, k=5)
    assert r["precision"] > 0.9
    assert r["recall"] < 0.6 and r["coverage"] < 0.6


def test_matches_brute_force_reference():
    rng = np.random.default_rng(3)
    real, fake = rng.standard_normal((30, 4)), rng.standard_normal((25, 4)) * 1.3 + 0.2
    r = prdc(real, fake, k=3)
    p, rc, d, c = _reference(real, fake, 3)
    assert (r["precision"], r["recall"], r["coverage"]) == pytest.approx((p, rc, c))
    assert r["density"] == pytest.approx(d)


def test_too_few_samples_and_bad_values():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3))
    with pytest.raises(ValueError, match="at least 6"):
        prdc(x, rng.standard_normal((20, 3)), k=5)
    y = rng.standard_normal((20, 3))
    y[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        prdc(rng.standard_normal((20, 3)), y, k=5)
    with pytest.raises(ValueError, match="k must be"):
        prdc(y, y, k=0)
