"""Intensity moments and histogram distances."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mammosynth.metrics.intensity import (N_BINS, histogram_distances, intensity_report, intensity_summary,
                                          moments_from_sums)


def _image(rng, shift=0.0, n=(64, 40)):
    img = np.zeros(n)
    img[:, :30] = np.clip(rng.beta(2, 5, size=(n[0], 30)) * 0.8 + 0.1 + shift, 0, 1)
    return img


def test_moments_match_scipy_on_breast_pixels():
    rng = np.random.default_rng(0)
    img = _image(rng)
    _, sums = intensity_summary(img, 0.04)
    x = img[img > 0.04]
    m = moments_from_sums(sums)
    assert sums[0] == x.size
    assert m["mean"] == pytest.approx(x.mean(), rel=1e-9)
    assert m["sd"] == pytest.approx(x.std(), rel=1e-9)
    assert m["skewness"] == pytest.approx(stats.skew(x), rel=1e-6)
    assert m["kurtosis"] == pytest.approx(stats.kurtosis(x), rel=1e-6)  # Fisher (excess)


def test_background_is_excluded():
    img = np.zeros((20, 20))
    img[5:10, 5:10] = 0.5
    hist, sums = intensity_summary(img, 0.04)
    assert sums[0] == 25 and hist.sum() == 25 and hist[int(0.5 * N_BINS)] == 25


def test_identical_histograms_have_zero_distance():
    rng = np.random.default_rng(1)
    h, _ = intensity_summary(_image(rng), 0.04)
    assert histogram_distances(h, h) == {"wasserstein": 0.0, "js": 0.0, "ks": 0.0}


def test_brightness_shift_increases_every_distance():
    rng = np.random.default_rng(2)
    base, _ = intensity_summary(_image(rng), 0.04)
    same, _ = intensity_summary(_image(rng), 0.04)
    small, _ = intensity_summary(_image(rng, 0.05), 0.04)
    big, _ = intensity_summary(_image(rng, 0.15), 0.04)
    d0, d1, d2 = (histogram_distances(base, h) for h in (same, small, big))
    for key in ("wasserstein", "js", "ks"):
        assert d0[key] < d1[key] < d2[key] <= 1.0
    assert d2["wasserstein"] == pytest.approx(0.15, abs=0.02)  # W1 of a pure shift is the shift


def test_report_structure_and_errors():
    rng = np.random.default_rng(3)
    h1, s1 = intensity_summary(_image(rng), 0.04)
    h2, s2 = intensity_summary(_image(rng, 0.1), 0.04)
    rep = intensity_report(h1, s1, h2, s2)
    assert set(rep["moments"]["real"]) == {"mean", "sd", "skewness", "kurtosis"}
    assert rep["moments"]["synthetic"]["mean"] > rep["moments"]["real"]["mean"]
    assert len(rep["histograms"]["bin_edges"]) == N_BINS + 1 and sum(rep["histograms"]["real"]) == pytest.approx(1)
    with pytest.raises(ValueError, match="empty"):
        histogram_distances(h1, np.zeros(N_BINS))
    with pytest.raises(ValueError, match="no variation"):
        moments_from_sums(np.array([10, 5.0, 2.5, 1.25, 0.625]))  # ten pixels of 0.5
    with pytest.raises(ValueError, match="NaN"):
        intensity_summary(np.full((4, 4), np.nan), 0.04)
