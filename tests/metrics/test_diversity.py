"""SSIM / MS-SSIM and the mode-collapse rule."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from mammosynth.metrics.diversity import (diversity_report, intra_set_ms_ssim, ms_ssim, ms_ssim_scales, random_pairs,
                                          ssim)


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    a = rng.random((64, 48))
    return a, np.clip(a + 0.2 * rng.standard_normal(a.shape), 0, 1)


def test_identical_images_score_one(pair):
    a, _ = pair
    assert ssim(a, a)[0] == pytest.approx(1.0, abs=1e-6)
    assert ms_ssim(a, a)[0] == pytest.approx(1.0, abs=1e-6)


def test_ssim_matches_skimage_gaussian(pair):
    a, b = pair
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    assert ssim(a, b)[0] == pytest.approx(ref, abs=1e-5)


def test_noise_lowers_ms_ssim(pair):
    a, b = pair
    more = np.clip(a + 0.5 * np.random.default_rng(1).standard_normal(a.shape), 0, 1)
    assert 0 < ms_ssim(a, more)[0] < ms_ssim(a, b)[0] < 1


def test_scales_for_small_images():
    assert ms_ssim_scales((256, 256)) == 5
    assert ms_ssim_scales((256, 160)) == 4  # 160 / 16 = 10 < 11-pixel window
    assert ms_ssim_scales((64, 40)) == 2
    with pytest.raises(ValueError, match="at least 11x11"):
        ms_ssim(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        ms_ssim(np.full((16, 16), np.nan), np.zeros((16, 16)))


def test_random_pairs():
    p = random_pairs(30, 50, seed=1)
    assert p.shape == (50, 2) and (p[:, 0] < p[:, 1]).all()
    assert len({tuple(x) for x in p}) == 50
    assert (p == random_pairs(30, 50, seed=1)).all()
    assert len(random_pairs(4, 100, seed=0)) == 6  # every pair once
    with pytest.raises(ValueError, match="at least 2"):
        random_pairs(1, 5, seed=0)


def test_repeated_image_triggers_mode_collapse(breast_images):
    imgs = breast_images(10, size=(64, 40), seed=0)
    ms_real, pairs, scales = intra_set_ms_ssim(lambda i: imgs[i], len(imgs), n_pairs=20, seed=0)
    ms_rep, _, _ = intra_set_ms_ssim(lambda i: imgs[0], len(imgs), n_pairs=20, seed=0)
    assert ms_rep == pytest.approx(1.0, abs=1e-6)
    assert ms_real < 0.8 and pairs == 20 and scales == 2
    rep = diversity_report(ms_real, ms_rep, pairs, scales)
    assert rep["mode_collapse"] is True and "mode collapse" in rep["message"] and "2 of 5" in rep["message"]
    ok = diversity_report(ms_real, ms_real + 0.05, pairs, 5)
    assert ok["mode_collapse"] is False and "scales" not in ok["message"]
