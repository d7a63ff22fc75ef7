"""FRD wrapper: equals frd-score's compute_frd; caches radiomics; degenerate cases explained."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("frd_score")

from mammosynth.data.prepared import PreparedDataset  # noqa: E402
from mammosynth.metrics import MetricUnavailable  # noqa: E402
from mammosynth.metrics import frd as F  # noqa: E402
from mammosynth.metrics.cache import FeatureCache  # noqa: E402


def test_matches_frd_score_and_caches(tiny_dataset_factory, tmp_path, monkeypatch):
    """Stage 1 is frd-score's own extractor (on images downsampled to 64x40); stage 2 must equal
    frd_score.compute_frd exactly.

    To keep the test fast, compute_frd is fed the radiomics our wrapper extracted (checking
    that it would have been called with the same files and settings).
    """
    import frd_score
    import frd_score.frd as fm

    real = PreparedDataset(tiny_dataset_factory(n=4, seed=0, size=(96, 60)))
    syn = PreparedDataset(tiny_dataset_factory(n=4, seed=1, size=(96, 60)))
    paths = [[str(d.path_of(i)) for i in range(len(d))] for d in (real, syn)]
    cache = FeatureCache(tmp_path / "cache")
    extracted: list[tuple[np.ndarray, list[str]]] = []
    original = F.radiomics_features

    def recording(*a, **k):
        extracted.append(original(*a, **k))
        return extracted[-1]

    monkeypatch.setattr(F, "radiomics_features", recording)
    result = F.compute_frd(real, syn, size=(64, 40), cache=cache, num_workers=1)
    value = result.value
    assert len(extracted) == 2 and extracted[0][0].shape[0] == 4
    names = extracted[0][1]
    assert len(names) == extracted[0][0].shape[1] and any("wavelet" in n for n in names)
    assert result.top_features and {t["feature"] for t in result.top_features} <= set(names)

    def replay(files, feature_extractor, masks=None, resize_size=None, verbose=False, num_workers=None,
               frd_version="v1"):
        assert resize_size is None and frd_version == "v1" and masks is None
        arr = extracted[len(calls)][0]  # compute_frd extracts the real set first, then the synthetic
        calls.append(files)
        names = [f"f{i}" for i in range(arr.shape[1])]
        return arr, [dict(zip(names, row)) for row in arr], [None] * len(arr)

    calls: list = []
    monkeypatch.setattr(fm, "compute_features", replay)
    ref = frd_score.compute_frd(paths, frd_version="v1", num_workers=1)
    assert [[str(f) for f in c] for c in calls] == paths
    assert value == pytest.approx(float(ref), rel=1e-9)

    def boom(*a, **k):
        raise AssertionError("radiomics recomputed despite the cache")

    monkeypatch.setattr(F, "radiomics_features", boom)
    assert F.compute_frd(real, syn, size=(64, 40), cache=cache, num_workers=1) == result


def test_degenerate_inputs_are_unavailable():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 5))
    with pytest.raises(MetricUnavailable, match="log\\(0\\)"):
        F.frd_from_features(x, x)
    y = x.copy()
    y[1:] = np.nan
    with pytest.raises(MetricUnavailable, match="at least 2"):
        F.frd_from_features(x, y)
    assert np.isfinite(F.frd_from_features(x, x + 1.0))


def test_feature_terms_name_the_feature_that_carries_the_distance():
    """A feature that is nearly constant in the real set dominates FRD v1 when the synthetic
    set moves it (z-scored with the real SD); the terms must name it."""
    rng = np.random.default_rng(0)
    real = rng.standard_normal((40, 6))
    real[:, 4] = 1e-9 * rng.standard_normal(40)  # e.g. a wavelet median on a flat background
    syn = rng.standard_normal((40, 6))
    syn[:, 4] = 1e-3 * rng.standard_normal(40)
    names = [f"f{i}" for i in range(6)]
    terms = F.frd_feature_terms(real, syn, names, top=3)
    assert terms[0]["feature"] == "f4" and terms[0]["share"] > 0.99
    assert len(terms) == 3 and terms[0]["term"] >= terms[1]["term"] >= terms[2]["term"]
    syn[:, 4] = 1e-9 * rng.standard_normal(40)
    assert F.frd_feature_terms(real, syn, names, top=1)[0]["share"] < 0.9
    assert F.frd_from_features(real, syn) < 10


def test_features_constant_up_to_float_rounding_are_named_and_can_be_left_out():
    """A wavelet median of ~1e-14 on every real film (SD ~1e-14) and -2e-11 on one synthetic
    image (numerically zero too) carried 99.9 % of a set's FRD: the published value keeps it,
    ``drop_float_noise`` leaves it out and reads the rest of the features."""
    rng = np.random.default_rng(1)
    real = rng.standard_normal((54, 6))
    real[:, 2] = 1e-14 * rng.standard_normal(54)
    real[:, 5] = 7.0  # no variation at all: FRD v1 drops it itself
    syn = rng.standard_normal((54, 6)) + 0.1
    syn[:, 2] = 1e-14 * rng.standard_normal(54)
    syn[:, 5] = 7.0
    names = [f"f{i}" for i in range(6)]
    assert F.float_noise_features(real, names) == ["f2"]
    calm = F.frd_from_features(real, syn)
    syn[7, 2] = -2e-11
    assert F.frd_from_features(real, syn) > calm + 3  # one image's rounding moves the published FRD
    stable = F.frd_from_features(real, syn, drop_float_noise=True)
    assert stable == pytest.approx(F.frd_from_features(real[:, [0, 1, 3, 4]], syn[:, [0, 1, 3, 4]]), rel=1e-5)
    assert F.float_noise_features(real[:, [0, 1, 3, 4]], ["a", "b", "c", "d"]) == []
