"""The perturbations of ``benchmarks/detectability_calibration.py``: each changes what it names, and only that."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import detectability_calibration as cal  # noqa: E402


@pytest.fixture
def films():
    """Two 40x40 'films': a disc of random tissue on a zero background."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:40, :40]
    mask = (yy - 20) ** 2 + (xx - 20) ** 2 < 15 ** 2
    masks = np.stack([mask, mask])
    images = (0.3 + 0.4 * rng.random((2, 40, 40))).astype(np.float32) * masks
    return images, masks


def depth(masks):
    from scipy import ndimage

    return np.stack([ndimage.distance_transform_edt(m) for m in masks])


def test_none_keeps_the_films_and_every_perturbation_keeps_the_background(films):
    images, masks = films
    assert np.array_equal(cal.perturb(images, masks, "none"), (images * 65535).round().astype(np.uint16))
    for spec in ("blur:1", "noise:0.01", "edgeblur:1:4", "innerblur:1:4"):
        out = cal.perturb(images, masks, spec)
        assert out.dtype == np.uint16 and not out[~masks].any(), spec


@pytest.mark.parametrize("kind", ["edgeblur", "innerblur"])
def test_band_blur_changes_only_its_band(films, kind):
    images, masks = films
    same = (images * 65535).round().astype(np.uint16)
    out = cal.perturb(images, masks, f"{kind}:1:4")
    changed = out != same
    near = masks & (depth(masks) < 4)
    inside, outside = (near, masks & ~near) if kind == "edgeblur" else (masks & ~near, near)
    assert changed[inside].mean() > 0.9  # random tissue: a blur moves almost every pixel
    assert not changed[outside].any()
    # the band's pixels are those of the whole-image blur
    assert np.array_equal(out[inside], cal.perturb(images, masks, "blur:1")[inside])


@pytest.mark.parametrize("spec", ["edgeblur:1", "sharpen:1", "blur"])
def test_a_bad_spec_is_refused_by_name(films, spec):
    images, masks = films
    with pytest.raises(ValueError, match="perturbation"):
        cal.perturb(images, masks, spec)
