"""Scoring marks against the truth: the hit rule.

Marks are in stored-image pixels: a point ``{"image": i, "x": .., "y": .., "rating": r}``
or a box ``{"image": i, "x0", "y0", "x1", "y1", "rating"}``.

Hit rule (documented in the README):

* a point hits a lesion when it lies inside the lesion's box grown on every side by an
  acceptance margin of ``max(5 px, 2.5 % of the image's shorter side)``;
* a box hits a lesion when its IoU with the lesion box is >= 0.1 or its centre lies
  inside the grown lesion box;
* a mark that hits several lesions is assigned to the one whose centre is nearest;
* only marks on the same image as the lesion count; further marks on an already hit
  lesion are ignored by the figure of merit (its highest rating counts).
"""
from __future__ import annotations

import math

MARGIN_FRACTION = 0.025
MARGIN_MIN_PX = 5.0
MIN_IOU = 0.1


def _centre(m: dict) -> tuple[float, float]:
    if "x0" in m:
        return (m["x0"] + m["x1"]) / 2, (m["y0"] + m["y1"]) / 2
    return m["x"], m["y"]


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def hits(mark: dict, box, short_side: float) -> bool:
    margin = max(MARGIN_MIN_PX, MARGIN_FRACTION * short_side)
    cx, cy = _centre(mark)
    grown = (box[0] - margin, box[1] - margin, box[2] + margin, box[3] + margin)
    if grown[0] <= cx <= grown[2] and grown[1] <= cy <= grown[3]:
        return True
    if "x0" in mark:
        return _iou((mark["x0"], mark["y0"], mark["x1"], mark["y1"]), box) >= MIN_IOU
    return False


def assign(marks: list[dict], lesions: list[dict], short_sides: list[float]) -> list[int | None]:
    """For each mark, the index (into ``lesions``) of the lesion it hits, or None."""
    out: list[int | None] = []
    for m in marks:
        best, best_d = None, math.inf
        cx, cy = _centre(m)
        for li, les in enumerate(lesions):
            if les["image"] != m.get("image", 0):
                continue
            b = les["box"]
            if hits(m, b, short_sides[les["image"]]):
                d = math.hypot(cx - (b[0] + b[2]) / 2, cy - (b[1] + b[3]) / 2)
                if d < best_d:
                    best, best_d = li, d
        out.append(best)
    return out


def training_score(marks: list[dict], lesions: list[dict], short_sides: list[float]) -> float:
    """Per-case training score in [0, 1]: lesions found minus half a point per false
    mark, over the number of lesions; a normal case scores 1 without marks, else 0."""
    hit = assign(marks, lesions, short_sides)
    false = sum(h is None for h in hit)
    if not lesions:
        return 1.0 if not marks else 0.0
    found = len({h for h in hit if h is not None})
    return max(0.0, min(1.0, (found - 0.5 * false) / len(lesions)))


def validate_marks(raw, n_images: int, dims: list[tuple[int, int]], scale: list[float], rating_max: float) -> list[dict]:
    """Check client marks (served pixels) and convert them to stored-image pixels."""
    if not isinstance(raw, list) or len(raw) > 50:
        raise ValueError("marks must be a list of at most 50 marks")
    out = []
    for m in raw:
        if not isinstance(m, dict):
            raise ValueError("each mark must be an object")
        img = m.get("image", 0)
        if not isinstance(img, int) or not 0 <= img < n_images:
            raise ValueError("mark image index out of range")
        rating = m.get("rating")
        if not isinstance(rating, (int, float)) or not 0 <= rating <= rating_max:
            raise ValueError(f"mark rating must be a number in [0, {rating_max:g}]")
        h, w = dims[img]
        s = scale[img]
        keys = ("x0", "y0", "x1", "y1") if "x0" in m else ("x", "y")
        vals = [m.get(k) for k in keys]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals):
            raise ValueError("mark coordinates must be numbers")
        vals = [float(v) * s for v in vals]
        xs, ys = vals[0::2], vals[1::2]
        if not all(0 <= x <= w for x in xs) or not all(0 <= y <= h for y in ys):
            raise ValueError("mark outside the image")
        mark = {"image": img, "rating": float(rating), **dict(zip(keys, vals))}
        if "x0" in mark:
            mark["x0"], mark["x1"] = sorted((mark["x0"], mark["x1"]))
            mark["y0"], mark["y1"] = sorted((mark["y0"], mark["y1"]))
        out.append(mark)
    return out
