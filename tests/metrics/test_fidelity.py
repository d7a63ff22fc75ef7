"""compute_image_metrics: structure, known answers end to end, cache, unavailable metrics."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from mammosynth.metrics import features as F
from mammosynth.metrics.fidelity import ImageMetricsConfig, compute_image_metrics

M_KEYS = {"value", "available", "reason"}


def _config(tmp_path, **kw):
    return ImageMetricsConfig(size=(64, 40), thumb_size=(32, 20), cache_dir=str(tmp_path / "cache"), frd=False,
                              ms_ssim_pairs=20, kid_subsets=10, **kw)


@pytest.fixture
def sets(breast_images, image_set_factory):
    return {"train": image_set_factory(breast_images(24, seed=0), prefix="tr"),
            "heldout": image_set_factory(breast_images(24, seed=1), prefix="ho"),
            "synthetic": image_set_factory(breast_images(24, seed=2), kind="synthetic", prefix="sy")}


def _walk_finite(obj, path="result"):
    if isinstance(obj, float):
        assert math.isfinite(obj), path
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _walk_finite(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _walk_finite(v, f"{path}[{i}]")


def test_structure_and_json(sets, tmp_path):
    res = compute_image_metrics(sets["heldout"], sets["synthetic"], train=sets["train"], heldout=sets["heldout"],
                                config=_config(tmp_path))
    json.dumps(res, allow_nan=False)
    _walk_finite(res)
    assert set(res["fidelity"]) == {"frd", "fd_texture", "kid_texture", "fid_inception", "kid_inception"}
    for m in res["fidelity"].values():
        assert M_KEYS <= set(m)
    assert "std" in res["fidelity"]["kid_texture"] and "std" in res["fidelity"]["kid_inception"]
    assert res["fidelity"]["fd_texture"]["available"] and res["fidelity"]["fd_texture"]["value"] > 0
    assert res["fidelity"]["frd"] == {"value": None, "available": False,
                                      "reason": "FRD disabled in the configuration (frd=False)"}
    assert not res["fidelity"]["fid_inception"]["available"]
    assert "no InceptionV3 weights" in res["fidelity"]["fid_inception"]["reason"]
    assert set(res["prdc"]) == {"texture"}
    assert {"precision", "recall", "density", "coverage"} <= set(res["prdc"]["texture"])
    assert set(res["intensity"]["moments"]["real"]) == {"mean", "sd", "skewness", "kurtosis"}
    assert set(res["intensity"]["distances"]) == {"wasserstein", "js", "ks"}
    assert len(res["intensity"]["histograms"]["bin_edges"]) == len(res["intensity"]["histograms"]["real"]) + 1
    assert set(res["texture"]["real"]) == {"contrast", "homogeneity", "energy", "correlation"}
    assert isinstance(res["texture"]["distance"], float)
    assert {"density", "finding", "view"} <= set(res["labels"])
    assert {"tv", "chi2_p", "real", "synthetic"} <= set(res["labels"]["density"])
    div = res["diversity"]
    assert {"ms_ssim_real", "ms_ssim_synthetic", "pairs", "mode_collapse", "message"} <= set(div)
    assert div["pairs"] == 20 and div["mode_collapse"] is False
    mem = res["memorization"]
    assert mem["available"] and mem["reason"] is None and mem["n_flagged"] == 0
    assert {"threshold", "flagged", "closest", "heldout_nn_quantiles"} <= set(mem)
    assert {"synthetic_id", "train_id", "distance", "ssim"} <= set(mem["closest"][0])
    assert res["extractor"]["name"] == "mammo-texture" and res["extractor"]["dim"] == F.DIM
    assert res["extractor"]["why"]
    assert {"features_real", "features_synthetic", "diversity", "memorization"} <= set(res["timings_s"])


def test_set_against_itself_and_copies(sets, tmp_path):
    res = compute_image_metrics(sets["train"], sets["train"], train=sets["train"], heldout=sets["heldout"],
                                config=_config(tmp_path))
    assert res["fidelity"]["fd_texture"]["value"] == pytest.approx(0.0, abs=1e-8)
    p = res["prdc"]["texture"]
    assert p["precision"] == p["recall"] == p["coverage"] == 1.0
    assert res["intensity"]["distances"] == {"wasserstein": 0.0, "js": 0.0, "ks": 0.0}
    assert res["texture"]["distance"] == 0.0
    assert res["labels"]["density"]["tv"] == 0.0
    assert res["memorization"]["n_flagged"] == 24  # every image is its own training copy


def test_mode_collapse_and_no_train(breast_images, image_set_factory, sets, tmp_path):
    one = breast_images(1, seed=5)[0]
    collapsed = image_set_factory([one] * 12, kind="synthetic", prefix="c")
    res = compute_image_metrics(sets["heldout"], collapsed, config=_config(tmp_path))
    assert res["diversity"]["mode_collapse"] is True
    assert res["diversity"]["ms_ssim_synthetic"] == pytest.approx(1.0, abs=1e-6)
    assert res["memorization"]["available"] is False
    assert "train=None" in res["memorization"]["reason"]


def test_too_few_images_is_explained(breast_images, image_set_factory, sets, tmp_path):
    tiny = image_set_factory(breast_images(3, seed=4), kind="synthetic")
    res = compute_image_metrics(sets["heldout"], tiny, config=_config(tmp_path))
    json.dumps(res, allow_nan=False)
    assert res["prdc"]["texture"]["available"] is False
    assert "at least 6" in res["prdc"]["texture"]["reason"]
    assert res["fidelity"]["fd_texture"]["available"] and "note" in res["fidelity"]["fd_texture"]


def test_single_image_set_reports_unavailable(breast_images, image_set_factory, sets, tmp_path):
    one = image_set_factory(breast_images(1, seed=4), kind="synthetic")
    res = compute_image_metrics(sets["heldout"], one, config=_config(tmp_path))
    json.dumps(res, allow_nan=False)
    for key in ("fd_texture", "kid_texture"):
        assert res["fidelity"][key]["available"] is False and "at least 2" in res["fidelity"][key]["reason"]
    div = res["diversity"]
    assert div["available"] is False and div["ms_ssim_synthetic"] is None and "at least 2" in div["message"]
    assert res["intensity"]["available"] is True  # pixel statistics need one image only


def test_second_run_uses_cache(sets, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = F.describe_image

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(F, "describe_image", counting)
    cfg = _config(tmp_path)
    first = compute_image_metrics(sets["heldout"], sets["synthetic"], config=cfg)
    assert calls["n"] == 48 and first["cache"]["hits"] == 0
    second = compute_image_metrics(sets["heldout"], sets["synthetic"], config=cfg)
    assert calls["n"] == 48 and second["cache"]["hits"] == 4  # features and MS-SSIM of both sets
    assert second["fidelity"]["fd_texture"] == first["fidelity"]["fd_texture"]


def test_inception_with_fake_model(sets, tmp_path):
    class Fake(torch.nn.Module):
        def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            f = torch.nn.functional.adaptive_avg_pool2d(x.to(torch.float32) / 255.0, 4).flatten(1)  # [N, 48]
            return f.repeat(1, 43)[:, :2048]

    path = tmp_path / "inception-2015-12-05.pt"
    torch.jit.script(Fake()).save(str(path))
    res = compute_image_metrics(sets["heldout"], sets["synthetic"],
                                config=_config(tmp_path, inception_weights=str(path)))
    assert res["fidelity"]["fid_inception"]["available"] and res["fidelity"]["fid_inception"]["value"] >= 0
    assert res["fidelity"]["kid_inception"]["available"] and res["fidelity"]["kid_inception"]["std"] is not None
    assert res["prdc"]["inception"]["available"]
    missing = compute_image_metrics(sets["heldout"], sets["synthetic"],
                                    config=_config(tmp_path, inception_weights=str(tmp_path / "nope.pt")))
    assert "not found" in missing["fidelity"]["fid_inception"]["reason"]
    assert "inception" not in missing["prdc"]


def test_config_validation():
    with pytest.raises(ValueError, match="k must be"):
        ImageMetricsConfig(k=0)
    with pytest.raises(ValueError, match="32x32"):
        ImageMetricsConfig(size=(16, 16))
    assert np.array(ImageMetricsConfig().size).tolist() == [256, 160]
