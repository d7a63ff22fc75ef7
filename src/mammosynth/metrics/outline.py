"""Breast outline plausibility: are the synthetic breasts shaped like real ones?

Why: texture is not the only give-away. At 256x160 the detectability test's texture view
read 0.70-0.78 while 2-5 of every 32 samples had a broken outline: a torn skin line, a
missing upper half, a narrow blob. A reader rejects such a film at a glance; the CNN
classifier weighs a few of them little and FRD weighs them heavily and erratically (one
seed read FRD 27 against 5 for another that looked as good). This measure counts them.

Per image, from its breast mask (chest wall on the left, as ingest leaves the films and
the generators draw them):

* ``profile``: the breast's width in each row as a fraction of the image width, averaged
  over ``bins`` (64) bands of rows: the outline's shape at a scale that ignores the skin
  line's pixel steps;
* ``atypicality``: the RMS distance from the image's profile to the nearest real film's.
  For a real film, to the nearest *other* real film (leave-one-out): that distribution is
  how far real anatomy strays from the rest of the set;
* ``jaggedness``: the mean absolute second difference of the per-row width, in px at the
  evaluated size, over rows whose neighbours hold breast too: a torn or crumbly skin line.
  NaN when fewer than three consecutive rows hold breast.

Per set (:func:`outline_comparison`), for atypicality and jaggedness: the share of
synthetic images above the real films' ``quantile`` (0.95, the Harrell-Davis estimate;
real films exceed it at a rate of about 1 - quantile by construction), with a
percentile-bootstrap CI that resamples both sets (a resampled real set moves the
threshold); the AUC P(synthetic value > real value) with its CI, which compares the whole
distributions and is steadier between runs than the rate (the rate hangs on the real set's
few most atypical films); and the most extreme images' indices, for the sheet
(:func:`outline_sheet`). The realism verdict warns when a rate's CI lies wholly above
``RealismConfig.outline_tolerance``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..data.outline import BINS, SPLIT_FLOOR, harrell_davis_weights, jaggedness, nearest_distance, outline_features, width_profiles
from .stats import bootstrap_auc_ci
from .twosample import SampleSummary, bootstrap_two_sample, finite

FEATURES = ("profile", "jaggedness", "split")
STATISTICS = ("atypical", "ragged", "fragmented")
#: what each rate means, for reports
MEANINGS = {
    "atypical": "breast shape (width per row) farther from every real film's than real films are from each other",
    "ragged": "skin line more jagged (row-to-row width changes) than real films'",
    "fragmented": "more of the breast in rows where it is more than one run (two lobes, a fragment beside it, "
                  "a notch) than real films",
}
#: fewest real films with a breast for which the real quantile means anything
MIN_REAL = 5


@dataclass(frozen=True)
class OutlierRate:
    """The share of synthetic images above the real films' ``quantile`` of one per-image value."""

    threshold: float
    rate: float
    ci_low: float
    ci_high: float
    #: real films above the threshold (about 1 - quantile by construction; shown for scale)
    real_rate: float
    real: SampleSummary
    synthetic: SampleSummary
    #: P(a synthetic image's value > a real film's) with its CI: the whole distributions
    #: compared (steadier than the rate, which hangs on the real set's top few films)
    auc: float = math.nan
    auc_ci: tuple[float, float] = (math.nan, math.nan)
    #: indices of the most extreme synthetic images, most extreme first
    worst: tuple[int, ...] = ()
    #: the same for the real films (what the real set's own extremes look like)
    real_worst: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": finite(self.threshold), "rate": finite(self.rate), "ci_low": finite(self.ci_low),
                "ci_high": finite(self.ci_high), "real_rate": finite(self.real_rate), "real": self.real.to_dict(),
                "synthetic": self.synthetic.to_dict(), "auc": finite(self.auc), "auc_ci_low": finite(self.auc_ci[0]),
                "auc_ci_high": finite(self.auc_ci[1]), "worst": list(self.worst), "real_worst": list(self.real_worst)}


@dataclass(frozen=True)
class OutlineResult:
    """Atypical shapes and ragged skin lines of a synthetic set, against the real films."""

    rates: dict[str, OutlierRate] = field(default_factory=dict)
    quantile: float = 0.95
    reason: str | None = None

    @property
    def available(self) -> bool:
        return bool(self.rates)

    def flagged(self, tolerance: float) -> list[str]:
        """Statistics whose rate's CI lies wholly above ``tolerance``."""
        return [s for s, r in self.rates.items() if r.ci_low > tolerance]

    def to_dict(self) -> dict[str, Any]:
        return {"available": self.available, "reason": self.reason, "quantile": self.quantile,
                "statistics": {s: {**r.to_dict(), "meaning": MEANINGS[s]} for s, r in self.rates.items()}}


def _rate(real: np.ndarray, syn: np.ndarray, quantile: float, seed: int, n_boot: int, n_worst: int,
          floor: float = -math.inf) -> OutlierRate | None:
    ra, sb = SampleSummary.of(real), SampleSummary.of(syn)
    ok_r, ok_s = np.flatnonzero(np.isfinite(real)), np.flatnonzero(np.isfinite(syn))
    if len(ok_r) < MIN_REAL or not len(ok_s):
        return None
    a, b = real[ok_r], syn[ok_s]
    w = harrell_davis_weights(len(a), quantile)
    thr = max(float(np.sort(a) @ w), floor)

    def stat(ab: np.ndarray, bb: np.ndarray) -> np.ndarray:
        return (bb > np.maximum(np.sort(ab, axis=1) @ w, floor)[:, None]).mean(axis=1)

    lo, hi = bootstrap_two_sample(a, b, stat, n_boot=n_boot, seed=seed)
    auc = bootstrap_auc_ci(np.r_[np.zeros(len(a)), np.ones(len(b))], np.r_[a, b], n_boot=n_boot, seed=seed)
    return OutlierRate(thr, float((b > thr).mean()), lo, hi, float((a > thr).mean()), ra, sb,
                       auc["value"], (auc["ci_low"], auc["ci_high"]),
                       tuple(int(i) for i in ok_s[np.argsort(-b, kind="stable")][:n_worst]),
                       tuple(int(i) for i in ok_r[np.argsort(-a, kind="stable")][:n_worst]))


def outline_comparison(real: dict[str, np.ndarray], synthetic: dict[str, np.ndarray], quantile: float = 0.95,
                       seed: int = 0, n_boot: int = 1000, n_worst: int = 8) -> OutlineResult:
    """Compare :func:`outline_features` of the synthetic set with the real set's (see the module docstring)."""
    if not 0.5 <= quantile < 1:
        raise ValueError(f"quantile must be in [0.5, 1), got {quantile}")
    pr, ps = np.asarray(real["profile"], np.float64), np.asarray(synthetic["profile"], np.float64)
    has_r = pr.sum(axis=1) > 0
    if has_r.sum() < MIN_REAL or not len(ps):
        return OutlineResult({}, quantile, f"fewer than {MIN_REAL} real films with a breast, or no synthetic image")
    # real films without a breast are no reference anatomy; a synthetic image without one is
    # as far from every real film as its profile of zeros says
    ref = pr[has_r]
    loo = np.full(len(pr), np.nan)
    loo[has_r] = nearest_distance(ref, ref, leave_one_out=True)
    values = {"atypical": (loo, nearest_distance(ps, ref)),
              "ragged": (np.asarray(real["jaggedness"], np.float64), np.asarray(synthetic["jaggedness"], np.float64))}
    if "split" in real and "split" in synthetic:  # features computed before the split share lack it
        values["fragmented"] = (np.asarray(real["split"], np.float64), np.asarray(synthetic["split"], np.float64))
    rates = {}
    for s in (s for s in STATISTICS if s in values):
        # the split share's threshold has the shape gate's floor: films that are one run in
        # every row (a phantom) would otherwise count a single stray pixel as a fragment
        r = _rate(*values[s], quantile, seed, n_boot, n_worst, SPLIT_FLOOR if s == "fragmented" else -math.inf)
        if r is not None:
            rates[s] = r
    return OutlineResult(rates, quantile, None if rates else "too few images with a measurable outline")


def _outlined(image: np.ndarray, mask: np.ndarray, rows: int) -> np.ndarray:
    """uint8 RGB of ``image`` (block-subsampled to about ``rows`` rows) with its mask's outline in red."""
    f = max(1, math.ceil(image.shape[0] / rows))
    x, m = image[::f, ::f], mask[::f, ::f]
    inner = m.copy()
    inner[1:] &= m[:-1]
    inner[:-1] &= m[1:]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    rgb = np.repeat((np.clip(x, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    rgb[m & ~inner] = (230, 30, 30)
    return rgb


def outline_sheet(rows: Sequence[tuple[str, np.ndarray, np.ndarray, Sequence[int]]], path: str | os.PathLike,
                  height: int = 256, scale: int = 1) -> dict[str, Any]:
    """PNG: one row per ``(label, images [N, H, W], masks, indices)``, each image with its
    breast outline in red (the mask the measures read), subsampled to about ``height`` rows.
    Returns ``{"path", "rows": [count per row], "size"}``; ValueError when every row is empty."""
    from PIL import Image, ImageDraw

    from ..data.contact_sheet import _font
    from ..utils import atomic_file

    tiles = [(label, [_outlined(x[i], m[i], height) for i in idx]) for label, x, m, idx in rows]
    if not any(t for _, t in tiles):
        raise ValueError("no image to draw")
    th = max(t.shape[0] for _, ts in tiles for t in ts)
    tw = max(t.shape[1] for _, ts in tiles for t in ts)
    label_w, gap = 96, 4
    n = max(len(ts) for _, ts in tiles)
    sheet = np.full((len(tiles) * (th + gap) + gap, label_w + n * (tw + gap), 3), 255, np.uint8)
    for r, (_, ts) in enumerate(tiles):
        for j, t in enumerate(ts):
            y0, x0 = gap + r * (th + gap), label_w + j * (tw + gap)
            sheet[y0:y0 + t.shape[0], x0:x0 + t.shape[1]] = t
    img = Image.fromarray(sheet)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    for r, (label, _) in enumerate(tiles):
        draw.text((6, (gap + r * (th + gap) + th // 2) * scale - 8), label, fill=(0, 0, 0), font=_font(13))
    with atomic_file(path) as tmp:
        img.save(tmp)
    return {"path": str(path), "rows": [len(ts) for _, ts in tiles], "size": list(img.size)}


def atypical_sheet(outline: OutlineResult, real_images: np.ndarray, real_masks: np.ndarray, syn_images: np.ndarray,
                   syn_masks: np.ndarray, path: str | os.PathLike, real_label: str = "real") -> dict[str, Any]:
    """:func:`outline_sheet` of the most atypical real films above the most atypical synthetic
    images of ``outline``; ValueError when it has no atypicality figure."""
    r = outline.rates.get("atypical")
    if r is None:
        raise ValueError(outline.reason or "no atypicality figure")
    return outline_sheet([(real_label, real_images, real_masks, r.real_worst),
                          ("synthetic", syn_images, syn_masks, r.worst)], path)


__all__ = ["BINS", "FEATURES", "MEANINGS", "STATISTICS", "OutlierRate", "OutlineResult", "atypical_sheet", "jaggedness",
           "nearest_distance", "outline_comparison", "outline_features", "outline_sheet", "width_profiles"]
