"""The mammo-texture descriptor, per-set extraction and the feature cache."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mammosynth.metrics import features as F
from mammosynth.metrics.cache import FeatureCache, cache_key, default_cache_dir
from mammosynth.metrics.frechet import frechet_distance
from mammosynth.metrics.intensity import histogram_distances, moments_from_sums

SETTINGS = F.FeatureSettings(size=(64, 40), thumb_size=(32, 20))


def test_descriptor_is_deterministic_and_finite(breast_images):
    img = breast_images(1, size=(64, 40))[0].astype(np.float32)
    a, b = F.describe_image(img), F.describe_image(img.copy())
    assert a.shape == (F.DIM,) == (len(F.feature_names()),)
    assert np.isfinite(a).all() and (a == b).all()
    black = F.describe_image(np.zeros((64, 40), np.float32))  # no breast: whole image, still finite
    assert np.isfinite(black).all()
    assert not np.allclose(F.describe_image(np.clip(img + 0.1, 0, 1)), a)


def test_descriptor_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        F.describe_image(np.full((64, 40), np.nan, np.float32))
    with pytest.raises(ValueError, match="32x32"):
        F.describe_image(np.zeros((16, 16), np.float32))
    with pytest.raises(ValueError, match="32x32"):
        F.FeatureSettings(size=(16, 16))


def test_resize01_scales_and_resizes():
    img = np.full((100, 60), 65535, np.uint16)
    out = F.resize01(img, (50, 30))
    assert out.shape == (50, 30) and out.dtype == np.float32 and np.allclose(out, 1.0)
    assert np.allclose(F.resize01(np.full((10, 10), 255, np.uint8), (10, 10)), 1.0)


def _shifted_sets(breast_images, factory):
    a = breast_images(24, seed=0)
    b = breast_images(24, seed=1)
    sets = {"real": a, "same": b,
            "bright": [np.where(x > 0, np.clip(x + 0.15, 0, 1), 0) for x in b],
            "blur": [ndimage.gaussian_filter(x, 1.5) for x in b]}
    return {k: F.extract_set(factory(v), SETTINGS) for k, v in sets.items()}


def test_shifted_and_blurred_sets_score_worse(breast_images, image_set_factory):
    f = _shifted_sets(breast_images, image_set_factory)
    z = dict(zip(f, F.standardise(*(s.features for s in f.values()))))
    fd = {k: frechet_distance(z["real"], z[k]) for k in ("same", "bright", "blur")}
    assert fd["bright"] > 2 * fd["same"] and fd["blur"] > 2 * fd["same"]
    hd = {k: histogram_distances(f["real"].hist, f[k].hist) for k in ("same", "bright")}
    for key in ("wasserstein", "js", "ks"):
        assert hd["bright"][key] > 3 * hd["same"][key]
    m = {k: moments_from_sums(f[k].sums)["mean"] for k in ("real", "same", "bright")}
    assert abs(m["bright"] - m["real"]) > 5 * abs(m["same"] - m["real"])
    blur = histogram_distances(f["real"].hist, f["blur"].hist)  # blur narrows the tissue peak
    assert blur["js"] > 2 * hd["same"]["js"] and blur["ks"] > 2 * hd["same"]["ks"]


def test_cache_hit_skips_extraction(tiny_dataset, tmp_path, monkeypatch):
    from mammosynth.data.prepared import PreparedDataset

    calls = {"n": 0}
    real = F.describe_image

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(F, "describe_image", counting)
    ds = PreparedDataset(tiny_dataset)
    cache = FeatureCache(tmp_path / "cache")
    first = F.extract_set(ds, SETTINGS, cache=cache)
    assert calls["n"] == len(ds) and not first.from_cache
    second = F.extract_set(ds, SETTINGS, cache=cache)
    assert calls["n"] == len(ds) and second.from_cache and cache.hits == 1
    assert np.array_equal(first.features, second.features) and np.array_equal(first.thumbs, second.thumbs)
    # preprocessing is part of the key: another resize target recomputes
    F.extract_set(ds, F.FeatureSettings(size=(48, 32), thumb_size=(32, 20)), cache=cache)
    assert calls["n"] == 2 * len(ds)
    # so is the image selection
    F.extract_set(ds, SETTINGS, max_images=5, seed=1, cache=cache)
    assert calls["n"] == 2 * len(ds) + 5
    # a disabled cache never hits
    F.extract_set(ds, SETTINGS, cache=FeatureCache(tmp_path / "cache", enabled=False))
    assert calls["n"] == 3 * len(ds) + 5


def test_cache_dir_and_key(monkeypatch, tmp_path):
    monkeypatch.setenv("MAMMOSYNTH_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("MAMMOSYNTH_CACHE")
    assert default_cache_dir().parts[-2:] == (".cache", "mammosynth")
    assert cache_key(a=1, b=[1, 2]) == cache_key(b=[1, 2], a=1) != cache_key(a=1, b=[2, 1])
    c = FeatureCache(tmp_path / "c")
    c.path("k").parent.mkdir(parents=True)
    c.path("k").write_bytes(b"not an npz")
    assert c.load("k") is None  # unreadable entry: recompute


def test_select_indices():
    assert list(F.select_indices(5, None, 0)) == [0, 1, 2, 3, 4]
    sub = F.select_indices(100, 10, seed=3)
    assert len(sub) == 10 and list(sub) == sorted(sub) and (sub == F.select_indices(100, 10, seed=3)).all()


def test_pooled_standardisation_keeps_a_near_constant_feature_from_dominating():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((60, 5))
    real[:, 0] = 1e-6 * rng.standard_normal(60)  # e.g. a layout cell that is background in every real image
    syn = rng.standard_normal((60, 5))
    syn[:, 0] = 0.01 * rng.standard_normal(60)
    by_real = frechet_distance(*F.standardise(real, syn))
    pooled = frechet_distance(*F.standardise(real, syn, pooled=True))
    assert by_real > 1e6 and pooled < 5
    a, b = F.standardise(real, syn, pooled=True)
    both = np.concatenate([a, b])
    assert np.allclose(both.mean(0), 0, atol=1e-9) and np.allclose(both.std(0), 1)
