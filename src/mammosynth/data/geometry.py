"""The recorded geometry of preprocessing, replayed: boxes, masks and arrays follow the image.

:func:`mammosynth.data.preprocess.preprocess` records every geometric step as a dict in a
transform list (``flip``, ``crop``, ``resize``, ``pad``; MONAI-style metadata that travels
with the image). The functions here replay that list forwards (:func:`map_box`,
:func:`map_mask`, :func:`apply_transforms`, :func:`scaled_spacing`) or backwards
(:func:`unmap_box`, :func:`source_coordinates`). Box coordinates are continuous pixel edges
(x1/y1 exclusive), so a flip maps ``x`` to ``W - x`` and a resize scales edges.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

Box = tuple[float, float, float, float]
Transform = dict[str, Any]


def map_box(box: Sequence[float], transforms: Sequence[Transform]) -> Box | None:
    """Map a box ``(x0, y0, x1, y1)`` through recorded transforms; None if cropped away."""
    x0, y0, x1, y1 = (float(v) for v in box)
    for t in transforms:
        op = t["op"]
        if op == "flip":
            w = float(t["width"])
            x0, x1 = w - x1, w - x0
        elif op == "crop":
            cx0, cy0, cx1, cy1 = (float(v) for v in t["box"])
            x0, x1 = np.clip([x0 - cx0, x1 - cx0], 0, cx1 - cx0)
            y0, y1 = np.clip([y0 - cy0, y1 - cy0], 0, cy1 - cy0)
            if x1 <= x0 or y1 <= y0:
                return None
        elif op == "resize":
            (fh, fw), (th, tw) = t["from"], t["to"]
            sx, sy = tw / fw, th / fh
            x0, x1, y0, y1 = x0 * sx, x1 * sx, y0 * sy, y1 * sy
        elif op == "pad":
            top, left = t["offset"]
            x0, x1, y0, y1 = x0 + left, x1 + left, y0 + top, y1 + top
        else:
            raise ValueError(f"unknown transform {op!r}")
    return (float(x0), float(y0), float(x1), float(y1))


def unmap_box(box: Sequence[float], transforms: Sequence[Transform]) -> Box:
    """Inverse of :func:`map_box`: a box in the output image back to source pixels."""
    x0, y0, x1, y1 = (float(v) for v in box)
    for t in reversed(transforms):
        op = t["op"]
        if op == "flip":
            w = float(t["width"])
            x0, x1 = w - x1, w - x0
        elif op == "crop":
            cx0, cy0 = float(t["box"][0]), float(t["box"][1])
            x0, x1, y0, y1 = x0 + cx0, x1 + cx0, y0 + cy0, y1 + cy0
        elif op == "resize":
            (fh, fw), (th, tw) = t["from"], t["to"]
            sx, sy = tw / fw, th / fh
            x0, x1, y0, y1 = x0 / sx, x1 / sx, y0 / sy, y1 / sy
        elif op == "pad":
            top, left = t["offset"]
            x0, x1, y0, y1 = x0 - left, x1 - left, y0 - top, y1 - top
        else:
            raise ValueError(f"unknown transform {op!r}")
    return (x0, y0, x1, y1)


def _resize_float(arr: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Antialiased resize of a float32 array to ``(h, w)`` (PIL triangle filter)."""
    from PIL import Image

    h, w = hw
    if arr.shape == (h, w):
        return arr.astype(np.float32, copy=False)
    im = Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32), mode="F")
    return np.asarray(im.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)


def apply_transforms(arr: np.ndarray, transforms: Sequence[Transform]) -> np.ndarray:
    """Replay transforms on an array (float32 result; padding is 0)."""
    out = np.asarray(arr)  # flips and crops are views; convert to float only when needed
    for t in transforms:
        op = t["op"]
        if op == "flip":
            out = out[:, ::-1]
        elif op == "crop":
            x0, y0, x1, y1 = (int(v) for v in t["box"])
            out = out[y0:y1, x0:x1]
        elif op == "resize":
            out = _resize_float(out, tuple(t["to"]))
        elif op == "pad":
            top, left = t["offset"]
            h, w = t["size"]
            canvas = np.zeros((h, w), np.float32)
            canvas[top:top + out.shape[0], left:left + out.shape[1]] = out
            out = canvas
        else:
            raise ValueError(f"unknown transform {op!r}")
    return np.ascontiguousarray(out, dtype=np.float32)


def map_mask(mask: np.ndarray, transforms: Sequence[Transform]) -> np.ndarray:
    """Map a boolean lesion mask through the transforms (pixels >= 50 % covered; a lesion
    smaller than one output pixel keeps its most-covered pixels rather than vanishing)."""
    m = np.asarray(mask).astype(bool)
    frac = apply_transforms(m.astype(np.float32), transforms)
    out = frac >= 0.5
    if not out.any() and m.any():  # lesion smaller than an output pixel: keep its best pixels
        out = frac >= 0.5 * float(frac.max())
    return out


def source_coordinates(transforms: Sequence[Transform], out_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Source-image coordinates of the output pixel centres, per row and per column
    (NaN where the output is padding). The transforms are axis-aligned, so separable."""
    ys = np.arange(out_shape[0], dtype=np.float64) + 0.5
    xs = np.arange(out_shape[1], dtype=np.float64) + 0.5
    for t in reversed(transforms):
        op = t["op"]
        if op == "pad":
            top, left = t["offset"]
            ys, xs = ys - top, xs - left
        elif op == "resize":
            (fh, fw), (th, tw) = t["from"], t["to"]
            ys = np.where((ys >= 0) & (ys <= th), ys * fh / th, np.nan)
            xs = np.where((xs >= 0) & (xs <= tw), xs * fw / tw, np.nan)
        elif op == "crop":
            x0, y0, x1, y1 = (float(v) for v in t["box"])
            ys = np.where((ys >= 0) & (ys <= y1 - y0), ys + y0, np.nan)
            xs = np.where((xs >= 0) & (xs <= x1 - x0), xs + x0, np.nan)
        elif op == "flip":
            xs = float(t["width"]) - xs
        else:
            raise ValueError(f"unknown transform {op!r}")
    return ys, xs


def scaled_spacing(spacing_mm: Sequence[float] | None, transforms: Sequence[Transform]) -> tuple[float, float] | None:
    """Pixel spacing (row, col) in mm after the recorded resizes."""
    if spacing_mm is None:
        return None
    sy, sx = float(spacing_mm[0]), float(spacing_mm[1])
    for t in transforms:
        if t["op"] == "resize":
            (fh, fw), (th, tw) = t["from"], t["to"]
            sy, sx = sy * fh / th, sx * fw / tw
    return (round(sy, 6), round(sx, 6))
