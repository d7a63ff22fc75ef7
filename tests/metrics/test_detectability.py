"""Classifier two-sample test: separation, the floor, balancing, groups, determinism."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from mammosynth.metrics.detectability import (DetectabilityConfig, _folds, _prepare, detectability,
                                              detectability_test, split_halves)

TINY = DetectabilityConfig(folds=3, epochs=4, min_steps=30, batch_size=16, lr=5e-3, channels=(8, 16), n_boot=200,
                           threads=1)


def noise(n: int, seed: int, smooth: float = 0.0, size: int = 32) -> np.ndarray:
    """Textures around 0.5: white noise, or the same smoothed (equal mean, lower variance)."""
    x = np.random.default_rng(seed).normal(0.5, 0.15, (n, size, size))
    if smooth:
        x = np.stack([gaussian_filter(i, smooth) for i in x])
        x = 0.5 + (x - 0.5) * 0.15 / x.std()
    return np.clip(x, 0, 1).astype(np.float32)


def test_separates_white_noise_from_smooth_texture():
    res = detectability(noise(20, 0), noise(20, 1, smooth=2.0), config=TINY)
    assert res.auc > 0.9
    assert res.ci_low <= res.auc <= res.ci_high
    assert res.n_pos == res.n_neg == 20 and len(res.pos_scores) == 20
    json.dumps(res.to_dict(), allow_nan=False)


def test_two_samples_of_one_distribution_are_not_separated():
    res = detectability(noise(20, 2), noise(20, 3), config=TINY)
    assert res.auc < 0.75


def test_deterministic_under_a_seed():
    a, b = noise(12, 4), noise(12, 5, smooth=1.0)
    cfg = DetectabilityConfig(folds=2, epochs=1, min_steps=5, batch_size=8, channels=(4, 8), n_boot=50, threads=1)
    r1, r2 = detectability(a, b, config=cfg), detectability(a, b, config=cfg)
    assert r1.auc == r2.auc and np.array_equal(r1.pos_scores, r2.pos_scores)
    r3 = detectability(a, b, config=DetectabilityConfig(**{**cfg.__dict__, "seed": 1}))
    assert not np.array_equal(r1.pos_scores, r3.pos_scores)


def test_balancing_strata_and_floor():
    cfg = DetectabilityConfig(folds=2, epochs=1, min_steps=3, batch_size=8, channels=(4,), n_boot=50, threads=1)
    pos, neg = noise(30, 6), noise(12, 7)
    pos_strata = np.array(["A", "B"] * 15)
    neg_strata = np.array(["A"] * 6 + ["B"] * 3 + ["C"] * 3)
    res = detectability(pos, neg, pos_strata, neg_strata, cfg)
    assert (res.n_pos, res.n_neg, res.n_pos_given, res.n_neg_given) == (12, 12, 30, 12)
    assert len(np.unique(res.pos_index)) == 12
    assert set(res.strata) <= {"A"}  # B has 3 negatives, C no positives
    real_groups = np.repeat([f"p{i}" for i in range(6)], 2)
    t = detectability_test(neg, pos, neg_strata, pos_strata, cfg, real_groups=real_groups)
    assert t.floor.n_pos + t.floor.n_neg <= 12 and t.synthetic.n_pos == 12
    assert t.margin == pytest.approx(t.synthetic.auc - t.floor.auc)
    assert t.to_dict()["verdict"] in ("pass", "warn", "fail")


def test_folds_and_halves_keep_groups_together():
    groups = np.repeat([f"g{i}" for i in range(10)], [1, 2, 3, 1, 2, 3, 1, 2, 3, 2])
    fold = _folds(len(groups), 3, groups, np.random.default_rng(0))
    for g in np.unique(groups):
        assert len(set(fold[groups == g])) == 1
    assert np.bincount(fold).min() >= 5
    a, b = split_halves(len(groups), groups, seed=0)
    assert not set(groups[a]) & set(groups[b]) and len(a) + len(b) == len(groups)
    a2, b2 = split_halves(20, seed=0)
    assert len(a2) == len(b2) == 10 and not set(a2) & set(b2)


def test_large_inputs_are_area_downsampled():
    x = np.ones((2, 512, 320), np.float32)
    y = _prepare(x, 256)
    assert y.shape == (2, 256, 160) and np.allclose(y, 1.0)
    assert _prepare(x[:, :128, :80], 256).shape == (2, 128, 80)


def test_argument_checks():
    with pytest.raises(ValueError, match="balance"):
        DetectabilityConfig(balance="oversample")
    with pytest.raises(ValueError, match="differ in size"):
        detectability(noise(6, 0), noise(6, 1, size=16), config=TINY)
    with pytest.raises(ValueError, match="at least 3 images"):
        detectability(noise(2, 0), noise(6, 1), config=TINY)
