"""Memorisation: near-copy detection against known answers."""
from __future__ import annotations

import pytest

from mammosynth.metrics.features import FeatureSettings, SetFeatures, extract_set
from mammosynth.metrics.memorization import MemorizationConfig, find_memorization

SETTINGS = FeatureSettings(size=(64, 40), thumb_size=(32, 20))


@pytest.fixture(scope="module")
def feats(breast_images, write_image_set, tmp_path_factory):
    root = tmp_path_factory.mktemp("memo")
    sets = {"train": (breast_images(30, seed=0), "tr"), "heldout": (breast_images(30, seed=1), "ho"),
            "synthetic": (breast_images(20, seed=2), "sy")}
    return {k: extract_set(write_image_set(root / k, imgs, prefix=p), SETTINGS) for k, (imgs, p) in sets.items()}


@pytest.fixture
def sets(feats, breast_images, image_set_factory):
    return feats, breast_images, image_set_factory


def test_disjoint_split_has_no_copies(sets):
    f, _, _ = sets
    out = find_memorization(f["train"], f["synthetic"], f["heldout"])
    assert out["n_flagged"] == 0 and out["flagged"] == []
    assert out["calibration"] == "heldout"
    assert len(out["closest"]) == 8
    d = [r["nearest_distance"] for r in out["closest"]]
    assert d == sorted(d)
    assert out["heldout_nn_quantiles"]["q0.01"] <= out["heldout_nn_quantiles"]["q0.5"]


def test_training_set_itself_is_all_flagged(sets):
    f, _, _ = sets
    out = find_memorization(f["train"], f["train"], f["heldout"])
    assert out["n_flagged"] == len(f["train"]) == out["n_synthetic"]
    for r in out["flagged"]:
        assert r["train_id"] == r["synthetic_id"] and r["distance"] == 0.0 and r["ssim"] == pytest.approx(1.0)


def test_one_planted_copy_is_found(sets):
    f, breast_images, factory = sets
    imgs = breast_images(20, seed=2)
    imgs[7] = breast_images(30, seed=0)[11]  # copy of training image tr0011
    planted = extract_set(factory(imgs, kind="synthetic", prefix="sy"), SETTINGS)
    out = find_memorization(f["train"], planted, f["heldout"])
    assert [(r["synthetic_id"], r["train_id"]) for r in out["flagged"]] == [("sy0007", "tr0011")]
    assert out["closest"][0]["synthetic_id"] == "sy0007"


def test_without_heldout_uses_leave_one_out(sets):
    f, _, _ = sets
    out = find_memorization(f["train"], f["synthetic"], None)
    assert out["calibration"].startswith("train-leave-one-out") and out["n_flagged"] == 0
    assert out["threshold"] > 0


def test_errors(sets):
    f, _, _ = sets
    with pytest.raises(ValueError, match="alpha"):
        MemorizationConfig(alpha=0)
    one = SetFeatures(ids=["a"], indices=f["train"].indices[:1],
                     features=f["train"].features[:1], hist=f["train"].hist, sums=f["train"].sums,
                     thumbs=f["train"].thumbs[:1])
    with pytest.raises(ValueError, match="at least 2"):
        find_memorization(one, f["synthetic"])
