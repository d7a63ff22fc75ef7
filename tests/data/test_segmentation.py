"""Breast segmentation: one image and a vectorised stack give the same masks."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.filters import threshold_otsu

from mammosynth.data.preprocess import _otsu_thresholds, segment_breast, segment_breasts


def _breast(h: int = 64, w: int = 48, seed: int = 0, hole: bool = False, speck: bool = False) -> np.ndarray:
    """A half-disc on the left edge over faint noise; optionally a dark hole and a bright speck."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = rng.uniform(0.0, 0.02, (h, w)).astype(np.float32)
    disc = (yy - h / 2) ** 2 + xx ** 2 < (0.4 * h) ** 2
    img[disc] = rng.uniform(0.5, 0.9, int(disc.sum()))
    if hole:
        img[h // 2 - 2:h // 2 + 2, 8:12] = 0.0
    if speck:
        img[2:9, w - 9:w - 2] = 1.0
    return img


def test_mask_keeps_the_breast_fills_holes_and_drops_specks():
    img = _breast(hole=True, speck=True)
    m = segment_breast(img)
    h, w = img.shape
    assert m[h // 2, 2] and m[h // 2, 10]  # breast, and the hole inside it
    assert not m[5, w - 5]  # the speck is a smaller component
    assert not m[1, w - 1] and not m[h - 1, w - 1]  # background


def test_stack_equals_one_image_at_a_time_including_degenerate_images():
    imgs = [_breast(seed=s, hole=s % 2 == 0, speck=s % 3 == 0) for s in range(6)]
    imgs += [np.zeros((64, 48), np.float32), np.full((64, 48), 0.3, np.float32)]
    stack = segment_breasts(np.stack(imgs))
    assert np.array_equal(segment_breasts(np.stack(imgs), workers=3), stack)  # threads: same masks
    for img, m in zip(imgs, stack):
        assert np.array_equal(segment_breast(img), m)
    assert not stack[6].any()  # all black: nothing
    assert stack[7].all()  # constant: the 0.5 * max fallback


def test_components_do_not_connect_across_images():
    rng = np.random.default_rng(0)
    first = np.zeros((64, 48), np.float32)
    first[-30:, -20:] = rng.uniform(0.5, 0.9, (30, 20))  # large, on the bottom edge
    second = np.zeros_like(first)
    second[-14:, :12] = rng.uniform(0.5, 0.9, (14, 12))  # the second's largest component
    second[:8, -8:] = rng.uniform(0.5, 0.9, (8, 8))  # smaller, right under the first's blob
    stack = segment_breasts(np.stack([first, second]))
    assert stack[0][-1, -1] and stack[1][-1, 0] and not stack[1][2, -2]


def test_otsu_matches_skimage():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0.2, 0.05, (4, 300)), rng.normal(0.7, 0.1, (4, 200))], axis=1)
    x = x.reshape(4, 20, 25).astype(np.float32)
    valid = x > 0.1
    lo = np.where(valid, x, np.inf).reshape(4, -1).min(1)
    hi = x.reshape(4, -1).max(1)
    ours = _otsu_thresholds(x, valid, lo, hi)
    for i in range(4):
        assert ours[i] == pytest.approx(threshold_otsu(x[i][valid[i]]), rel=1e-6)


def test_rejects_a_single_image_where_a_stack_is_expected():
    with pytest.raises(ValueError, match=r"\[B, H, W\]"):
        segment_breasts(np.zeros((8, 8), np.float32))


@pytest.mark.parametrize("op", ["min", "max"])
def test_window_filter_equals_scipy_nearest_mode(op):
    from scipy import ndimage as ndi

    from mammosynth.data.preprocess import _window_filter

    rng = np.random.default_rng(1)
    for shape in [(3, 17, 11), (2, 4, 3), (1, 1, 6)]:  # includes images narrower than the window
        a = (rng.random(shape) > 0.4).astype(np.uint8)
        ours = _window_filter(a, np.minimum if op == "min" else np.maximum)
        ref = (ndi.minimum_filter if op == "min" else ndi.maximum_filter)(a, size=(1, 5, 5), mode="nearest")
        assert np.array_equal(ours, ref), shape
        assert ours is not a


def test_breast_masks_segment_large_images_at_the_ingest_working_size():
    from mammosynth.data.preprocess import PreprocessConfig, _mask_on_output, breast_masks, downsample

    small = np.stack([_breast(seed=s, hole=True, speck=True) for s in range(3)])
    assert np.array_equal(breast_masks(small), segment_breasts(small))  # <= work_size: segmented as it is
    cfg = PreprocessConfig(work_size=32)
    big = np.stack([_breast(96, 64, seed=s, hole=s == 1, speck=s == 2) for s in range(3)])
    got = breast_masks(big, cfg)
    assert got.shape == big.shape and got.dtype == bool
    for img, m in zip(big, got):  # exactly ingest's mask: downsample, segment, smooth bilinear resampling
        low, f = downsample(img, cfg.work_size)
        assert f == 3 and np.array_equal(m, _mask_on_output(segment_breast(low), f, [], img.shape))
        assert m[48, 3] and not m[48, 60]  # the breast on the left edge, not the background
    assert not np.array_equal(got, segment_breasts(big))  # a different (coarser) path than full size
    with pytest.raises(ValueError, match="stack"):
        breast_masks(big[0])


def test_row_median_skips_rows_without_values_and_warns_nothing():
    """The skin growth's background statistics: a padded image (no background pixel) gives
    NaN for its row without a warning (filters are process-wide; writer threads race them)."""
    import warnings

    from mammosynth.data.preprocess import _row_nanmedian

    a = np.array([[np.nan, np.nan, np.nan], [1.0, np.nan, 3.0], [4.0, 2.0, 9.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _row_nanmedian(a)
        padded = _breast()
        padded[padded < 0.1] = 0.0  # exact zeros around the breast: padding, no background noise
        masks = segment_breasts(np.stack([padded, _breast(seed=1)]), workers=2)
    assert np.isnan(got[0]) and got[1] == 2.0 and got[2] == 4.0
    assert masks[0][32, 2] and not masks[0][1, -1]
