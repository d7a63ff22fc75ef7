"""Breast outline plausibility: atypical shapes and ragged skin lines against the real films."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mammosynth.metrics.detail import detail_comparison
from mammosynth.metrics.detectability import DetectabilityResult, DetectabilityTest
from mammosynth.metrics.outline import (jaggedness, nearest_distance, outline_comparison, outline_features,
                                        outline_sheet, width_profiles)
from mammosynth.metrics.realism import RealismConfig, realism_verdict
from mammosynth.metrics.spectrum import spectrum_comparison

H, W = 96, 64


def breasts(n: int, seed: int, cut_top: float = 0.0, jitter: float = 0.0) -> np.ndarray:
    """Masks [n, H, W] of half-ellipses on the left edge, sizes drawn at random; ``cut_top``:
    the share of rows at the top left empty (a breast missing its upper part); ``jitter``:
    px of random row-to-row noise on the skin line (a torn outline)."""
    rng = np.random.default_rng(seed)
    y = np.arange(H)[:, None] + 0.5
    x = np.arange(W)[None, :] + 0.5
    out = np.zeros((n, H, W), bool)
    for i in range(n):
        cy, ry, rx = H * rng.uniform(0.45, 0.55), H * rng.uniform(0.40, 0.48), W * rng.uniform(0.55, 0.75)
        edge = rx * np.sqrt(np.clip(1 - ((y - cy) / ry) ** 2, 0, None))
        edge = edge + jitter * rng.standard_normal(edge.shape) * (edge > 0)
        out[i] = x < edge
        out[i, : int(cut_top * H)] = False
    return out


def feats(m: np.ndarray) -> dict[str, np.ndarray]:
    return outline_features(m)


def test_profiles_read_the_width_per_row_and_a_smooth_outline_is_not_jagged():
    m = np.zeros((2, 8, 10), bool)
    m[0, :, :5] = True
    m[1, 2:6, :10] = True
    p = width_profiles(m, bins=8)
    np.testing.assert_allclose(p[0], 0.5)
    np.testing.assert_allclose(p[1], [0, 0, 1, 1, 1, 1, 0, 0])
    smooth, torn = jaggedness(breasts(4, 0)), jaggedness(breasts(4, 0, jitter=3.0))
    assert np.all(smooth < 1.0) and np.all(torn > 2.5 * smooth)
    assert np.isnan(jaggedness(np.zeros((1, 8, 8), bool)))[0]


def test_nearest_distance_leave_one_out_skips_only_itself():
    p = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0], [3.0, 3.0]])
    np.testing.assert_allclose(nearest_distance(p, p, leave_one_out=True), [1.0, 0.0, 0.0, 2.0])
    np.testing.assert_allclose(nearest_distance(p[:1] + 0.5, p), [0.5])
    with pytest.raises(ValueError, match="alike"):
        nearest_distance(p, np.zeros((2, 3)))


def test_breasts_like_the_real_ones_are_not_flagged():
    res = outline_comparison(feats(breasts(60, 0)), feats(breasts(120, 1)), n_boot=200)
    assert set(res.rates) == {"atypical", "ragged", "fragmented"}
    for name, r in res.rates.items():
        assert r.ci_low <= 0.10 and r.rate < 0.15 and r.ci_low <= r.rate <= r.ci_high
        if name == "fragmented":  # half-ellipses are one run in every row, real and synthetic alike
            assert r.rate == r.real_rate == 0.0 and r.auc == 0.5
        else:
            assert 0 < r.real_rate <= 0.10 and r.auc_ci[0] < 0.5 < r.auc_ci[1]
    assert res.flagged(0.10) == []


def test_breasts_missing_their_top_read_atypical_and_are_the_worst():
    syn = np.concatenate([breasts(30, 1), breasts(30, 2, cut_top=0.35)])
    res = outline_comparison(feats(breasts(60, 0)), feats(syn), n_boot=200)
    a = res.rates["atypical"]
    assert a.ci_low > 0.3 and a.rate == pytest.approx(0.5, abs=0.1)
    assert all(i >= 30 for i in a.worst) and len(a.worst) == 8
    assert a.auc > 0.7 and a.auc_ci[0] > 0.6
    assert res.flagged(0.10) == ["atypical"]


def test_torn_skin_lines_read_ragged():
    res = outline_comparison(feats(breasts(60, 0)), feats(breasts(60, 3, jitter=3.0)), n_boot=200)
    assert res.rates["ragged"].ci_low > 0.8 and "ragged" in res.flagged(0.10)
    smooth, torn = breasts(1, 3), breasts(1, 3, jitter=3.0)
    rms = [np.sqrt(((width_profiles(torn, b) - width_profiles(smooth, b)) ** 2).mean()) for b in (H, 16)]
    assert rms[1] < 0.5 * rms[0]  # bands of 6 rows average the tears out of the shape


def test_breasts_in_two_lobes_read_fragmented():
    lobes = breasts(40, 4)
    lobes[:, : H // 2, 8:12] = False  # a notch from the top: the upper rows hold two runs
    res = outline_comparison(feats(breasts(60, 0)), feats(lobes), n_boot=200)
    assert res.rates["fragmented"].rate == 1.0 and "fragmented" in res.flagged(0.10)
    assert res.rates["fragmented"].real_rate == 0.0  # a half-ellipse is one run in every row
    assert res.rates["fragmented"].threshold == 0.01  # films one run in every row: the gate's floor, not 0


def test_images_without_a_breast_are_atypical_and_too_few_real_films_are_unavailable():
    empty = np.zeros((10, H, W), bool)
    res = outline_comparison(feats(breasts(20, 0)), feats(empty), n_boot=100)
    assert res.rates["atypical"].rate == 1.0 and "ragged" not in res.rates  # no skin line to measure
    few = outline_comparison(feats(breasts(3, 0)), feats(breasts(10, 1)), n_boot=100)
    assert not few.available and "fewer than 5 real films" in few.reason
    assert json.loads(json.dumps(few.to_dict(), allow_nan=False))["statistics"] == {}
    with pytest.raises(ValueError, match="quantile"):
        outline_comparison(feats(breasts(20, 0)), feats(breasts(10, 1)), quantile=1.0)


def test_comparison_is_deterministic_and_serialises():
    a, b = feats(breasts(40, 0)), feats(np.concatenate([breasts(20, 1), breasts(10, 2, cut_top=0.3)]))
    r1, r2 = outline_comparison(a, b, seed=3, n_boot=200), outline_comparison(a, b, seed=3, n_boot=200)
    assert r1 == r2
    d = json.loads(json.dumps(r1.to_dict(), allow_nan=False))
    assert d["available"] and d["quantile"] == 0.95 and "meaning" in d["statistics"]["atypical"]
    assert d["statistics"]["atypical"]["worst"] == list(r1.rates["atypical"].worst)


def _det(auc, lo, hi) -> DetectabilityResult:
    return DetectabilityResult(auc=auc, ci_low=lo, ci_high=hi, n_pos=100, n_neg=100, n_pos_given=100,
                               n_neg_given=100, seconds=1.0, steps_per_fold=10)


def test_a_flagged_outline_raises_pass_to_warn_with_its_reason():
    rng = np.random.default_rng(0)
    beta, e = rng.normal(3.2, 0.2, 40), rng.gamma(4.0, 1e-4, 40)
    passing = DetectabilityTest(synthetic=_det(0.56, 0.48, 0.64), floor=_det(0.55, 0.47, 0.63))
    spec, detail = spectrum_comparison(beta, beta, n_boot=100), detail_comparison(e, e, n_boot=100)
    good = outline_comparison(feats(breasts(60, 0)), feats(breasts(60, 1)), n_boot=200)
    half_cut = np.concatenate([breasts(30, 1), breasts(30, 2, cut_top=0.35)])
    bad = outline_comparison(feats(breasts(60, 0)), feats(half_cut), n_boot=200)
    assert realism_verdict(passing, spec, detail, RealismConfig(), good).status == "pass"
    v = realism_verdict(passing, spec, detail, RealismConfig(), bad)
    assert v.status == "warn" and "shaped unlike any real film" in v.reasons[-1]
    # a tolerance above the rate's CI (about half the images) lets it pass
    assert realism_verdict(passing, spec, detail, RealismConfig(outline_tolerance=0.9), bad).status == "pass"
    with pytest.raises(ValueError, match="outline_tolerance"):
        RealismConfig(outline_tolerance=0.01)


def test_outline_sheet_draws_each_row_with_its_outline(tmp_path):
    from PIL import Image

    m = breasts(4, 0)
    x = np.where(m, 0.6, 0.0).astype(np.float32)
    out = outline_sheet([("real", x, m, [0, 1]), ("synthetic", x, m, [2, 3, 1])], tmp_path / "o.png")
    img = np.asarray(Image.open(out["path"]).convert("RGB"))
    assert out["rows"] == [2, 3] and img.shape == (2 * (H + 4) + 4, 96 + 3 * (W + 4), 3)
    red = (img[..., 0] > 200) & (img[..., 1] < 60)
    assert red.sum() > 4 * H  # every drawn breast has its outline
    with pytest.raises(ValueError, match="no image"):
        outline_sheet([("real", x, m, [])], tmp_path / "none.png")
