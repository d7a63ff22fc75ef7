"""Fréchet distance and KID against known answers."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from mammosynth.metrics.frechet import frechet_distance, frechet_from_stats, kernel_inception_distance


@pytest.fixture
def gauss():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6))
    return a, rng


def test_identical_sets_have_zero_distance(gauss):
    x, _ = gauss
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_mean_shift_gives_squared_shift(gauss):
    x, _ = gauss
    c = np.array([1.0, -2.0, 0.5, 0, 0, 3.0])
    assert frechet_distance(x, x + c) == pytest.approx(float(c @ c), rel=1e-7)


def test_scaling_gives_trace_of_covariance(gauss):
    x, _ = gauss  # centred, y = 2x: tr(S) + tr(4S) - 2 tr(2S) = tr(S)
    x = x - x.mean(0)
    assert frechet_distance(x, 2 * x) == pytest.approx(float(np.trace(np.cov(x, rowvar=False))), rel=1e-7)


def test_matches_sqrtm_formula(gauss):
    x, rng = gauss
    y = rng.standard_normal((300, 6)) * 1.5 + 0.3
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    diff = x.mean(0) - y.mean(0)
    ref = diff @ diff + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(x, y) == pytest.approx(ref, rel=1e-6)


def test_shifted_set_scores_worse(gauss):
    x, _ = gauss
    assert frechet_distance(x, x + 0.5) > frechet_distance(x, x + 0.1) > 0


def test_fewer_samples_than_dimensions_is_finite():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 20)), rng.standard_normal((5, 20))
    d = frechet_distance(x, y)
    assert np.isfinite(d) and d > 0
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    # the sample (Gram) route used here equals the covariance route
    ref = frechet_from_stats(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert d == pytest.approx(ref, rel=1e-8)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_raise(gauss, bad):
    x, _ = gauss
    y = x.copy()
    y[3, 2] = bad
    with pytest.raises(ValueError, match="NaN or infinity"):
        frechet_distance(x, y)
    with pytest.raises(ValueError, match="NaN or infinity"):
        kernel_inception_distance(y, x)


def test_too_few_samples_and_shape_errors(gauss):
    x, _ = gauss
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(x, x[:1])
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(x, x[:, :3])
    with pytest.raises(ValueError, match="2-D"):
        frechet_distance(x[:, 0], x[:, 0])
    with pytest.raises(ValueError, match="at least 2"):
        kernel_inception_distance(x[:1], x)
    with pytest.raises(ValueError, match="NaN or infinity"):
        frechet_from_stats(np.zeros(2), np.eye(2), np.array([0, np.nan]), np.eye(2))


def test_kid_unbiased_near_zero_for_same_distribution():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((300, 8)), rng.standard_normal((300, 8))
    mean, std = kernel_inception_distance(x, y, n_subsets=20, subset_size=200, seed=0)
    shifted, _ = kernel_inception_distance(x, y + 1.0, n_subsets=20, subset_size=200, seed=0)
    assert abs(mean) < 0.05
    assert std >= 0
    assert shifted > 0.5 > abs(mean) * 10


def test_kid_deterministic_with_seed():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((50, 4)), rng.standard_normal((60, 4))
    assert kernel_inception_distance(x, y, 10, 20, seed=5) == kernel_inception_distance(x, y, 10, 20, seed=5)


def test_kid_matches_direct_subset_formula():
    """The batched indicator-vector computation equals the per-subset unbiased MMD^2."""
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((30, 5)), rng.standard_normal((25, 5)) + 0.3

    def kernel(a, b):
        return (a @ b.T / a.shape[1] + 1.0) ** 3

    def direct(xs, ys):
        m = len(xs)
        kxx, kyy = kernel(xs, xs), kernel(ys, ys)
        return ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kernel(xs, ys).mean()

    r = np.random.default_rng(7)
    vals = []
    for _ in range(6):
        ix, iy = r.choice(30, 10, replace=False), r.choice(25, 10, replace=False)
        vals.append(direct(x[ix], y[iy]))
    mean, std = kernel_inception_distance(x, y, n_subsets=6, subset_size=10, seed=7)
    assert mean == pytest.approx(np.mean(vals), rel=1e-10) and std == pytest.approx(np.std(vals), rel=1e-8)
