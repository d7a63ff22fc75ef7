"""Findings inserted into the phantom, each with a pixel mask and a pathology label.

Every lesion displaces the breast tissue along its path: its added line integral is
``(mu_lesion - mu_background) * path``, where ``mu_background`` is the local mix of fat
and glandular tissue. A mass is therefore conspicuous in fat and masked in dense
tissue, as in real mammograms. Sizes are drawn uniformly from these ranges:

===========================  ================================================  ===============
finding (subtype)            size / contrast                                   pathology rule
===========================  ================================================  ===============
mass, circumscribed          diameter 8-28 mm, aspect 0.7-1, lobulation 0-0.25  malignant iff
                             (relative radius modulation); mu = mu_gland x      lobulation > 0.15
                             1.00-1.04 (benign) or 1.03-1.09 (malignant)        (micro-lobulated)
mass, spiculated             core diameter 8-20 mm, 10-28 spicules 1.5-3.5 core  always malignant
                             radii long; mu = mu_gland x 1.03-1.09
calcification, punctate      4-12 round specks, diameter 0.3-0.6 mm, in a       benign
                             5-14 mm round cluster
calcification, pleomorphic   6-25 specks, diameter 0.16-1.2 mm (log-normal),    malignant
                             along 1-3 branching lines (linear/segmental)
distortion                   8-20 thin spiculae 10-30 mm long radiating from a  malignant
                             point, surrounding tissue pulled towards it, no
                             central mass
asymmetry (focal)            a 20-45 mm patch of extra fibroglandular tissue     benign
                             in strands with fat between (up to 25-45 % more
                             of the available thickness, never above 70 %
                             gland), fading out: no convex border, no
                             spicules; masked in dense breasts
===========================  ================================================  ===============

Calcification specks are hydroxyapatite (mu 25 cm^-1); each covers at least one pixel
at coarse pixel sizes (no partial-volume dilution), so clusters stay visible at 256 px -
a deliberate departure from physics so that labels match what the image shows.
Lesions are placed at breast pixels drawn with weight ``envelope + 0.15`` (mostly in
the glandular cone), at least their own extent + 3 mm from the skin and off the pectoral
muscle. Spiculated masses are kind ``mass`` with ``source_codes["subtype"] = "spiculated"``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .anatomy import Anatomy
from .imaging import MU_20KEV

SUBTYPES = {"mass": ("circumscribed", "spiculated"), "calcification": ("punctate", "pleomorphic"),
            "distortion": ("distortion",), "asymmetry": ("focal",)}
PLEOMORPHIC_FRACTION = 0.5


@dataclass
class Lesion:
    """One rendered lesion in the canonical frame."""

    kind: str
    subtype: str
    pathology: str
    mask: np.ndarray  # bool, full image
    extra: np.ndarray  # added line integral, full image (0 outside the lesion)
    params: dict = field(default_factory=dict)


def _place(rng: np.random.Generator, anat: Anatomy, extent_mm: float,
           centre: tuple[float, float] | None = None) -> tuple[float, float]:
    """Centre (row, col) for a lesion of radius ``extent_mm``: in the breast, off skin and muscle.

    A given ``centre`` is returned as is and draws nothing (editing places lesions itself).
    """
    if centre is not None:
        return float(centre[0]), float(centre[1])
    h, w = anat.breast.shape
    need = min(extent_mm, 0.5 * float(anat.dist_mm.max())) + 3.0
    ok = (anat.dist_mm > need) & ~anat.pectoral
    if not ok.any():
        ok = anat.breast & ~anat.pectoral
    if not ok.any():
        ok = anat.breast
    weight = np.where(ok, anat.envelope + 0.15, 0.0)
    for _ in range(400):
        r, c = int(rng.integers(0, h)), int(rng.integers(0, w))
        if ok[r, c] and rng.random() < weight[r, c] / 1.15:
            return r + rng.random() - 0.5, c + rng.random() - 0.5
    r, c = np.unravel_index(int(np.argmax(weight)), weight.shape)
    return float(r), float(c)


def _window(anat: Anatomy, centre: tuple[float, float], radius_mm: float):
    """Slices and pixel offsets (mm, relative to the centre) of a square window."""
    h, w = anat.breast.shape
    s = anat.spacing_mm
    rad = int(np.ceil(radius_mm / s)) + 2
    r0, r1 = max(0, int(centre[0]) - rad), min(h, int(centre[0]) + rad + 1)
    c0, c1 = max(0, int(centre[1]) - rad), min(w, int(centre[1]) + rad + 1)
    dy = ((np.arange(r0, r1) - centre[0]) * s)[:, None]
    dx = ((np.arange(c0, c1) - centre[1]) * s)[None, :]
    return (slice(r0, r1), slice(c0, c1)), dy, dx


def _mu_background(anat: Anatomy, win) -> np.ndarray:
    avail = np.maximum(anat.thickness[win] - anat.skin[win] - anat.muscle[win], 1e-4)
    g = np.clip(anat.gland[win] / avail, 0, 1)
    return MU_20KEV["fat"] * (1 - g) + MU_20KEV["gland"] * g


def _available_cm(anat: Anatomy, win) -> np.ndarray:
    return np.maximum(anat.thickness[win] - anat.skin[win] - anat.muscle[win], 0)


def _lobulated_body(rng, dy, dx, r_mm, aspect, lob):
    """Mask and chord (mm) of a lobulated ellipsoid centred at 0."""
    ang = rng.uniform(0, np.pi)
    ca, sa = np.cos(ang), np.sin(ang)
    u, v = dx * ca + dy * sa, (-dx * sa + dy * ca) / aspect
    rho, phi = np.hypot(u, v), np.arctan2(v, u)
    mod = np.ones_like(rho)
    for k in range(2, 6):
        mod = mod + lob * rng.uniform(0.3, 1.0) / (k - 1) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
    r_phi = r_mm * np.maximum(mod, 0.5)
    inside = rho < r_phi
    chord = 2 * r_mm * np.sqrt(np.clip(1 - (rho / r_phi) ** 2, 0, 1))
    return inside, chord


def _spicules(rng, dy, dx, n, r0, lengths, width_mm, thick_mm, spacing):
    """Sum of tapered, slightly curved line profiles radiating from the centre (path, mm)."""
    out = np.zeros(np.broadcast(dy, dx).shape, dtype=np.float32)
    w_eff_pad = 0.5 * spacing
    for j in range(n):
        a = rng.uniform(0, 2 * np.pi)
        L = lengths[j]
        bend = rng.normal(0, 0.15) / max(L, 1.0)
        t = dx * np.cos(a) + dy * np.sin(a)
        perp = -dx * np.sin(a) + dy * np.cos(a) - bend * t * t
        frac = np.clip((t - r0) / max(L - r0, 1e-3), 0, 1)
        live = (t > 0.5 * r0) & (t < L)
        wt = width_mm * (1 - 0.8 * frac)
        w_eff = np.sqrt(wt ** 2 + w_eff_pad ** 2)
        prof = np.exp(-(perp / w_eff) ** 2) * (wt / w_eff) * thick_mm * (1 - frac) ** 0.7
        np.maximum(out, np.where(live, prof, 0.0), out=out)  # no pile-up where they meet
    return out


def _finish(anat: Anatomy, win, path_cm: np.ndarray, mu: float, mask_win: np.ndarray):
    """Clip the path to the tissue available, turn it into a line integral, make full arrays."""
    shape = anat.breast.shape
    path_cm = np.minimum(path_cm, _available_cm(anat, win)) * anat.breast[win]
    extra = np.zeros(shape, dtype=np.float32)
    extra[win] = (mu - _mu_background(anat, win)) * path_cm
    mask = np.zeros(shape, dtype=bool)
    mask[win] = mask_win & anat.breast[win]
    if not mask.any():  # a lesion always owns at least the pixel where its path is longest
        sub = np.zeros(shape, dtype=np.float32)
        sub[win] = path_cm
        mask[np.unravel_index(int(np.argmax(sub)), shape)] = True
    return extra, mask


def make_mass(rng: np.random.Generator, anat: Anatomy, spiculated: bool,
              centre: tuple[float, float] | None = None, diameter_mm: float | None = None) -> Lesion:
    """A circumscribed or spiculated mass (at ``centre`` when given, else at a drawn site).

    ``diameter_mm`` fixes the diameter (spiculated: of the core) instead of drawing it; the
    draw is still made, so the rest of the lesion is the one the same ``rng`` gives anyway.
    """
    s = anat.spacing_mm
    if spiculated:
        r = rng.uniform(4.0, 10.0)
        r = r if diameter_mm is None else 0.5 * float(diameter_mm)
        n = int(rng.integers(10, 29))
        lengths = r * rng.uniform(1.5, 3.5, size=n)
        extent = float(lengths.max())
        centre = _place(rng, anat, extent, centre)
        win, dy, dx = _window(anat, centre, extent)
        inside, chord = _lobulated_body(rng, dy, dx, r, rng.uniform(0.75, 1.0), rng.uniform(0.1, 0.25))
        sig = 0.8 / s
        chord = ndimage.gaussian_filter(chord, sig) if sig > 0.3 else chord
        spic = _spicules(rng, dy, dx, n, 0.7 * r, lengths, rng.uniform(0.3, 0.6), rng.uniform(4.0, 8.0), s)
        path_mm = chord + spic
        mask = inside | (spic > 0.5)
        pathology, lob = "malignant", None
        params = {"core_diameter_mm": round(2 * r, 2), "spicules": n, "max_extent_mm": round(extent, 2)}
    else:
        r = rng.uniform(4.0, 14.0)
        r = r if diameter_mm is None else 0.5 * float(diameter_mm)
        lob = rng.uniform(0.0, 0.25)
        centre = _place(rng, anat, r * 1.3, centre)
        win, dy, dx = _window(anat, centre, r * 1.3)
        inside, chord = _lobulated_body(rng, dy, dx, r, rng.uniform(0.7, 1.0), lob)
        sig = 0.3 / s
        path_mm = ndimage.gaussian_filter(chord, sig) if sig > 0.3 else chord
        mask = inside
        pathology = "malignant" if lob > 0.15 else "benign"
        params = {"diameter_mm": round(2 * r, 2), "lobulation": round(float(lob), 3)}
    contrast = rng.uniform(1.03, 1.09) if pathology == "malignant" else rng.uniform(1.00, 1.04)
    mu = MU_20KEV["gland"] * contrast
    extra, full_mask = _finish(anat, win, path_mm / 10.0, mu, mask)
    params.update(mu_relative_to_gland=round(float(contrast), 4))
    return Lesion("mass", "spiculated" if spiculated else "circumscribed", pathology, full_mask, extra, params)


def make_calcifications(rng: np.random.Generator, anat: Anatomy, centre: tuple[float, float] | None = None) -> Lesion:
    """A cluster of fine bright specks: punctate (benign) or pleomorphic/linear (malignant)."""
    s = anat.spacing_mm
    pleo = rng.random() < PLEOMORPHIC_FRACTION
    if pleo:
        n = int(rng.integers(6, 26))
        radii = np.clip(rng.lognormal(np.log(0.22), 0.5, size=n), 0.08, 0.6)
        ext = rng.uniform(4.0, 9.0)
        pts = []
        n_br = int(rng.integers(1, 4))
        base = rng.uniform(0, 2 * np.pi)
        for k in range(n):
            a = base + rng.normal(0, 0.5) * (k % n_br)
            t = rng.uniform(-ext, ext)
            pts.append((t * np.sin(a) + rng.normal(0, 0.4), t * np.cos(a) + rng.normal(0, 0.4)))
        pts = np.array(pts)
    else:
        n = int(rng.integers(4, 13))
        radii = rng.uniform(0.15, 0.3, size=n)
        ext = rng.uniform(2.5, 7.0)
        rr, aa = ext * np.sqrt(rng.random(n)), rng.uniform(0, 2 * np.pi, n)
        pts = np.stack([rr * np.sin(aa), rr * np.cos(aa)], axis=1)
    extent = float(np.abs(pts).max()) + 1.0
    centre = _place(rng, anat, extent, centre)
    win, dy, dx = _window(anat, centre, extent + 1.0)
    path = np.zeros(np.broadcast(dy, dx).shape, dtype=np.float32)
    mask = np.zeros_like(path, dtype=bool)
    pad = max(s, 0.5)
    for (py, px), rad in zip(pts, radii):
        r_draw = max(rad, 0.55 * s)
        rho2 = (dy - py) ** 2 + (dx - px) ** 2
        chord = 2 * rad * np.sqrt(np.clip(1 - rho2 / r_draw ** 2, 0, 1))
        path = np.maximum(path, chord)
        mask |= rho2 <= (r_draw + pad) ** 2
    extra, full_mask = _finish(anat, win, path / 10.0, MU_20KEV["calcification"], mask)
    params = {"specks": n, "cluster_extent_mm": round(2 * extent, 2),
              "speck_diameter_mm": [round(float(2 * radii.min()), 3), round(float(2 * radii.max()), 3)]}
    return Lesion("calcification", "pleomorphic" if pleo else "punctate", "malignant" if pleo else "benign",
                  full_mask, extra, params)


def make_distortion(rng: np.random.Generator, anat: Anatomy, centre: tuple[float, float] | None = None) -> Lesion:
    """Architectural distortion: radiating spiculae and tissue pulled towards a point.

    Modifies ``anat.gland`` in place (the pull), so call it before projecting.
    """
    s = anat.spacing_mm
    n = int(rng.integers(8, 21))
    lengths = rng.uniform(10.0, 30.0, size=n)
    extent = float(lengths.max())
    centre = _place(rng, anat, 0.7 * extent, centre)
    win, dy, dx = _window(anat, centre, extent)
    # pull: sample the glandular map from further out, strongest near the centre
    sigma = 0.5 * extent
    k = rng.uniform(0.3, 0.6)
    gain = 1 + k * np.exp(-(dy ** 2 + dx ** 2) / sigma ** 2)
    rows = centre[0] + dy / s * gain
    cols = centre[1] + dx / s * gain
    warped = ndimage.map_coordinates(anat.gland, [rows.ravel(), cols.ravel()], order=1, mode="nearest")
    anat.gland[win] = np.minimum(warped.reshape(rows.shape), _available_cm(anat, win))
    spic = _spicules(rng, dy, dx, n, 0.0, lengths, rng.uniform(0.25, 0.5), rng.uniform(3.0, 6.0), s)
    radius = 0.45 * float(lengths.mean())
    mask = ((dy ** 2 + dx ** 2) <= radius ** 2) | (spic > 0.4)
    extra, full_mask = _finish(anat, win, spic / 10.0, MU_20KEV["gland"] * 1.02, mask)
    params = {"spiculae": n, "max_extent_mm": round(extent, 2), "pull": round(float(k), 3)}
    return Lesion("distortion", "distortion", "malignant", full_mask, extra, params)


def make_asymmetry(rng: np.random.Generator, anat: Anatomy, centre: tuple[float, float] | None = None) -> Lesion:
    """Focal asymmetry: extra fibroglandular tissue in an irregular patch that fades out
    (no border, no spicules, nothing denser than gland). Benign: the rule for a stable
    focal asymmetry. Modifies ``anat.gland`` in place, so call it before projecting."""
    s = anat.spacing_mm
    size = rng.uniform(20.0, 45.0)
    extent = 0.5 * size
    centre = _place(rng, anat, extent, centre)
    win, dy, dx = _window(anat, centre, 1.5 * extent)
    ang, aspect = rng.uniform(0, np.pi), rng.uniform(0.5, 1.0)
    u = dx * np.cos(ang) + dy * np.sin(ang)
    v = (-dx * np.sin(ang) + dy * np.cos(ang)) / aspect
    envelope = np.exp(-(u ** 2 + v ** 2) / (2 * (0.5 * extent) ** 2))
    # interleaved with fat: smooth noise (2-4 mm blobs) cuts the patch into strands
    noise = ndimage.gaussian_filter(rng.standard_normal(envelope.shape), max(1.0, 2.5 / s))
    strands = np.clip(0.5 + 0.5 * noise / (noise.std() + 1e-9), 0, 1)
    shape = (envelope * strands).astype(np.float32)
    boost = rng.uniform(0.25, 0.45)
    avail = _available_cm(anat, win)
    # never denser than gland mixed 70:30 with fat: an asymmetry is breast tissue, not a mass
    anat.gland[win] = np.maximum(anat.gland[win], np.minimum(anat.gland[win] + boost * avail * shape, 0.7 * avail))
    extra, full_mask = _finish(anat, win, np.zeros_like(shape), MU_20KEV["gland"], envelope > 0.35)
    params = {"size_mm": round(size, 2), "aspect": round(float(aspect), 3), "boost": round(float(boost), 3)}
    return Lesion("asymmetry", "focal", "benign", full_mask, extra, params)


def make_lesion(rng: np.random.Generator, anat: Anatomy, kind: str, spiculated_fraction: float,
                centre: tuple[float, float] | None = None) -> Lesion:
    """Dispatch on the finding kind; ``centre`` (row, col) fixes the site instead of drawing one."""
    if kind == "mass":
        return make_mass(rng, anat, spiculated=rng.random() < spiculated_fraction, centre=centre)
    if kind == "calcification":
        return make_calcifications(rng, anat, centre)
    if kind == "distortion":
        return make_distortion(rng, anat, centre)
    if kind == "asymmetry":
        return make_asymmetry(rng, anat, centre)
    raise ValueError(f"the phantom cannot simulate finding kind {kind!r}; expected one of {tuple(SUBTYPES)}")
