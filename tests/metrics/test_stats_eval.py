"""Tests for mammosynth.metrics.stats: AUC, bootstrap CI coverage, DeLong, kappa."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from mammosynth.metrics import stats


def test_auc_perfect_and_reversed_and_ties():
    y = [0, 0, 0, 1, 1]
    assert stats.roc_auc(y, [0.1, 0.2, 0.3, 0.8, 0.9]) == 1.0
    assert stats.roc_auc(y, [0.9, 0.8, 0.7, 0.2, 0.1]) == 0.0
    assert stats.roc_auc(y, [0.5] * 5) == 0.5
    # one tie between a positive and a negative counts 1/2: 5.5 of 6 pairs
    assert stats.roc_auc([0, 0, 0, 1, 1], [0.1, 0.2, 0.8, 0.8, 0.9]) == pytest.approx(5.5 / 6)


def test_auc_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(y * 0.7, 1.0), 1)  # rounded: many ties
    assert stats.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_single_class_is_a_reason_not_nan():
    with pytest.raises(ValueError, match="only one class"):
        stats.roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    res = stats.bootstrap_auc_ci([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], n_boot=100)
    assert res["available"] is False and res["value"] is None
    assert "only one class" in res["reason"] and res["n_neg"] == 4
    res = stats.delong_test([1, 1, 1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1])
    assert res["available"] is False and res["p_value"] is None


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="NaN"):
        stats.roc_auc([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="0 \\(negative\\) or 1"):
        stats.roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="CI method"):
        stats.bootstrap_auc_ci([0, 1], [0.1, 0.2], method="normal")


def _binormal(rng, auc, m, n):
    """Scores with true AUC ``auc``: negatives N(0,1), positives N(d,1), d = sqrt(2)*Phi^-1(auc)."""
    d = math.sqrt(2.0) * norm.ppf(auc)
    y = np.r_[np.ones(m, int), np.zeros(n, int)]
    return y, np.r_[rng.normal(d, 1.0, m), rng.normal(0.0, 1.0, n)]


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_ci_coverage_near_nominal(method):
    rng = np.random.default_rng(123)
    true_auc, reps, covered = 0.8, 200, 0
    for r in range(reps):
        y, s = _binormal(rng, true_auc, 40, 60)
        ci = stats.bootstrap_auc_ci(y, s, n_boot=200, method=method, seed=r)
        assert ci["ci_low"] <= ci["value"] <= ci["ci_high"]
        covered += ci["ci_low"] <= true_auc <= ci["ci_high"]
    assert 0.88 <= covered / reps <= 0.99, covered / reps


def test_perfect_separation_ci_is_degenerate_at_one():
    y = np.r_[np.zeros(20, int), np.ones(20, int)]
    s = np.r_[np.linspace(0, 0.4, 20), np.linspace(0.6, 1, 20)]
    for method in stats.CI_METHODS:
        ci = stats.bootstrap_auc_ci(y, s, n_boot=100, method=method)
        assert (ci["value"], ci["ci_low"], ci["ci_high"]) == (1.0, 1.0, 1.0)


def test_delong_identical_scores_p_is_one():
    rng = np.random.default_rng(0)
    y, s = _binormal(rng, 0.75, 30, 30)
    res = stats.delong_test(y, s, s.copy())
    assert res["p_value"] == 1.0 and res["diff"] == 0.0 and res["z"] == 0.0
    # a monotone transform leaves the AUC, hence the test, unchanged
    assert stats.delong_test(y, s, np.exp(s))["p_value"] == pytest.approx(1.0)


def test_delong_degenerate_zero_variance_is_significant_not_an_error():
    y = [0, 0, 0, 1, 1, 1]
    res = stats.delong_test(y, [0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0])
    assert res["diff"] == -1.0 and res["p_value"] == 0.0 and res["z"] is None and "zero DeLong variance" in res["note"]


def test_delong_detects_a_real_difference_and_matches_known_variance():
    rng = np.random.default_rng(5)
    y, good = _binormal(rng, 0.9, 200, 200)
    noise = good + rng.normal(0, 3.0, len(good))  # same cases, much weaker scorer
    res = stats.delong_test(y, noise, good)
    assert res["auc_b"] > res["auc_a"] and res["diff"] > 0.1
    assert res["p_value"] < 1e-4 and res["ci_low"] > 0
    # DeLong variance agrees with the bootstrap variance of the AUC
    var = stats.delong_variance(y, good)
    boots = stats._bootstrap_aucs(y.astype(bool), good, 2000, np.random.default_rng(0))
    assert var == pytest.approx(boots.var(), rel=0.25)


def test_delong_type_one_error_near_nominal():
    rng = np.random.default_rng(9)
    rejections = 0
    for _ in range(200):
        y, s = _binormal(rng, 0.75, 40, 40)
        a = s + rng.normal(0, 1.0, len(s))  # two equally good, correlated scorers
        b = s + rng.normal(0, 1.0, len(s))
        rejections += stats.delong_test(y, a, b)["p_value"] < 0.05
    assert rejections / 200 <= 0.10


def test_agreement_kappa_and_confusion():
    res = stats.agreement(["A", "A", "B", "B"], ["A", "B", "B", "B"], ["A", "B", "C"])
    assert res["accuracy"] == 0.75
    assert res["confusion"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    # po = .75, pe = (2*1 + 2*3)/16 = .5 -> kappa .5
    assert res["kappa"] == pytest.approx(0.5)
    assert res["recall_per_class"] == {"A": 0.5, "B": 1.0, "C": None}
    one = stats.agreement(["A", "A"], ["A", "A"], ["A", "B"])
    assert one["kappa"] is None and "single class" in one["kappa_reason"]
    with pytest.raises(ValueError, match="not among classes"):
        stats.agreement(["Z"], ["A"], ["A", "B"])


def test_mean_spread_ignores_none():
    assert stats.mean_spread([0.5, None, 0.7])["mean"] == pytest.approx(0.6)
    assert stats.mean_spread([None])["mean"] is None
    assert stats.mean_spread([0.5])["sd"] == 0.0


def test_holm_adjust_known_values_order_and_bounds():
    # sorted 0.01, 0.02, 0.03, 0.5 -> 4*0.01, 3*0.02, max(2*0.03, .06), 1*0.5; given unsorted
    adj = stats.holm_adjust([0.5, 0.01, 0.03, 0.02])
    assert adj == pytest.approx([0.5, 0.04, 0.06, 0.06])
    assert stats.holm_adjust([0.4, 0.3]) == pytest.approx([0.6, 0.6])  # monotone, capped
    assert stats.holm_adjust([0.9, 0.8, 0.7]) == [1.0, 1.0, 1.0]
    assert stats.holm_adjust([]) == []
    with pytest.raises(ValueError, match="p-values"):
        stats.holm_adjust([0.1, float("nan")])
