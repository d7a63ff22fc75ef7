"""Label mixes for generation: parse, validate against a model, and draw labels per image.

A *mix* maps a label axis to class proportions, e.g. ``{"density": {"A": 0.25, ...}}``.
On the command line it is written ``--mix density=A:0.25,B:0.25,C:0.25,D:0.25``.

Axes
----
* Conditioning axes (``density``, ``finding``, ``view``; see
  :data:`mammosynth.data.schema.CONDITION_AXES`): a mix is only accepted for an axis the
  model was conditioned on, and only with classes the model knows. Conditioned axes
  without a mix follow the training label frequencies (``label_freq``), or a uniform mix
  when those are unknown.
* ``laterality`` (``L``/``R``) is metadata only: generated images are in the normalised
  orientation (chest wall left) whatever the label. Without a mix every image is ``R``
  (the breast whose radiological display already has the chest wall on the left).

Label scheme (``kronecker-v1``)
-------------------------------
Image ``i``'s labels depend only on ``(seed, i)``: axis ``k`` takes the uniform
``u = frac(offset_k(seed) + (i + 1) * alpha_k)`` (a Kronecker low-discrepancy sequence,
one irrational ``alpha_k`` per axis, offsets hashed from the seed) and maps it to a class
by the inverse CDF of the axis's proportions (classes in the model's order). Any prefix
of ``N`` images therefore holds each class within about three images of ``N * p`` (far
closer than independent draws), the axes are jointly balanced, and generating more
images later extends a set without changing the labels already drawn.
"""
from __future__ import annotations

import hashlib
import math
from typing import Any, Mapping

from ..data.schema import CONDITION_AXES, LATERALITIES, parse_proportions

LABEL_SCHEME = "kronecker-v1"
#: Axes that are labels only (not model conditions), with their classes and default mix.
METADATA_AXES: dict[str, tuple[str, ...]] = {"laterality": LATERALITIES}
DEFAULT_METADATA_MIX: dict[str, dict[str, float]] = {"laterality": {"R": 1.0}}
#: Fixed order of all axes in the low-discrepancy sequence (never reorder: it is the scheme).
_AXIS_ORDER = ("density", "finding", "view", "laterality")

Mix = dict[str, dict[str, float]]


#: One badly approximable irrational per axis (quadratic irrationals of distinct fields,
#: so the axes are jointly equidistributed): golden ratio, sqrt 2, sqrt 3, sqrt 13.
_ALPHAS = ((math.sqrt(5.0) - 1.0) / 2.0, math.sqrt(2.0) - 1.0, math.sqrt(3.0) - 1.0,
           (math.sqrt(13.0) - 3.0) / 2.0)


def _seed_offset(seed: int, axis: str) -> float:
    digest = hashlib.sha256(f"mammosynth-labels\x00{int(seed)}\x00{axis}".encode()).digest()
    return int.from_bytes(digest[:7], "little") / float(1 << 56)


def uniform_for(seed: int, index: int, axis: str) -> float:
    """The uniform in [0, 1) that picks image ``index``'s class on ``axis`` (:data:`LABEL_SCHEME`)."""
    if axis not in _AXIS_ORDER:
        raise ValueError(f"unknown label axis {axis!r}; expected one of {_AXIS_ORDER}")
    if index < 0:
        raise ValueError(f"image index must be >= 0, got {index}")
    alpha = _ALPHAS[_AXIS_ORDER.index(axis)]
    return math.fmod(_seed_offset(seed, axis) + (index + 1) * alpha, 1.0)


def pick(proportions: Mapping[str, float], u: float) -> str:
    """Inverse CDF: the class whose cumulative interval holds ``u`` (dict order)."""
    acc = 0.0
    last = None
    for cls, p in proportions.items():
        if p <= 0:
            continue
        acc += p
        last = cls
        if u < acc:
            return cls
    if last is None:
        raise ValueError(f"proportions {dict(proportions)} have no positive entry")
    return last  # u within rounding of 1.0


def parse_mix_spec(spec: str) -> tuple[str, str]:
    """Split one ``AXIS=CLASS:P,...`` command-line value into (axis, proportions text)."""
    axis, sep, text = str(spec).partition("=")
    axis = axis.strip()
    if not sep or not axis or not text.strip():
        raise ValueError(f"--mix: expected AXIS=CLASS:P,CLASS:P (e.g. density=A:0.5,B:0.5), got {spec!r}")
    return axis, text


def mix_from_specs(specs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["density=A:0.5,B:0.5", ...]`` -> ``{"density": "A:0.5,B:0.5"}`` (an axis at most once)."""
    out: dict[str, str] = {}
    for spec in specs:
        axis, text = parse_mix_spec(spec)
        if axis in out:
            raise ValueError(f"--mix: axis {axis!r} given twice")
        out[axis] = text
    return out


def _normalise_freq(freq: Mapping[str, float] | None, classes: tuple[str, ...]) -> dict[str, float]:
    """Training frequencies restricted to ``classes`` and normalised; uniform when unknown."""
    vals = {c: float((freq or {}).get(c, 0.0)) for c in classes}
    total = sum(v for v in vals.values() if v > 0)
    if total <= 0:
        return {c: 1.0 / len(classes) for c in classes}
    return {c: max(v, 0.0) / total for c, v in vals.items()}


def resolve_mix(
    mix: Mapping[str, str | Mapping[str, float]] | None,
    label_axes: Mapping[str, tuple[str, ...]],
    label_freq: Mapping[str, Mapping[str, float]] | None = None,
) -> Mix:
    """Validate ``mix`` against the model and fill in every axis.

    ``mix`` values are ``"A:0.3,B:0.7"`` strings or ``{class: p}`` dicts. Returns
    proportions for every conditioned axis (in the model's class order) plus
    ``laterality``. Raises ValueError for an axis the model was not conditioned on, an
    unknown class, or proportions that are negative or do not sum to 1.
    """
    out: Mix = {}
    mix = dict(mix or {})
    known = tuple(label_axes) + tuple(METADATA_AXES)
    for axis, value in mix.items():
        if axis in label_axes:
            classes = tuple(label_axes[axis])
        elif axis in METADATA_AXES:
            classes = METADATA_AXES[axis]
        elif axis in CONDITION_AXES:
            raise ValueError(
                f"mix on {axis!r}: the model was not conditioned on {axis!r} "
                f"(its condition axes: {tuple(label_axes) or 'none'})"
            )
        else:
            raise ValueError(f"mix: unknown axis {axis!r}; expected one of {known}")
        if isinstance(value, str):
            props = parse_proportions(value, classes, f"mix {axis}")
        else:
            text = ",".join(f"{k}:{float(v)!r}" for k, v in dict(value).items())
            props = parse_proportions(text, classes, f"mix {axis}")
        out[axis] = {c: props.get(c, 0.0) for c in classes}
    for axis, classes in label_axes.items():
        if axis not in out:
            out[axis] = _normalise_freq((label_freq or {}).get(axis), tuple(classes))
    for axis, default in DEFAULT_METADATA_MIX.items():
        out.setdefault(axis, dict(default))
    return {axis: out[axis] for axis in _AXIS_ORDER if axis in out}


def labels_for(seed: int, index: int, mix: Mix) -> dict[str, str]:
    """Labels of image ``index`` under a resolved mix (depends only on seed, index, mix)."""
    return {axis: pick(props, uniform_for(seed, index, axis)) for axis, props in mix.items()}


def describe(mix: Mix) -> dict[str, Any]:
    """JSON-friendly description of a resolved mix (for dataset.json settings)."""
    return {"scheme": LABEL_SCHEME, "proportions": {a: dict(p) for a, p in mix.items()}}
