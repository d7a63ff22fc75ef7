"""Shared pieces of the realism comparisons: breast-mask erosion, strata, two-sample bootstrap.

Used by :mod:`.spectrum` (texture spectrum exponent), :mod:`.detail` (high-pass energy)
and :mod:`.detectability` (classifier two-sample test), so that the three measures agree
on which pixels are "inside the breast", which images form a stratum and how a CI is
resampled.

* Erosion: a square structuring element of radius ``erode`` px, pixels outside the image
  count as background. The default radius, ``max(2, min(H, W) // 64)``, keeps the skin
  line's step (breast to ~0 background) out of texture measures at any resolution.
* Strata: one label per image (``Sequence[str]``) or several axes at once
  (``Mapping[axis, Sequence[str]]``, keys then read ``"axis:label"``). A stratum is
  compared only when both sides have at least ``min_n`` (5) images in it.
* Bootstrap: images are resampled with replacement on each side independently (the two
  sets are independent samples), percentile interval.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

MIN_STRATUM = 5

Strata = Sequence[str] | Mapping[str, Sequence[str]] | None


def default_erosion(shape: tuple[int, ...]) -> int:
    """Default mask erosion in px for images of ``shape`` (..., H, W)."""
    return max(2, min(int(shape[-2]), int(shape[-1])) // 64)


def check_stack(images: np.ndarray, masks: np.ndarray | None = None, name: str = "images"
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """``images`` as float32 [N, H, W] (finite) and ``masks`` as bool of the same shape."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"{name}: expected [N, H, W], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: contain NaN or infinity")
    if masks is None:
        return x, None
    m = np.asarray(masks).astype(bool, copy=False)
    if m.shape != x.shape:
        raise ValueError(f"{name}: masks have shape {m.shape}, images {x.shape}")
    return x, m


def patches_inside(masks: np.ndarray, patch: int, stride: int) -> np.ndarray:
    """bool [N, gy, gx]: which ``patch`` x ``patch`` windows on a ``stride`` grid (top-left
    corners ``0, stride, ...``, as ``sliding_window_view(...)[:, ::stride, ::stride]``) lie
    wholly inside ``masks`` [N, H, W] (their window sum of mask pixels is ``patch^2``)."""
    sat = np.pad(np.asarray(masks, dtype=bool).cumsum(1, dtype=np.int32).cumsum(2), ((0, 0), (1, 0), (1, 0)))
    return (sat[:, patch:, patch:] - sat[:, :-patch, patch:] - sat[:, patch:, :-patch]
            + sat[:, :-patch, :-patch])[:, ::stride, ::stride] == patch * patch


def erode_masks(masks: np.ndarray, erode: int, border_inside: bool = True) -> np.ndarray:
    """Masks [N, H, W] eroded by a (2*erode+1)^2 square; the image border counts as outside."""
    from scipy.ndimage import binary_erosion

    m = np.asarray(masks, dtype=bool)
    if erode < 0:
        raise ValueError(f"erode must be >= 0, got {erode}")
    if erode == 0 or m.size == 0:
        return m.copy()
    k = 2 * int(erode) + 1
    return binary_erosion(m, structure=np.ones((1, k, k), bool), border_value=int(border_inside))


def strata_index(real: Strata, syn: Strata, min_n: int = MIN_STRATUM) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Index arrays ``(real_idx, syn_idx)`` per stratum where both sides have >= ``min_n``.

    Both sides must be given the same way (both sequences or both mappings with the same
    axes); if either is None there are no strata.
    """
    if real is None or syn is None:
        return {}
    if isinstance(real, Mapping) != isinstance(syn, Mapping):
        raise ValueError("strata: give both sides as label sequences or both as {axis: labels}")
    axes = ({a: (real[a], syn[a]) for a in real if a in syn} if isinstance(real, Mapping)
            else {"": (real, syn)})
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for axis, (r, s) in axes.items():
        r, s = np.asarray(r, dtype=str), np.asarray(s, dtype=str)
        for label in sorted(set(r.tolist()) & set(s.tolist())):
            ri, si = np.flatnonzero(r == label), np.flatnonzero(s == label)
            if len(ri) >= min_n and len(si) >= min_n:
                out[f"{axis}:{label}" if axis else label] = (ri, si)
    return out


def strata_subset(strata: Strata, idx: np.ndarray) -> Strata:
    """The strata labels of the images ``idx`` (same form as given)."""
    if strata is None:
        return None
    if isinstance(strata, Mapping):
        return {a: np.asarray(v, dtype=str)[idx] for a, v in strata.items()}
    return np.asarray(strata, dtype=str)[idx]


def check_strata(strata: Strata, n: int, name: str) -> None:
    """Raise when a strata sequence (or any axis of a mapping) does not have ``n`` labels."""
    if strata is None:
        return
    for axis, labels in (strata.items() if isinstance(strata, Mapping) else [("", strata)]):
        if len(labels) != n:
            raise ValueError(f"{name}{' ' + axis if axis else ''}: {len(labels)} strata labels for {n} images")


def bootstrap_two_sample(a: np.ndarray, b: np.ndarray, stat: Callable[[np.ndarray, np.ndarray], np.ndarray],
                         n_boot: int = 1000, seed: int = 0, level: float = 0.95, chunk: int = 256
                         ) -> tuple[float, float]:
    """Percentile CI of ``stat(a_boot, b_boot)`` with ``a`` and ``b`` resampled independently.

    ``stat`` takes two arrays [B, len(a)] and [B, len(b)] of replicates and returns [B].
    """
    if n_boot < 20:
        raise ValueError(f"n_boot must be >= 20, got {n_boot}")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    rng = np.random.default_rng(seed)
    vals = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        vals[start:start + k] = stat(a[rng.integers(0, len(a), (k, len(a)))],
                                     b[rng.integers(0, len(b), (k, len(b)))])
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return math.nan, math.nan
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def finite(v: Any) -> float | None:
    """A float, or None for NaN / infinity / None (to_dict never emits NaN)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class SampleSummary:
    """Per-side summary of a per-image measure (NaN images dropped and counted)."""

    n: int
    n_dropped: int
    median: float
    q25: float
    q75: float
    mean: float

    @classmethod
    def of(cls, values: np.ndarray) -> "SampleSummary":
        v = np.asarray(values, dtype=np.float64)
        ok = v[np.isfinite(v)]
        if not len(ok):
            return cls(0, int(len(v)), math.nan, math.nan, math.nan, math.nan)
        q25, med, q75 = np.quantile(ok, [0.25, 0.5, 0.75])
        return cls(int(len(ok)), int(len(v) - len(ok)), float(med), float(q25), float(q75), float(ok.mean()))

    @property
    def iqr(self) -> float:
        return self.q75 - self.q25

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "n_dropped": self.n_dropped, "median": finite(self.median),
                "q25": finite(self.q25), "q75": finite(self.q75), "iqr": finite(self.iqr),
                "mean": finite(self.mean)}
