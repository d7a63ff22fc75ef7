"""GLCM texture statistics."""
from __future__ import annotations

import numpy as np
import pytest

from mammosynth.metrics.texture import GLCM_PROPS, glcm_features, texture_distance, texture_summary


def _prop(values, name, d=0):
    return values[d, GLCM_PROPS.index(name)]


def test_constant_region_has_no_contrast():
    img = np.zeros((40, 40))
    img[5:35, 5:30] = 0.5
    f = glcm_features(img, img > 0.04)  # background pairs are dropped
    assert _prop(f, "contrast") == 0.0
    assert _prop(f, "homogeneity") == pytest.approx(1.0)
    assert _prop(f, "energy") == pytest.approx(1.0)


def test_checkerboard_has_more_contrast_than_gradient():
    yy, xx = np.mgrid[0:40, 0:40]
    checker = np.where((yy + xx) % 2 == 0, 0.2, 0.8)
    gradient = 0.2 + 0.6 * xx / 39
    fc, fg = glcm_features(checker), glcm_features(gradient)
    assert _prop(fc, "contrast") > 100 * _prop(fg, "contrast")
    assert _prop(fg, "correlation") > 0.9


def test_summary_and_distance():
    rng = np.random.default_rng(0)
    a = rng.normal([5, 0.5, 0.2, 0.3], [1, 0.05, 0.02, 0.05], size=(30, 4))
    b = a + np.array([2, 0, 0, 0])
    s = texture_summary(a)
    assert set(s) == {"contrast", "homogeneity", "energy", "correlation"}
    assert s["contrast"]["mean"] == pytest.approx(a[:, 0].mean())
    assert texture_distance(a, a) == 0.0
    assert texture_distance(a, b) == pytest.approx(2 / a[:, 0].std(ddof=1) / 4, rel=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="NaN"):
        glcm_features(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="N>=2"):
        texture_distance(np.zeros((1, 4)), np.zeros((5, 4)))
