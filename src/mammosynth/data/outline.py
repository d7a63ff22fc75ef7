"""Per-image breast outline features, from breast masks (chest wall on the left, as ingest
leaves the films and the generators draw them): the width profile, the skin line's
jaggedness and the distance to the nearest reference profile; and :class:`ShapeReference`,
the outlines of a model's training films, which judges new outlines against them.

They live in ``data`` because two stages read them: :mod:`mammosynth.metrics.outline`
compares a synthetic set's outlines with the real films', and
:mod:`mammosynth.sampling.shape_gate` redraws a generated image whose outline no training
film comes near.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

BINS = 64
_CHUNK = 256
#: fewest films with a breast for which a reference's quantiles mean anything
MIN_FILMS = 5
#: the split-row share below which a breast always passes (a reference whose films are all
#: one run per row would otherwise fail every image with one pixel astray)
SPLIT_FLOOR = 0.01


def width_profiles(masks: np.ndarray, bins: int = BINS) -> np.ndarray:
    """[N, bins]: per image, the breast's width per row / image width, averaged over ``bins`` bands of rows."""
    m = np.asarray(masks, dtype=bool)
    if m.ndim != 3:
        raise ValueError(f"expected masks [N, H, W], got shape {m.shape}")
    n, h, w = m.shape
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    frac = m.sum(axis=2, dtype=np.float64) / max(w, 1)
    # the mean over each bin's rows, fractional rows pro rata: differences of the
    # interpolated running sum (a bin narrower than a row reads that row)
    edges = np.arange(bins + 1) * h / bins
    run = np.concatenate([np.zeros((n, 1)), np.cumsum(frac, axis=1)], axis=1)
    at = np.stack([np.interp(edges, np.arange(h + 1), r) for r in run]) if n else np.zeros((0, bins + 1))
    return np.diff(at, axis=1) * (bins / h)


def jaggedness(masks: np.ndarray) -> np.ndarray:
    """[N]: mean |second difference| of the per-row breast width (px), NaN without 3 breast rows in a run."""
    m = np.asarray(masks, dtype=bool)
    width = m.sum(axis=2, dtype=np.float64)
    d2 = np.abs(width[:, 2:] - 2 * width[:, 1:-1] + width[:, :-2])
    ok = (width[:, 2:] > 0) & (width[:, 1:-1] > 0) & (width[:, :-2] > 0)
    count = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (d2 * ok).sum(axis=1) / count, np.nan)


def split_share(masks: np.ndarray) -> np.ndarray:
    """[N]: the share of breast pixels in rows where the breast is more than one run: a breast
    in two lobes, a fragment beside it, a notch cut into it from the top (0 without a breast).
    Real films' segmented breasts are one run per row nearly everywhere (mini-MIAS at 256x160:
    median 0.4-0.9 %, 99th percentile ~6 %)."""
    m = np.asarray(masks, dtype=bool)
    starts = (m[:, :, 1:] & ~m[:, :, :-1]).sum(axis=2) + m[:, :, 0]
    total = m.sum(axis=(1, 2))
    split = (m.sum(axis=2) * (starts >= 2)).sum(axis=1)
    return np.where(total > 0, split / np.maximum(total, 1), 0.0)


def outline_features(masks: np.ndarray, bins: int = BINS) -> dict[str, np.ndarray]:
    """``{"profile": [N, bins], "jaggedness": [N], "split": [N]}`` of a stack of breast masks (cacheable arrays)."""
    return {"profile": width_profiles(masks, bins), "jaggedness": jaggedness(masks), "split": split_share(masks)}


def nearest_distance(query: np.ndarray, reference: np.ndarray, leave_one_out: bool = False) -> np.ndarray:
    """[Nq]: RMS distance of each query profile to its nearest reference profile
    (``leave_one_out``: query is reference, and each row skips itself)."""
    q, r = np.asarray(query, np.float64), np.asarray(reference, np.float64)
    if q.ndim != 2 or r.ndim != 2 or q.shape[1] != r.shape[1]:
        raise ValueError(f"profiles must be [N, bins] alike, got {q.shape} and {r.shape}")
    out = np.empty(len(q))
    for s in range(0, len(q), _CHUNK):
        d = np.sqrt(((q[s:s + _CHUNK, None, :] - r[None]) ** 2).mean(axis=2))
        if leave_one_out:
            d[np.arange(len(d)), np.arange(s, s + len(d))] = np.inf
        out[s:s + _CHUNK] = d.min(axis=1)
    return out


def harrell_davis_weights(n: int, quantile: float) -> np.ndarray:
    """Weights on the sorted sample whose sum is the Harrell-Davis estimate of ``quantile``.

    Why not the order statistic: the 95th percentile of 54 films is the 3rd-largest film,
    and a bootstrap that moves it by one film moved the outline rate's CI by ten points; the
    Harrell-Davis estimator (a Beta-weighted mean of all order statistics) moves far less."""
    from scipy.stats import beta

    a, b = (n + 1) * quantile, (n + 1) * (1 - quantile)
    return np.diff(beta.cdf(np.arange(n + 1) / n, a, b))


def harrell_davis_quantile(values: np.ndarray, quantile: float) -> float:
    """The Harrell-Davis estimate of ``quantile`` of the finite ``values`` (NaN when none)."""
    v = np.sort(np.asarray(values, np.float64)[np.isfinite(values)])
    return float(v @ harrell_davis_weights(len(v), quantile)) if len(v) else float("nan")


@dataclass(frozen=True)
class ShapeVerdict:
    """Per image of a batch: its outline figures and whether it passes."""

    atypicality: np.ndarray  # [B] RMS distance of its width profile to the nearest training film's
    jaggedness: np.ndarray  # [B] px; NaN without three breast rows in a run (counts as failing)
    split: np.ndarray  # [B] share of breast pixels in rows of more than one run
    passed: np.ndarray  # [B] bool
    #: [B] how far above the thresholds (max of value / threshold): the kept candidate when none passes
    excess: np.ndarray


@dataclass(frozen=True, eq=False)
class ShapeReference:
    """The outlines of a model's training films, at the model's resolution."""

    profiles: np.ndarray  # [N, bins] width profiles of the films with a breast
    loo: np.ndarray  # [N] each film's distance to its nearest other film
    jagged: np.ndarray  # [N] the films' skin-line jaggedness (px at ``size``)
    size: tuple[int, int]  # (H, W) the masks had
    split: np.ndarray | None = None  # [N] the films' split-row shares (None: a reference made without them)

    @classmethod
    def from_masks(cls, masks: np.ndarray, source: str = "masks") -> "ShapeReference":
        """From breast masks ``[N, H, W]`` of the training films; ValueError (naming ``source``)
        with fewer than :data:`MIN_FILMS` films that hold a breast."""
        m = np.asarray(masks, dtype=bool)
        if m.ndim != 3:
            raise ValueError(f"{source}: expected masks [N, H, W], got shape {m.shape}")
        m = m[m.reshape(len(m), -1).any(axis=1)]
        if len(m) < MIN_FILMS:
            raise ValueError(f"{source}: {len(m)} films with a breast; the shape gate needs at least {MIN_FILMS}")
        profiles = width_profiles(m)
        return cls(profiles, nearest_distance(profiles, profiles, leave_one_out=True), jaggedness(m),
                   (int(m.shape[1]), int(m.shape[2])), split_share(m))

    @classmethod
    def from_images(cls, unit: np.ndarray, source: str = "images") -> "ShapeReference":
        """From training images ``[N, H, W]`` in [0, 1] with their background at 0, segmented
        as the pipeline segments generated images."""
        from .preprocess import breast_masks

        return cls.from_masks(breast_masks(np.asarray(unit, np.float32)), source)

    def thresholds(self, quantile: float) -> tuple[float, float, float]:
        """(nearest-film distance, jaggedness, split-row share) at the films' own ``quantile``
        (the share at least :data:`SPLIT_FLOOR`; inf for a reference made without it)."""
        split = math.inf if self.split is None else max(harrell_davis_quantile(self.split, quantile), SPLIT_FLOOR)
        return harrell_davis_quantile(self.loo, quantile), harrell_davis_quantile(self.jagged, quantile), split

    def judge(self, masks: np.ndarray, quantile: float = 0.99) -> ShapeVerdict:
        """Per mask ``[B, H, W]`` (at :attr:`size`): passes when its nearest-film distance,
        jaggedness and split-row share are at most the films' own at ``quantile``."""
        m = np.asarray(masks, dtype=bool)
        if m.shape[1:] != self.size:
            raise ValueError(f"shape gate: masks of {m.shape[1:]} against a reference made at {self.size}")
        atyp_max, jag_max, split_max = self.thresholds(quantile)
        atyp, jag = nearest_distance(width_profiles(m, self.profiles.shape[1]), self.profiles), jaggedness(m)
        split = split_share(m)
        with np.errstate(invalid="ignore", divide="ignore"):
            excess = np.maximum.reduce([atyp / atyp_max, np.where(np.isfinite(jag), jag / jag_max, np.inf),
                                        split / split_max])
        return ShapeVerdict(atyp, jag, split, excess <= 1.0, excess)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (stored in checkpoints and saved pipelines); 6 significant digits."""
        def r(a: np.ndarray) -> list:
            return [None if not math.isfinite(v) else float(f"{v:.6g}") for v in np.asarray(a, np.float64).ravel()]

        return {"version": 1, "size": list(self.size), "bins": int(self.profiles.shape[1]),
                "profiles": r(self.profiles), "loo": r(self.loo), "jaggedness": r(self.jagged),
                **({"split": r(self.split)} if self.split is not None else {})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ShapeReference":
        try:
            if d.get("version") != 1:
                raise ValueError(f"version {d.get('version')!r} not supported")
            bins = int(d["bins"])

            def a(key: str) -> np.ndarray:
                return np.array([np.nan if v is None else v for v in d[key]], np.float64)

            ref = cls(a("profiles").reshape(-1, bins), a("loo"), a("jaggedness"), (int(d["size"][0]), int(d["size"][1])),
                      a("split") if "split" in d else None)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a shape reference ({type(exc).__name__}: {exc})") from None
        if not (len(ref.profiles) == len(ref.loo) >= MIN_FILMS and len(ref.jagged) >= len(ref.profiles)
                and (ref.split is None or len(ref.split) == len(ref.profiles))):
            raise ValueError(f"not a shape reference: {len(ref.profiles)} profiles, {len(ref.loo)} distances")
        return ref
