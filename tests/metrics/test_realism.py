"""Realism measures: texture spectrum exponent, fine-detail energy, verdict rule, sheet."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from mammosynth.data.schema import Finding, ImageRecord
from mammosynth.metrics.detail import detail_comparison, highpass_energy
from mammosynth.metrics.detectability import DetectabilityConfig, DetectabilityResult, DetectabilityTest
from mammosynth.metrics.realism import (RealismConfig, finding_stratum, realism_metrics, realism_sheet,
                                        realism_verdict, record_strata)
from mammosynth.metrics.spectrum import spectral_exponents, spectrum_comparison


def power_law_fields(beta: float, n: int = 4, size: int = 128, seed: int = 0) -> np.ndarray:
    """Gaussian random fields with radial power spectrum P(f) ~ f^-beta, scaled into [0, 1]."""
    rng = np.random.default_rng(seed)
    f = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])
    f[0, 0] = 1.0
    amp = f ** (-beta / 2)
    amp[0, 0] = 0.0
    z = rng.standard_normal((n, size, size // 2 + 1)) + 1j * rng.standard_normal((n, size, size // 2 + 1))
    x = np.fft.irfft2(z * amp, s=(size, size))
    x = x / x.std(axis=(1, 2), keepdims=True) * 0.05 + 0.5
    return np.clip(x, 0, 1).astype(np.float32)


def full_masks(x: np.ndarray) -> np.ndarray:
    return np.ones(x.shape, dtype=bool)


def blur(x: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    return np.stack([gaussian_filter(i, sigma) for i in x]).astype(np.float32)


# -- spectrum ------------------------------------------------------------------------------
@pytest.mark.parametrize("beta", [2.0, 3.0, 4.0])
def test_beta_of_power_law_fields(beta):
    x = power_law_fields(beta, seed=int(beta))
    est = spectral_exponents(x, full_masks(x))
    assert est.shape == (4,)
    assert np.all(np.abs(est - beta) < 0.3), est


def test_blur_raises_beta_and_lowers_highpass_energy():
    x = power_law_fields(3.0, n=3)
    xb = blur(x)
    m = full_masks(x)
    assert np.all(spectral_exponents(xb, m) > spectral_exponents(x, m) + 1.0)
    assert np.all(highpass_energy(xb, m) < 0.3 * highpass_energy(x, m))


def test_texture_outside_the_mask_does_not_change_the_result():
    x = power_law_fields(3.0, n=2)
    m = np.zeros(x.shape, bool)
    m[:, 10:118, 5:70] = True
    noisy = x.copy()
    noisy[~m] = np.random.default_rng(1).random(int((~m).sum()))
    assert np.array_equal(spectral_exponents(x, m), spectral_exponents(noisy, m))
    assert np.array_equal(highpass_energy(x, m), highpass_energy(noisy, m))
    # ... while the same change inside the mask does change it
    assert not np.array_equal(spectral_exponents(x, ~m), spectral_exponents(noisy, ~m))


def test_images_without_interior_patch_give_nan():
    x = power_law_fields(3.0, n=3, size=64)
    m = np.zeros(x.shape, bool)
    m[0, 5:60, 5:60] = True   # room for a 32 px patch after erosion
    m[1, 5:35, 5:35] = True   # 30 px: no patch fits
    beta = spectral_exponents(x, m)                      # m[2] empty
    assert np.isfinite(beta[0]) and np.isnan(beta[1:]).all()
    e = highpass_energy(x, m)
    assert np.isfinite(e[:2]).all() and np.isnan(e[2])


def test_argument_checks():
    x = power_law_fields(3.0, n=1, size=64)
    with pytest.raises(ValueError, match="fit"):
        spectral_exponents(x, full_masks(x), fit=(2, 20))
    with pytest.raises(ValueError, match="masks"):
        spectral_exponents(x, np.ones((1, 8, 8), bool))
    with pytest.raises(ValueError, match="erode"):
        highpass_energy(x, full_masks(x), erode=0)


def test_spectrum_comparison_ci_strata_and_dropped():
    rng = np.random.default_rng(0)
    real = rng.normal(3.2, 0.3, 60)
    syn = rng.normal(5.0, 0.4, 40)
    syn[:3] = np.nan
    rs = np.array(["A", "B", "C"] * 20)
    ss = np.array(["A"] * 36 + ["C"] * 4)
    res = spectrum_comparison(real, syn, rs, ss, seed=1, n_boot=300)
    assert res.synthetic.n == 37 and res.synthetic.n_dropped == 3 and res.real.n == 60
    assert res.ci_low <= res.diff_median <= res.ci_high and res.ci_low > 1.0
    assert res.mw_p < 1e-6 and res.ks_p < 1e-6
    assert set(res.strata) == {"A"}  # B: no synthetic images, C: only 4
    a = res.strata["A"]
    assert a.ci_low <= a.diff_median <= a.ci_high
    json.dumps(res.to_dict(), allow_nan=False)
    same = spectrum_comparison(real, real + 0.0, seed=1, n_boot=300)
    assert same.diff_median == 0.0 and same.ci_low <= 0.0 <= same.ci_high and same.ks_p > 0.9


def test_detail_comparison_ratio_and_ci():
    rng = np.random.default_rng(0)
    real = rng.gamma(4.0, 1e-4, 50)
    syn = 0.25 * rng.permutation(real)
    strata = {"density": np.array(list("ABCD") * 12 + ["A", "A"])}
    res = detail_comparison(real, syn, strata, strata, seed=0, n_boot=300)
    assert res.ratio == pytest.approx(0.25)
    assert res.ci_low <= res.ratio <= res.ci_high and res.ci_high < 0.5
    assert set(res.strata) == {"density:A", "density:B", "density:C", "density:D"}
    d = res.to_dict()
    json.dumps(d, allow_nan=False)
    empty = detail_comparison(np.array([np.nan, np.nan]), syn)
    assert not empty.available and empty.to_dict()["ratio"] is None


# -- verdict -----------------------------------------------------------------------------
def _det(auc, lo, hi) -> DetectabilityResult:
    return DetectabilityResult(auc=auc, ci_low=lo, ci_high=hi, n_pos=100, n_neg=100, n_pos_given=100,
                               n_neg_given=100, seconds=1.0, steps_per_fold=10)


@pytest.mark.parametrize("syn, floor, expected", [
    ((0.97, 0.94, 0.99), (0.55, 0.47, 0.63), "fail"),   # CIs apart and margin 0.42
    ((0.70, 0.60, 0.80), (0.55, 0.47, 0.63), "warn"),   # margin 0.15 but CIs overlap
    ((0.62, 0.60, 0.64), (0.55, 0.53, 0.57), "warn"),   # CIs apart, margin 0.07 < 0.10
    ((0.58, 0.50, 0.66), (0.55, 0.47, 0.63), "pass"),   # margin 0.03
    ((0.45, 0.40, 0.50), (0.55, 0.47, 0.63), "pass"),   # below the floor
    ((0.531, 0.506, 0.556), (0.461, 0.43, 0.49), "pass"),  # floor below chance: judged against 0.5
    ((0.56, 0.54, 0.58), (0.40, 0.36, 0.44), "warn"),    # 0.06 over chance
])
def test_verdict_rule(syn, floor, expected):
    t = DetectabilityTest(synthetic=_det(*syn), floor=_det(*floor))
    assert t.margin == pytest.approx(syn[0] - max(floor[0], 0.5))
    assert t.verdict() == expected
    assert expected in t.reason()


def test_verdict_margin_parameter():
    t = DetectabilityTest(synthetic=_det(0.70, 0.66, 0.74), floor=_det(0.55, 0.50, 0.60))
    assert t.verdict(margin=0.10) == "fail"
    assert t.verdict(margin=0.20) == "warn"
    assert t.verdict(margin=0.40) == "pass"


def test_spectrum_and_detail_only_raise_pass_to_warn():
    rng = np.random.default_rng(0)
    beta = rng.normal(3.2, 0.2, 40)
    e = rng.gamma(4.0, 1e-4, 40)
    passing = DetectabilityTest(synthetic=_det(0.56, 0.48, 0.64), floor=_det(0.55, 0.47, 0.63))
    same = realism_verdict(passing, spectrum_comparison(beta, beta, n_boot=100), detail_comparison(e, e, n_boot=100))
    assert same.status == "pass" and len(same.reasons) == 1
    steep = realism_verdict(passing, spectrum_comparison(beta, beta + 3, n_boot=100),
                            detail_comparison(e, 0.2 * e, n_boot=100))
    assert steep.status == "warn" and len(steep.reasons) == 3
    failing = DetectabilityTest(synthetic=_det(0.97, 0.94, 0.99), floor=_det(0.55, 0.47, 0.63))
    assert realism_verdict(failing, spectrum_comparison(beta, beta + 3, n_boot=100),
                           detail_comparison(e, e, n_boot=100)).status == "fail"


# -- records, entry point, sheet -------------------------------------------------------------
def _record(i: int, density: str, kinds: tuple[str, ...] = ()) -> ImageRecord:
    return ImageRecord(image_id=f"r{i}", patient_id=f"p{i // 2}", laterality="L", view="CC", density=density,
                       findings=tuple(Finding(kind=k) for k in kinds))


def test_record_strata():
    recs = [_record(0, "A"), _record(1, "B", ("mass",)), _record(2, "C", ("mass", "mass")),
            _record(3, "D", ("mass", "calcification"))]
    assert [finding_stratum(r) for r in recs] == ["none", "mass", "mass", "mixed"]
    s = record_strata(recs)
    assert list(s["density"]) == ["A", "B", "C", "D"]
    assert record_strata(None) is None and record_strata(recs, ()) is None


def _breasts(n: int, smooth: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = power_law_fields(3.0, n=n, size=48, seed=seed)
    if smooth:
        x = blur(x, 1.5)
    m = np.zeros(x.shape, bool)
    m[:, 2:46, :40] = True
    return np.where(m, x, 0).astype(np.float32), m


def test_realism_metrics_end_to_end():
    xr, mr = _breasts(12, False, 0)
    xs, ms = _breasts(12, True, 1)
    recs = [_record(i, "AB"[i % 2]) for i in range(12)]
    cfg = RealismConfig(detectability=DetectabilityConfig(folds=2, steps=4, whole_steps=2, batch_size=8, n_boot=100,
                                                          channels=(4, 8), stem=0, threads=1),
                        patch=16, stride=8, fit=(2, 7), n_boot=100)
    res = realism_metrics(xr, mr, recs, xs, ms, recs, cfg, progress=False)
    assert res.spectrum.diff_median > 0.5 and res.detail.ratio < 0.5
    assert "density:A" in res.spectrum.strata
    assert res.verdict.status in ("warn", "fail") and len(res.verdict.reasons) == 3
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert set(d) == {"detectability", "spectrum", "detail", "local_texture", "outline", "verdict", "seconds",
                      "real_side_cached"}
    assert set(d["local_texture"]["statistics"]) == {"grain_skewness", "grain_kurtosis", "coherence",
                                                     "grain_anisotropy"}
    assert d["local_texture"]["available"] and len(res.verdict.reasons) == 3  # they explain, never add reasons
    assert d["detectability"]["real_vs_real"]["n_pos"] == 6
    no_records = realism_metrics(xr, mr, None, xs, ms, None, cfg, progress=False)
    assert no_records.spectrum.strata == {}


def test_real_side_is_cached_and_reused_only_for_the_same_real_set(tmp_path, monkeypatch):
    from mammosynth.metrics import detectability as det_mod
    from mammosynth.metrics import realism as realism_mod
    from mammosynth.metrics.cache import FeatureCache

    xr, mr = _breasts(12, False, 0)
    xs, ms = _breasts(12, True, 1)
    recs = [_record(i, "AB"[i % 2]) for i in range(12)]
    cfg = RealismConfig(detectability=DetectabilityConfig(folds=2, steps=4, whole_steps=2, batch_size=8, n_boot=100,
                                                          channels=(4, 8), stem=0, threads=1, floor_splits=2),
                        patch=16, stride=8, fit=(2, 7), n_boot=100)
    floor_calls = ["real vs real (split 1/2)", "real vs real (split 2/2)"]
    calls = []
    real_fn = det_mod.detectability
    monkeypatch.setattr(det_mod, "detectability", lambda *a, **k: calls.append(k["desc"]) or real_fn(*a, **k))
    texture_sides = []
    lt_fn = realism_mod.local_texture_statistics
    monkeypatch.setattr(realism_mod, "local_texture_statistics",
                        lambda x, *a, **k: texture_sides.append(len(x)) or lt_fn(x, *a, **k))
    cache = FeatureCache(tmp_path)
    fresh = realism_metrics(xr, mr, recs, xs, ms, recs, cfg, progress=False, cache=cache, real_key="set-1")
    assert calls == ["synthetic vs real", *floor_calls] and not fresh.real_side_cached
    again = realism_metrics(xr, mr, recs, xs[::-1].copy(), ms[::-1].copy(), recs, cfg, progress=False, cache=cache,
                            real_key="set-1")
    assert calls[3:] == ["synthetic vs real"] and again.real_side_cached
    assert again.detectability.floor.to_dict() == fresh.detectability.floor.to_dict()
    np.testing.assert_array_equal(again.detectability.floor.neg_scores, fresh.detectability.floor.neg_scores)
    assert again.spectrum.real.median == fresh.spectrum.real.median
    assert texture_sides == [12, 12, 12]  # real and synthetic, then the synthetic side only
    for name, c in fresh.local_texture.statistics.items():  # the real side's statistics from the cache
        assert again.local_texture.statistics[name].real == c.real
    # another real set (content hash), other settings or other labels: computed anew
    realism_metrics(xr, mr, recs, xs, ms, recs, cfg, progress=False, cache=cache, real_key="set-2")
    other_labels = [_record(i, "BA"[i % 2]) for i in range(12)]
    realism_metrics(xr, mr, other_labels, xs, ms, other_labels, cfg, progress=False, cache=cache, real_key="set-1")
    assert calls[4:] == ["synthetic vs real", *floor_calls] * 2


def test_realism_sheet(tmp_path):
    from PIL import Image

    xr, mr = _breasts(5, False, 0)
    xs, ms = _breasts(5, True, 1)
    out = realism_sheet(xr, mr, xs, ms, tmp_path / "sheet.png", n=4, crop=32)
    img = Image.open(out["path"])
    assert img.size == ((80 + 4 * (32 + 4)) * 2, (2 * (32 + 4) + 4) * 2)
    assert out["n_real"] == out["n_synthetic"] == 4 and out["crop"] == 32
    # 64 px does not fit inside a 44 x 40 breast (40 x 36 after erosion): the largest power of two that does
    small = realism_sheet(xr, mr, xs, ms, tmp_path / "small.png", n=4, crop=64)
    assert small["crop"] == 32 and Image.open(small["path"]).size == img.size
    narrow = ms.copy()
    narrow[:, :, 20:] = False   # synthetic breasts 20 px wide (16 after erosion): both rows fall back to 16
    assert realism_sheet(xr, mr, xs, narrow, tmp_path / "narrow.png", n=4, crop=64)["crop"] == 16
    with pytest.raises(ValueError, match="window inside the breast"):
        realism_sheet(xr, mr, xs, np.zeros_like(ms), tmp_path / "none.png", crop=32)


# -- spectrum patch size -------------------------------------------------------------------
def _phantoms(n: int, size: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    from mammosynth.data.preprocess import breast_masks
    from mammosynth.phantom import PhantomConfig, render_phantom

    x = np.stack([np.asarray(render_phantom(seed + i, PhantomConfig(size=size))[0], np.float32) for i in range(n)])
    x = (x - x.min()) / (x.max() - x.min())
    return x, breast_masks(x)


TINY_DETECT = DetectabilityConfig(folds=2, steps=4, whole_steps=2, batch_size=8, n_boot=50, channels=(4, 8), stem=0,
                                  threads=1)


def test_spectrum_settings_follow_the_image_size_unless_given():
    auto = RealismConfig()
    assert auto.spectrum_settings((10, 64, 40)).to_dict() == {"patch": 16, "stride": 8, "fit": [2, 7]}
    assert auto.spectrum_settings((128, 80)).to_dict() == {"patch": 32, "stride": 16, "fit": [2, 12]}
    assert auto.spectrum_settings((3, 256, 160)).patch == 32
    assert RealismConfig(patch=32).spectrum_settings((64, 40)).to_dict() == {"patch": 32, "stride": 16,
                                                                             "fit": [2, 12]}
    assert RealismConfig(patch=24).spectrum_settings((64, 40)).to_dict() == {"patch": 24, "stride": 12,
                                                                             "fit": [2, 10]}
    given = RealismConfig(patch=16, stride=4, fit=(3, 8)).spectrum_settings((256, 160))
    assert (given.patch, given.stride, given.fit) == (16, 4, (3, 8))
    with pytest.raises(ValueError, match="patch must be >= 8"):
        RealismConfig(patch=4)


def test_small_films_get_a_finite_beta_and_an_explicit_patch_is_honoured():
    xr, mr = _phantoms(8, (64, 40), 0)
    xs, ms = _phantoms(8, (64, 40), 100)
    res = realism_metrics(xr, mr, None, xs, ms, None, RealismConfig(detectability=TINY_DETECT, n_boot=50),
                          progress=False)
    assert res.spectrum.available and res.spectrum.real.n == 8 and res.spectrum.synthetic.n == 8
    assert 1.5 < res.spectrum.real.median < 5 and np.isfinite(res.spectrum.diff_median)
    d = res.to_dict()["spectrum"]
    assert d["settings"]["patch"] == 16 and "16-px patches (stride 8)" in d["settings"]["text"]
    # 32 px, as asked: no 32-px window fits inside an eroded 40-px-wide breast
    big = realism_metrics(xr, mr, None, xs, ms, None, RealismConfig(detectability=TINY_DETECT, n_boot=50, patch=32),
                          progress=False)
    assert big.spectrum_settings.patch == 32 and not big.spectrum.available and big.spectrum.real.n == 0


def test_real_side_cache_key_holds_the_resolved_spectrum_settings(tmp_path, monkeypatch):
    from mammosynth.metrics import realism
    from mammosynth.metrics.cache import FeatureCache

    xr, mr = _breasts(8, False, 0)
    xs, ms = _breasts(8, True, 1)
    cfg, cache = RealismConfig(detectability=TINY_DETECT, n_boot=50), FeatureCache(tmp_path)
    first = realism_metrics(xr, mr, None, xs, ms, None, cfg, progress=False, cache=cache, real_key="set")
    assert realism_metrics(xr, mr, None, xs, ms, None, cfg, progress=False, cache=cache, real_key="set"
                           ).real_side_cached
    # the same config resolving to other settings (the automatic rule changed): recomputed
    monkeypatch.setattr(realism, "LARGE_PATCH_MIN_SIDE", 32)
    other = realism_metrics(xr, mr, None, xs, ms, None, cfg, progress=False, cache=cache, real_key="set")
    assert first.spectrum_settings.patch == 16 and other.spectrum_settings.patch == 32
    assert not other.real_side_cached
