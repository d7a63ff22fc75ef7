"""Local texture statistics: skewness / kurtosis of the fine residual, coherence, anisotropy."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, uniform_filter1d

from mammosynth.metrics.local_texture import STATISTICS, local_texture_comparison, local_texture_statistics


def grain(n: int, seed: int, size: int = 64) -> np.ndarray:
    """Smooth tissue plus white Gaussian grain, in [0, 1]."""
    rng = np.random.default_rng(seed)
    base = np.stack([gaussian_filter(rng.standard_normal((size, size)), 4) for _ in range(n)]) * 0.5
    return (0.5 + base + 0.01 * rng.standard_normal((n, size, size))).astype(np.float32)


def specks(x: np.ndarray, seed: int, density: float = 0.01) -> np.ndarray:
    """Sparse one-pixel bright specks on top of ``x``."""
    rng = np.random.default_rng(seed)
    return (x + 0.06 * (rng.random(x.shape) < density)).astype(np.float32)


def full(x: np.ndarray) -> np.ndarray:
    return np.ones(x.shape, dtype=bool)


def stats(x: np.ndarray, masks: np.ndarray | None = None) -> dict[str, np.ndarray]:
    return local_texture_statistics(x, full(x) if masks is None else masks, patch=16, stride=8, erode=1)


def test_gaussian_grain_reads_zero_skew_and_kurtosis_three_and_specks_raise_both():
    a, b = grain(8, 0), specks(grain(8, 1), 2)
    sa, sb = stats(a), stats(b)
    assert np.all(np.abs(sa["grain_skewness"]) < 0.3) and np.all(np.abs(sa["grain_kurtosis"] - 3) < 0.5)
    assert np.all(sb["grain_skewness"] > 0.5) and np.all(sb["grain_kurtosis"] > 4)
    res = local_texture_comparison(sa, sb, n_boot=200)
    assert res.statistics["grain_kurtosis"].auc == 1.0 and res.statistics["grain_skewness"].auc == 1.0
    assert {"grain_skewness", "grain_kurtosis"} <= set(res.separating())


def test_strands_raise_coherence_and_row_correlated_grain_reads_positive_anisotropy():
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((8, 64, 64))
    iso = (0.5 + 0.05 * np.stack([gaussian_filter(z, 1.5) for z in noise])).astype(np.float32)
    strands = (0.5 + 0.05 * np.stack([gaussian_filter(z, (0.7, 4)) for z in noise])).astype(np.float32)
    assert np.all(stats(strands)["coherence"] > stats(iso)["coherence"] + 0.2)
    white = 0.5 + 0.02 * noise
    rows = uniform_filter1d(white, 2, axis=2)  # neighbours along a row share half their value
    assert np.all(np.abs(stats(white.astype(np.float32))["grain_anisotropy"]) < 0.1)
    assert np.all(stats(rows.astype(np.float32))["grain_anisotropy"] > 0.3)
    assert np.all(stats(np.swapaxes(rows, 1, 2).astype(np.float32))["grain_anisotropy"] < -0.3)


def test_identical_sets_separate_on_nothing():
    s = stats(grain(10, 4))
    res = local_texture_comparison(s, s, n_boot=200)
    assert all(c.auc == 0.5 for c in res.statistics.values()) and res.separating() == []


def test_texture_outside_the_mask_does_not_change_the_result():
    x = grain(3, 5)
    m = np.zeros(x.shape, dtype=bool)
    m[:, :, :40] = True
    y = x.copy()
    y[:, :, 44:] = specks(x, 6, 0.2)[:, :, 44:]  # beyond the mask and its 2-px erosion
    for s in STATISTICS:
        np.testing.assert_array_equal(stats(x, m)[s], stats(y, m)[s])


def test_no_interior_patch_gives_nan_and_an_unavailable_comparison():
    x = grain(4, 7)
    m = np.zeros(x.shape, dtype=bool)
    m[:, :10, :10] = True  # too small for a 16-px patch
    s = stats(x, m)
    assert all(np.isnan(v).all() for v in s.values())
    res = local_texture_comparison(s, stats(x), n_boot=50)
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert not d["available"] and d["reason"] and d["statistics"]["coherence"]["auc"] is None


def test_argument_checks():
    x = grain(2, 8)
    with pytest.raises(ValueError, match="patch"):
        local_texture_statistics(x, full(x), patch=4)
    with pytest.raises(ValueError):
        local_texture_statistics(x, full(x)[:1])
