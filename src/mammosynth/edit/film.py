"""What the physics route needs to know about a real film, estimated from the film itself.

A for-presentation mammogram is treated as *log-linear*: within the breast its grey level
``g`` (0-1) is ``a + gain * p`` with ``p`` the line integral ``sum mu_k t_k`` (the phantom's
display curve is this with a gamma of 0.9). The lesion models of
:mod:`mammosynth.phantom.lesions` give an added line integral; times ``gain`` it is the
grey-level change. Everything below is estimated per film:

* **breast**: the ingest's segmentation (:func:`mammosynth.data.preprocess.breast_masks`),
  minus exact-zero background pixels (prepared films have a zero background);
* **chest wall side**: from the mask (:func:`~mammosynth.data.preprocess.chest_wall_side`);
* **distance to the skin line** (mm): Euclidean distance to the nearest non-breast pixel,
  the image border counted as outside (so lesions also stay off the chest-wall edge, where
  they would be cut);
* **pectoral muscle** (MLO only): the corner cut off by a straight edge from the top of the
  film to the chest wall. Candidate edges (24 x 24 positions of their two ends, steep ones
  only, meeting the wall within 80 % of the breast's extent along it) are scored by the grey
  step across them (mean of a 4 mm band inside minus one outside, film smoothed over ~1 mm,
  on a copy at most 128 rows high); of those stepping at least 70 % as much as the best,
  the outermost is the muscle's edge (the muscle brightens into the corner, so lines inside
  it step too); none when no edge steps by 8 % of the breast's grey spread or the breast
  does not reach the top edge. The earlier rule (grey above the breast's 90th percentile,
  attached to the wall) missed the muscle wherever glands outshine it (phantom MLO films:
  overlap 0.39, density D 0.11; this rule 0.89 and 0.77);
* **gain**: the grey spread (99.5th minus 2nd percentile, film box-smoothed over 2 mm) where
  the breast has its full thickness (more than T/2 inside the skin line) is taken as
  the contrast of tissue ``GLAND_SPAN`` glandular against fat at the film's compressed
  thickness (the record's, else 5 cm): gain = spread / ((mu_gland - mu_fat) * T * span),
  at least ``MIN_GAIN``. On phantom films this is within a factor 1.5 of the true slope;
* **blur** (detector PSF sigma, px) and **noise** (grey-level SD per pixel): from the
  robust variances of lag-1 and lag-2 pixel differences inside the breast. For white noise
  blurred by a Gaussian of sigma s, the lag-k correlation is exp(-k^2 / (4 s^2)); the ratio
  var(d2) / var(d1) = (1 - rho2) / (1 - rho1) rises from 1 (unblurred) to 4 (smooth), and
  is inverted numerically. Tissue texture adds to both differences; on films where it
  dominates, the blur is an upper estimate (clamped to ``MAX_BLUR_PX``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from ..data.preprocess import breast_masks, chest_wall_side
from ..data.schema import ImageRecord
from ..phantom.anatomy import SKIN_MM, Anatomy
from ..phantom.imaging import MU_20KEV

GLAND_SPAN = 0.5  # glandular fraction of the path in the densest tissue of a film (phantom: 0.30-0.62)
MIN_GAIN = 0.12  # grey levels per unit line integral, at least (keeps lesions visible in fatty films)
DEFAULT_THICKNESS_CM = 5.0
DEFAULT_FOV_MM = 240.0  # spacing fallback: a 24 x 30 cm detector over the image height
MAX_BLUR_PX = 3.0
INTERIOR_MM = 5.0  # pixels this far inside the skin line describe the film's tissue


@dataclass(frozen=True)
class FilmModel:
    """Per-film estimates (see the module docstring); arrays are in the stored image's frame."""

    spacing_mm: float
    spacing_source: str  # "record" | "assumed (240 mm field of view)"
    thickness_cm: float
    breast: np.ndarray  # bool
    chest_wall: str  # "left" | "right"
    pectoral: np.ndarray  # bool
    dist_mm: np.ndarray  # distance to the skin line (image border included), 0 outside
    fat_level: float  # grey (0-1)
    dense_level: float
    gain: float  # grey per unit line integral
    blur_px: float
    noise_sd: float  # grey (0-1)

    def summary(self) -> dict:
        """The JSON-ready estimates kept in each edited record."""
        return {"spacing_mm": round(self.spacing_mm, 5), "spacing_source": self.spacing_source,
                "thickness_cm": self.thickness_cm, "chest_wall": self.chest_wall,
                "pectoral_px": int(self.pectoral.sum()), "fat_level": round(self.fat_level, 5),
                "dense_level": round(self.dense_level, 5), "gain": round(self.gain, 5),
                "blur_px": round(self.blur_px, 4), "noise_sd": round(self.noise_sd, 6)}


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint16 / uint8 -> float32 grey levels in [0, 1]."""
    image = np.asarray(image)
    scale = 65535.0 if image.dtype == np.uint16 else 255.0 if image.dtype == np.uint8 else 1.0
    return image.astype(np.float32) * np.float32(1.0 / scale)


def film_breast(image: np.ndarray) -> np.ndarray:
    """The breast mask as ingest finds it, minus exact-zero (removed background) pixels."""
    g = to_gray(image)
    return breast_masks(g[None])[0] & (g > 0)


MAX_SAMPLES = 5000  # robust statistics on at most this many values (a strided subsample)


def _robust_var(x: np.ndarray) -> float:
    if x.size < 16:
        return 0.0
    x = x[:: max(1, x.size // MAX_SAMPLES)]
    mad = np.median(np.abs(x - np.median(x)))
    return float((1.4826 * mad) ** 2)


HP_SIZE = 5  # px: the box high-pass that removes most tissue texture before the noise is measured


def _diff_vars(x: np.ndarray, interior: np.ndarray) -> tuple[float, float]:
    """Robust variances of lag-1 and lag-2 differences of ``x``'s high-pass residual in ``interior``."""
    resid = x - ndimage.uniform_filter(x, HP_SIZE)
    out = []
    for lag in (1, 2):
        vals = []
        for axis in (0, 1):
            a, m = np.swapaxes(resid, 0, axis), np.swapaxes(interior, 0, axis)
            vals.append(_robust_var((a[lag:] - a[:-lag])[m[lag:] & m[:-lag]]))
        out.append(float(np.mean(vals)))
    return out[0], out[1]


@lru_cache(maxsize=1)
def _calibration() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blur grid, var(d2)/var(d1), var(d1)) of unit-variance white noise blurred by each sigma,
    measured through the same high-pass as the films (so the estimator is exact for pure noise)."""
    white = np.random.default_rng(0).standard_normal((160, 160))
    grid = np.linspace(0.0, MAX_BLUR_PX, 31)
    ratios, v1s = [], []
    full = np.ones_like(white, dtype=bool)
    for s in grid:
        x = ndimage.gaussian_filter(white, s) if s > 0 else white
        v1, v2 = _diff_vars(x / x.std(), full)
        ratios.append(v2 / v1)
        v1s.append(v1)
    return grid, np.maximum.accumulate(np.array(ratios)), np.array(v1s)


def estimate_blur_noise(gray: np.ndarray, interior: np.ndarray) -> tuple[float, float]:
    """(blur sigma px, noise SD grey) from lag-1 / lag-2 differences of the high-pass residual."""
    v1, v2 = _diff_vars(gray, interior)
    if v1 <= 0:
        return 0.0, 0.0
    grid, ratios, v1s = _calibration()
    blur = float(np.interp(v2 / v1, ratios, grid))
    return blur, float(np.sqrt(v1 / np.interp(blur, grid, v1s)))


PECTORAL_GRID = 24  # candidate positions of each end of the muscle's edge
PECTORAL_BAND_MM = 4.0  # width of the bands either side of a candidate edge that are compared
PECTORAL_MIN_STEP = 0.08  # the edge's grey step, at least this fraction of the breast's grey spread
PECTORAL_KEEP = 0.7  # of the edges stepping at least this fraction of the largest step, the outermost
PECTORAL_MAX_WALL = 0.8  # the edge meets the chest wall within this fraction of the breast's extent along it
PECTORAL_SLOPE = (0.8, 6.0)  # y_wall / x_top: an MLO muscle's edge is steep (film labels along the top are not)
PECTORAL_SEARCH_ROWS = 128  # the search runs on a copy at most this many rows high


def _block_mean(x: np.ndarray, f: int) -> np.ndarray:
    h, w = (x.shape[0] // f) * f, (x.shape[1] // f) * f
    return x[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3)) if f > 1 else x


def _edge_bands(gs: np.ndarray, bs: np.ndarray, x_tops: np.ndarray, y_walls: np.ndarray, band: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For every candidate edge x / xt + y / yw = 1 (``x_tops`` x ``y_walls``): the sum of
    ``gs`` and the number of pixels over the breast ``bs`` whose centres lie within ``band``
    px inside the edge (towards the corner), then outside it; each [len(x_tops), len(y_walls)].

    Each row crosses a band in one run of columns, so the sums come from row prefix sums:
    the same pixels as masking the image once per candidate (576 masks a film, which made
    the estimate most of a physics insertion's cost), at a small part of the cost."""
    hs, ws = gs.shape
    pg = np.zeros((hs, ws + 1))
    pg[:, 1:] = np.cumsum(gs * bs, axis=1)
    pb = np.zeros((hs, ws + 1))
    pb[:, 1:] = np.cumsum(bs, axis=1)
    xt, yw = x_tops[:, None, None], y_walls[None, :, None]
    x0 = xt * (1.0 - (np.arange(hs) + 0.5) / yw)  # where each row's centre line meets the edge
    w = band * xt * np.sqrt(1.0 / xt ** 2 + 1.0 / yw ** 2)  # the band's width along a row
    cols = (np.floor(x0 - w - 0.5).astype(np.int64) + 1,  # first column with centre > x0 - w
            np.ceil(x0 - 0.5).astype(np.int64),  # first column with centre >= x0
            np.ceil(x0 + w - 0.5).astype(np.int64))  # first column with centre >= x0 + w
    rows = np.arange(hs)

    def run_sum(prefix: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        lo = np.clip(lo, 0, ws)
        hi = np.maximum(np.clip(hi, 0, ws), lo)
        return (prefix[rows, hi] - prefix[rows, lo]).sum(axis=-1)

    inner, outer = (cols[0], cols[1]), (cols[1], cols[2])
    return run_sum(pg, *inner), run_sum(pb, *inner), run_sum(pg, *outer), run_sum(pb, *outer)


def _pectoral_line(g: np.ndarray, b: np.ndarray, spacing_mm: float) -> tuple[float, float] | None:
    """``(x_top, y_wall)`` in px of ``g``'s frame (chest wall left): the straight muscle edge
    from (row 0, ``x_top``) to (``y_wall``, column 0), by the rule in the module docstring;
    None when no candidate steps by enough."""
    f = max(1, int(np.ceil(g.shape[0] / PECTORAL_SEARCH_ROWS)))
    gs, bs = _block_mean(g, f), _block_mean(b.astype(np.float32), f) > 0.5
    sp = spacing_mm * f
    gs = ndimage.gaussian_filter(gs, max(0.5, 1.0 / sp))
    hs, ws = gs.shape
    top = np.flatnonzero(bs[: max(1, hs // 20)].any(axis=0))
    wall = np.flatnonzero(bs[:, 0])
    if top.size == 0 or wall.size == 0 or bs.sum() < 64:
        return None  # the breast misses the top edge or the wall: no muscle in view
    vals = gs[bs]
    spread = float(np.subtract(*np.percentile(vals, [95, 5])))
    band = max(1.5, PECTORAL_BAND_MM / sp)
    x_tops = np.linspace(0.15, 1.0, PECTORAL_GRID) * (top[-1] + 1)
    y_walls = np.linspace(0.1, PECTORAL_MAX_WALL, PECTORAL_GRID) * (wall[-1] + 1)
    sum_in, n_in, sum_out, n_out = _edge_bands(gs, bs, x_tops, y_walls, band)
    step = sum_in / np.maximum(n_in, 1) - sum_out / np.maximum(n_out, 1)
    step[(n_in < 4 * band) | (n_out < 0.5 * n_in)] = -np.inf  # an edge mostly outside the breast
    steep = (y_walls[None, :] >= PECTORAL_SLOPE[0] * x_tops[:, None]) & \
        (y_walls[None, :] <= PECTORAL_SLOPE[1] * x_tops[:, None])
    steps = np.where(steep, step, -np.inf)
    top_step = steps.max()
    if not top_step > PECTORAL_MIN_STEP * spread:
        return None
    # the muscle brightens towards the corner, so lines inside it step too (often more than
    # its soft outer edge): of the edges stepping nearly as much as the best, the outermost
    area = np.where(steps >= PECTORAL_KEEP * top_step, x_tops[:, None] * y_walls[None, :], -1.0)
    i, k = np.unravel_index(int(np.argmax(area)), area.shape)
    return float(x_tops[i]) * f, float(y_walls[k]) * f


def estimate_pectoral(gray: np.ndarray, breast: np.ndarray, chest_wall: str, spacing_mm: float) -> np.ndarray:
    """The pectoral muscle of an MLO film (rule in the module docstring); empty when none is found."""
    g = gray if chest_wall == "left" else gray[:, ::-1]
    b = breast if chest_wall == "left" else breast[:, ::-1]
    out = np.zeros_like(b)
    line = _pectoral_line(g, b, spacing_mm) if b.sum() >= 32 else None
    if line is None:
        return out
    xt, yw = line
    yy, xx = np.mgrid[: b.shape[0], : b.shape[1]].astype(np.float32) + 0.5
    out = (xx / xt + yy / yw < 1.0) & b
    return out if chest_wall == "left" else out[:, ::-1]


def estimate_film(image: np.ndarray, record: ImageRecord | None = None, breast: np.ndarray | None = None) -> FilmModel:
    """Estimate a film's geometry, contrast, blur and noise (ValueError when it has no breast)."""
    gray = to_gray(image)
    name = record.image_id if record is not None else "image"
    breast = film_breast(image) if breast is None else np.asarray(breast, bool)
    if breast.sum() < 16:
        raise ValueError(f"{name}: no breast found (nothing brighter than the background)")
    spacing, source = None, "record"
    if record is not None and record.pixel_spacing_mm:
        spacing = float(np.mean(record.pixel_spacing_mm))
    if not spacing or spacing <= 0:
        spacing, source = DEFAULT_FOV_MM / gray.shape[0], f"assumed ({DEFAULT_FOV_MM:g} mm field of view)"
    thick = DEFAULT_THICKNESS_CM
    if record is not None and (record.generation or {}).get("compressed_thickness_cm"):
        thick = float(record.generation["compressed_thickness_cm"])
    side, _ = chest_wall_side(breast)
    dist = ndimage.distance_transform_edt(np.pad(breast, 1))[1:-1, 1:-1] * spacing
    view = record.view if record is not None else "other"
    pect = estimate_pectoral(gray, breast, side, spacing) if view == "MLO" else np.zeros_like(breast)
    interior = breast & ~pect & (dist > INTERIOR_MM)
    if interior.sum() < 64:
        interior = breast & ~pect
    # percentiles of the film smoothed over ~2 mm: tissue, not pixel noise, sets the spread
    # and only where the breast has its full compressed thickness (T/2 inside the skin line)
    smooth = ndimage.uniform_filter(gray, max(1, int(round(2.0 / spacing))))
    full = interior & (dist > 5.0 * thick)
    vals = smooth[full] if full.sum() >= 64 else smooth[interior] if interior.any() else smooth[breast]
    lo, hi = np.percentile(vals[:: max(1, vals.size // MAX_SAMPLES)], [2, 99.5])
    gain = max((hi - lo) / ((MU_20KEV["gland"] - MU_20KEV["fat"]) * thick * GLAND_SPAN), MIN_GAIN)
    blur, noise = estimate_blur_noise(gray, interior)
    return FilmModel(spacing, source, thick, breast, side, pect, dist.astype(np.float32), float(lo), float(hi),
                     float(gain), blur, noise)


def pseudo_anatomy(gray: np.ndarray, film: FilmModel) -> Anatomy:
    """Tissue path lengths (cm) read back from the film, for the phantom's lesion models.

    The compressed thickness falls off over the last T/2 before the skin line (a
    half-circle rim); the glandular fraction is the grey level's position between the
    fat and dense levels, times ``GLAND_SPAN``; the envelope (where the phantom puts
    lesions) is that fraction box-smoothed over 10 mm.
    """
    s, t = film.spacing_mm, film.thickness_cm
    r_mm = 5.0 * t
    u = np.clip(film.dist_mm / r_mm, 0, 1)
    thickness = (t * np.sqrt(np.maximum(2 * u - u * u, 0)) * film.breast).astype(np.float32)
    skin = np.minimum(thickness, 2 * SKIN_MM / 10.0).astype(np.float32)
    muscle = (0.5 * thickness * film.pectoral).astype(np.float32)
    avail = np.maximum(thickness - skin - muscle, 0)
    frac = np.clip((gray - film.fat_level) / max(film.dense_level - film.fat_level, 1e-6), 0, 1) * GLAND_SPAN
    gland = (frac * avail * film.breast).astype(np.float32)
    env = ndimage.uniform_filter(frac / GLAND_SPAN * film.breast, max(3, int(round(10.0 / s))))
    env = (env / max(float(env.max()), 1e-6)).astype(np.float32)
    far = np.unravel_index(int(np.argmax(film.dist_mm)), film.dist_mm.shape)
    return Anatomy(spacing_mm=s, breast=film.breast.copy(), thickness=thickness, skin=skin, muscle=muscle,
                   gland=gland, dense=frac > 0.5 * GLAND_SPAN, envelope=env, dist_mm=film.dist_mm.copy(),
                   pectoral=film.pectoral.copy(), nipple=(float(far[0]), float(far[1])))
