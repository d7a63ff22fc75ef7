"""Tests for mammosynth.metrics.utility: task labels, the CNN, regimes and the paired test."""
from __future__ import annotations

import numpy as np
import pytest

from mammosynth.data.prepared import PreparedDataset
from mammosynth.data.schema import Finding, ImageRecord
from mammosynth.metrics import utility
from mammosynth.metrics.utility import ClassifierConfig

FAST = ClassifierConfig(input_size=(16, 16), epochs=6, min_steps=1, batch_size=16, lr=5e-3, channels=(8, 16))


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here trains small CNNs: one torch thread (see tests/conftest.py)."""


def _rec(i, density="A", findings=(), **kw):
    return ImageRecord(image_id=f"r{i}", patient_id=f"p{i}", laterality="L", view="CC", density=density,
                       findings=findings, **kw)


def test_task_labels():
    mal = (Finding(kind="mass", pathology="malignant"),)
    ben = (Finding(kind="calcification", pathology="benign"),)
    unk = (Finding(kind="mass"),)
    recs = [_rec(0), _rec(1, "C", mal), _rec(2, "B", ben), _rec(3, "unknown", unk)]
    assert utility.task_labels(recs, "finding").tolist() == [0, 1, 1, 1]
    assert utility.task_labels(recs, "density").tolist() == [0, 1, 0, -1]
    assert utility.task_labels(recs, "malignancy").tolist() == [0, 1, 0, -1]
    with pytest.raises(ValueError, match="unknown task"):
        utility.task_label(recs[0], "birads")


def test_choose_task_explains_skips():
    no_find = [_rec(i, "AC"[i % 2]) for i in range(6)]
    task, why = utility.choose_task(no_find, no_find, no_find)
    assert task == "density" and "finding" in why and "auto-chosen" in why
    only_a = [_rec(i) for i in range(6)]
    task, why = utility.choose_task(only_a, only_a, only_a)
    assert task is None and "no task" in why


def _blobs(rng, n, size=16):
    """Images with (y=1) or without (y=0) a bright square, plus noise."""
    y = np.arange(n) % 2
    x = rng.uniform(0.2, 0.4, (n, size, size)).astype(np.float32)
    for i in np.flatnonzero(y):
        r, c = rng.integers(2, size - 6, 2)
        x[i, r:r + 4, c:c + 4] += 0.5
    return x, y


def test_cnn_learns_a_separable_task_and_is_deterministic():
    rng = np.random.default_rng(0)
    x, y = _blobs(rng, 80)
    xt, yt = _blobs(rng, 40)
    m1 = utility.train_classifier(x, y, 2, FAST, seed=3)
    p1 = utility.predict_proba(m1, xt)
    assert p1.shape == (40, 2) and np.allclose(p1.sum(axis=1), 1)
    assert utility.roc_auc(yt, p1[:, 1]) > 0.9
    p2 = utility.predict_proba(utility.train_classifier(x, y, 2, FAST, seed=3), xt)
    assert np.array_equal(p1, p2)
    with pytest.raises(ValueError, match="labels must be in"):
        utility.train_classifier(x, y + 1, 2, FAST)


def test_regimes_and_paired_test():
    rng = np.random.default_rng(1)
    x, y = _blobs(rng, 40)
    sx, sy = _blobs(rng, 40)
    tx, ty = _blobs(rng, 40)
    scores, skipped = utility.regime_scores(x, y, sx, sy, tx, seeds=[0, 1], config=FAST)
    assert skipped == {} and len(scores["real+synthetic"]) == 2
    res = utility.summarise_regimes(ty, scores, skipped, n_boot=100)
    for regime in utility.REGIMES:
        r = res["regimes"][regime]
        assert r["available"] and r["ci_low"] <= r["value"] <= r["ci_high"]
        assert r["seeds"]["n"] == 2
    assert 0.0 <= res["paired_b_vs_a"]["p_value"] <= 1.0


def test_single_class_test_set_gives_reasons_not_nan():
    rng = np.random.default_rng(2)
    x, y = _blobs(rng, 20)
    scores, skipped = utility.regime_scores(x, y, x[y == 0], y[y == 0], x, seeds=[0], config=FAST)
    assert "synthetic" in skipped and "only one class" in skipped["synthetic"]
    res = utility.summarise_regimes(np.zeros(20, int), scores, skipped, n_boot=50)
    for regime in utility.REGIMES:
        assert res["regimes"][regime]["value"] is None and res["regimes"][regime]["reason"]
    assert res["paired_b_vs_a"]["available"] is False and res["paired_b_vs_a"]["p_value"] is None


def test_load_inputs_resizes_and_caches(tiny_dataset, tmp_path):
    ds = PreparedDataset(tiny_dataset)
    arr = utility.load_inputs(ds, (16, 10), cache_dir=tmp_path / "cache")
    assert arr.shape == (12, 16, 10) and arr.dtype == np.float32 and 0 <= arr.min() and arr.max() <= 1
    cached = list((tmp_path / "cache").rglob("*.npz"))
    assert len(cached) == 1
    np.savez(cached[0], x=arr + 1)  # a cache hit returns the stored array
    assert utility.load_inputs(ds, (16, 10), cache_dir=tmp_path / "cache").min() >= 1
    assert utility.load_inputs(ds, (16, 10), cache_dir=tmp_path / "cache", use_cache=False).max() <= 1
