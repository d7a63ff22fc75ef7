"""Classifier two-sample test: separation, the floor, balancing, groups, determinism."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from mammosynth.metrics.detectability import (DetectabilityConfig, DetectabilityResult, _folds, _prepare, detectability,
                                              detectability_floor, detectability_test, split_halves)
from mammosynth.metrics.detectability_nets import CropCentres, score_grid

TINY = DetectabilityConfig(folds=3, steps=40, whole_steps=20, batch_size=16, lr=5e-3, channels=(8, 16), stem=4,
                           n_boot=200, threads=1)
#: a few steps only, for tests about bookkeeping rather than separation
FEW = DetectabilityConfig(folds=2, steps=3, whole_steps=2, batch_size=8, channels=(4,), stem=0, n_boot=50, threads=1)


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


def test_whole_image_view_catches_a_layout_difference():
    # same texture, but the bright half on the left in one set and on the right in the other:
    # crops of 16 px mostly see one half or the other, the whole-image view sees the layout
    a, b = noise(18, 8), noise(18, 9)
    a[:, :, :16] += 0.3
    b[:, :, 16:] += 0.3
    res = detectability(np.clip(a, 0, 1), np.clip(b, 0, 1), config=TINY)
    assert res.auc > 0.8   # 0.85 measured (seed 0, one thread)
    assert res.pos_views.shape == (18, 2) and np.any(res.pos_views[:, 1] != 0)
    # the per-view AUCs say which view gives the sets away: the layout one here
    views = res.to_dict()["views"]
    assert views["layout"] > 0.9 and views["layout"] > views["texture"]


def test_texture_view_names_a_texture_difference():
    views = detectability(noise(20, 0), noise(20, 1, smooth=2.0), config=TINY).view_aucs()
    assert views["texture"] > 0.9
    off = detectability(noise(12, 0), noise(12, 1, smooth=2.0), config=dataclasses.replace(FEW, whole_side=0))
    assert off.view_aucs()["layout"] is None


def test_deterministic_under_a_seed():
    a, b = noise(12, 4), noise(12, 5, smooth=1.0)
    cfg = dataclasses.replace(FEW, steps=5, channels=(4, 8), stem=4)
    r1, r2 = detectability(a, b, config=cfg), detectability(a, b, config=cfg)
    assert r1.auc == r2.auc and np.array_equal(r1.pos_scores, r2.pos_scores)
    assert np.array_equal(r1.neg_views, r2.neg_views)
    r3 = detectability(a, b, config=dataclasses.replace(cfg, seed=1))
    assert not np.array_equal(r1.pos_scores, r3.pos_scores)


def test_threads_none_keeps_the_callers_thread_count(monkeypatch):
    """``evaluate --threads 1`` must hold inside the test: with ``threads=None`` it used to
    take every core, and beside another job its OpenMP threads waited on each other."""
    import torch

    before = torch.get_num_threads()
    real_set = torch.set_num_threads
    seen: list[int] = []

    def record(n: int) -> None:
        seen.append(n)
        real_set(n)

    def train_step_threads(*args, **kwargs):
        seen.append(-torch.get_num_threads())  # the count the networks train with (negated)
        return original(*args, **kwargs)

    import mammosynth.metrics.detectability_nets as nets

    original = nets.fit
    monkeypatch.setattr(nets, "fit", train_step_threads)
    monkeypatch.setattr(torch, "set_num_threads", record)
    try:
        real_set(1)
        detectability(noise(8, 0), noise(8, 1), config=dataclasses.replace(FEW, threads=None))
        assert seen and all(n in (1, -1) for n in seen)
        seen.clear()
        detectability(noise(8, 0), noise(8, 1), config=dataclasses.replace(FEW, threads=2))
        assert -2 in seen and torch.get_num_threads() == 1  # 2 inside, the caller's 1 restored
    finally:
        real_set(before)


def test_all_images_used_unless_capped_or_subsampled():
    pos, neg = noise(30, 6), noise(12, 7)
    res = detectability(pos, neg, config=FEW)
    assert (res.n_pos, res.n_neg, res.n_pos_given, res.n_neg_given) == (30, 12, 30, 12)
    assert len(res.pos_scores) == 30 and np.isfinite(res.pos_scores).all()
    capped = detectability(pos, neg, config=dataclasses.replace(FEW, max_per_side=20))
    assert (capped.n_pos, capped.n_neg) == (20, 12) and len(np.unique(capped.pos_index)) == 20
    sub = detectability(pos, neg, config=dataclasses.replace(FEW, balance="subsample"))
    assert (sub.n_pos, sub.n_neg) == (12, 12)


def test_balanced_batches_separate_an_imbalanced_pair():
    # 6 smooth vs 30 white-noise images: balanced batches still learn the minority side
    res = detectability(noise(6, 10, smooth=2.0), noise(30, 11), config=TINY)
    assert res.auc > 0.9 and res.n_pos == 6 and res.n_neg == 30


def test_crop_size_rule():
    cfg = DetectabilityConfig()
    assert cfg.crop_for((5, 128, 128)) == (64, 64)
    assert cfg.crop_for((5, 1024, 640)) == (64, 64)
    assert cfg.crop_for((5, 48, 64)) == (16, 16)   # 24 -> 16
    assert cfg.crop_for((5, 24, 30)) == (24, 30)   # 12 -> 8 < 16: the whole image
    assert DetectabilityConfig(crop=32).crop_for((1, 20, 64)) == (20, 32)


def test_crop_centres_and_scoring_grid_stay_in_the_breast():
    m = np.zeros((3, 64, 64), bool)
    m[0, 10:50, :20] = True
    m[1, 30:34, 40:44] = True   # smaller than a grid cell: no node inside -> its centroid
    centres = CropCentres(m)
    rng = np.random.default_rng(0)
    for i in range(3):
        idx = np.full(500, i)
        y, x = centres.draw(idx, rng.random(500))
        assert m[i, y, x].all() if m[i].any() else len(np.unique(y * 64 + x)) > 100  # empty: anywhere
    grid = score_grid(m, (32, 32), 16)
    assert 1 < len(grid[0][0]) <= 16 and m[0][grid[0]].all()
    assert len(grid[1][0]) == 1 and m[1][grid[1]].all()
    assert (grid[2][0][0], grid[2][1][0]) == (32, 32)
    assert all(np.array_equal(a, b) for g, h in zip(grid, score_grid(m, (32, 32), 16)) for a, b in zip(g, h))


def test_balancing_strata_and_floor():
    pos, neg = noise(30, 6), noise(12, 7)
    pos_strata = np.array(["A", "B"] * 15)
    neg_strata = np.array(["A"] * 6 + ["B"] * 3 + ["C"] * 3)
    res = detectability(pos, neg, pos_strata, neg_strata, FEW)
    assert set(res.strata) <= {"A"}  # B has 3 negatives, C no positives
    real_groups = np.repeat([f"p{i}" for i in range(6)], 2)
    masks = np.ones(neg.shape, bool)
    t = detectability_test(neg, pos, neg_strata, pos_strata, FEW, real_groups=real_groups, real_masks=masks,
                           syn_masks=np.ones(pos.shape, bool))
    assert t.floor.n_pos + t.floor.n_neg == 12 and t.synthetic.n_pos == 30
    assert t.margin == pytest.approx(t.synthetic.auc - max(t.floor.auc, 0.5))
    assert t.to_dict()["verdict"] in ("pass", "warn", "fail")


def test_floor_is_the_mean_over_several_random_halvings():
    real, groups = noise(16, 11), np.repeat([f"p{i}" for i in range(8)], 2)
    cfg = dataclasses.replace(FEW, floor_splits=3, seed=5)
    floor = detectability_floor(real, None, cfg, real_groups=groups)
    # each halving is the single-split test with its own seed (split, folds and networks)
    runs, halves = [], set()
    for k in range(3):
        a, b = split_halves(16, groups, 5 + k)
        halves.add(tuple(a))
        runs.append(detectability(real[a], real[b], config=dataclasses.replace(cfg, seed=5 + k),
                                  pos_groups=groups[a], neg_groups=groups[b]))
    assert floor.split_aucs == pytest.approx([r.auc for r in runs])
    assert floor.auc == pytest.approx(np.mean([r.auc for r in runs]))
    assert floor.ci_low == pytest.approx(np.mean([r.ci_low for r in runs]))
    assert floor.ci_high == pytest.approx(np.mean([r.ci_high for r in runs]))
    assert floor.view_aucs()["texture"] == pytest.approx(np.mean([r.view_aucs()["texture"] for r in runs]))
    assert len(halves) > 1  # the halvings differ
    # what the cache stores gives the same result back; the report and the reason name the splits
    back = DetectabilityResult.from_arrays(floor.to_arrays())
    assert back.split_aucs == floor.split_aucs and back.view_aucs() == floor.view_aucs()
    assert floor.to_dict()["splits"] == pytest.approx([r.auc for r in runs])
    t = detectability_test(real, noise(10, 12), config=cfg, real_groups=groups, floor=floor)
    assert "mean of 3 halvings" in t.reason()
    one = detectability_floor(real, None, dataclasses.replace(cfg, floor_splits=1), real_groups=groups)
    assert one.split_aucs == () and one.auc == pytest.approx(runs[0].auc)
    with pytest.raises(ValueError, match="floor_splits"):
        DetectabilityConfig(floor_splits=0)


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
    with pytest.raises(ValueError, match="crop"):
        DetectabilityConfig(crop=2)
    with pytest.raises(ValueError, match="positive masks"):
        detectability(noise(6, 0), noise(6, 1), config=FEW, pos_masks=np.ones((6, 8, 8), bool))
    with pytest.raises(ValueError, match="differ in size"):
        detectability(noise(6, 0), noise(6, 1, size=16), config=TINY)
    with pytest.raises(ValueError, match="at least 3 images"):
        detectability(noise(2, 0), noise(6, 1), config=TINY)
