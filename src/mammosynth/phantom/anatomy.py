"""Breast anatomy of the procedural phantom, in the canonical frame (chest wall at the left).

A compressed breast is described by path lengths (cm) through each tissue along the
x-ray beam, per detector pixel:

* ``thickness`` - total path through the breast: the compressed thickness T in the
  interior, falling off at the periphery as the chord of a half-circle of radius T/2
  (the uncompressed rim of a compressed breast).
* ``skin`` - path through the 1.5 mm skin layer (thin everywhere, long at the rim where
  the beam runs tangentially: the bright skin line).
* ``muscle`` - path through the pectoral muscle (MLO only, upper chest-wall corner).
* ``gland`` - path through fibroglandular tissue; the rest of ``thickness`` is fat.

Fibroglandular tissue is a 1/f^beta (beta ~ 3) Gaussian field, shifted towards a
retro-areolar envelope and thresholded so that the dense area is the woman's drawn
percent-dense area (see :data:`PDA_RANGE`); Cooper's ligaments are the zero-crossing
network of a band-pass field; ducts are radial streaks converging on the nipple.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .fields import band_pass_field, power_law_field, ridge_lines

SKIN_MM = 1.5  # skin thickness (Huang et al. 2008, breast CT: 1.45 +- 0.30 mm)

#: percent dense area (fraction of breast area) per ACR density, drawn uniformly. The
#: ACR 4th edition quartiles (<25, 25-50, 51-75, >75 %) with a gap between classes.
PDA_RANGE = {"A": (0.04, 0.20), "B": (0.29, 0.46), "C": (0.54, 0.71), "D": (0.79, 0.92)}
#: fraction of the beam path that is glandular inside dense areas, per density.
GLAND_MAX = {"A": (0.30, 0.42), "B": (0.35, 0.48), "C": (0.40, 0.55), "D": (0.45, 0.62)}
#: mean compressed thickness (cm) per density; fatty breasts are larger (sd 0.7 cm).
THICKNESS_CM = {"A": 5.6, "B": 5.1, "C": 4.6, "D": 4.2}
#: mean age (years) per density; denser breasts belong to younger women (sd 8 years).
AGE_MEAN = {"A": 63.0, "B": 58.0, "C": 53.0, "D": 48.0}
AGE_RANGE = (40.0, 80.0)


@dataclass(frozen=True)
class Woman:
    """Parameters shared by all images of one simulated woman."""

    density: str
    pda: float  # target percent dense area (0-1)
    gland_max: float  # glandular fraction of the path in dense areas
    thickness_cm: float
    depth_mm: float  # chest wall to nipple (CC)
    height_mm: float  # vertical extent at the chest wall (CC)
    shape_q: float  # superellipse exponent of the outline
    age: float


def draw_woman(rng: np.random.Generator, density: str) -> Woman:
    """Draw one woman's breast size, thickness, density target and age."""
    lo, hi = PDA_RANGE[density]
    g_lo, g_hi = GLAND_MAX[density]
    thick = float(np.clip(rng.normal(THICKNESS_CM[density], 0.7), 3.0, 8.0))
    depth = float(np.clip(rng.normal(112.0 - 8.0 * "ABCD".index(density), 15.0), 60.0, 150.0))
    height = float(np.clip(depth * rng.uniform(1.45, 1.85), 100.0, 230.0))
    age = float(np.clip(rng.normal(AGE_MEAN[density], 8.0), *AGE_RANGE))
    return Woman(density, float(rng.uniform(lo, hi)), float(rng.uniform(g_lo, g_hi)), thick, depth, height,
                 float(rng.uniform(1.9, 2.6)), round(age, 1))


@dataclass
class Anatomy:
    """Per-pixel tissue path lengths (cm) and labels, canonical frame (chest wall left)."""

    spacing_mm: float
    breast: np.ndarray  # bool, inside the skin line
    thickness: np.ndarray  # cm
    skin: np.ndarray  # cm
    muscle: np.ndarray  # cm
    gland: np.ndarray  # cm
    dense: np.ndarray  # bool, ground-truth dense area
    envelope: np.ndarray  # 0-1, where glandular tissue (and lesions) concentrate
    dist_mm: np.ndarray  # distance to the skin line (mm), 0 outside
    pectoral: np.ndarray  # bool
    nipple: tuple[float, float]  # (y, x) in pixels


def _smooth_noise_1d(rng: np.random.Generator, n: int, corr: int, amp: float) -> np.ndarray:
    x = rng.standard_normal(n + 4 * corr)
    x = ndimage.gaussian_filter1d(x, corr)[2 * corr:2 * corr + n]
    return amp * x / (x.std() + 1e-9)


def _outline(rng: np.random.Generator, woman: Woman, view: str, ys: np.ndarray, fov_w: float,
             fov_h: float) -> tuple[np.ndarray, float, dict]:
    """x of the skin line (mm) for each row centre ``ys`` (mm), and the nipple row (mm)."""
    depth = woman.depth_mm * rng.uniform(0.95, 1.05) * (1.0 if view == "CC" else 1.1)
    depth = min(depth, 0.88 * fov_w)
    q = woman.shape_q
    info: dict = {}
    if view == "CC":
        height = min(woman.height_mm * rng.uniform(0.95, 1.05), 0.94 * fov_h)
        yc = fov_h / 2 + rng.uniform(-0.03, 0.03) * fov_h
        skew = rng.uniform(-0.15, 0.15)  # nipple slightly above/below the centre line
        tt = (ys - yc) / (height / 2)
        u = np.clip(np.abs(tt - skew * (1 - tt ** 2)), 0, 1)
        x_edge = depth * (1 - u ** q) ** (1 / q)
        x_edge = np.where(np.abs(tt) < 1, x_edge, 0.0)
        y_nip = float(ys[int(np.argmax(x_edge))])
    else:  # MLO: the breast runs off the top edge (axilla), bulges at the nipple, folds at the bottom
        y_bot = min(fov_h * rng.uniform(0.82, 0.96), fov_h - 2.0)
        s_p = rng.uniform(0.55, 0.72)
        x_top = depth * rng.uniform(0.4, 0.6)
        s = ys / y_bot
        upper = x_top + (depth - x_top) * np.sqrt(np.clip(1 - ((s_p - s) / s_p) ** 2, 0, 1))
        lower = depth * np.clip(1 - np.clip((s - s_p) / (1 - s_p), 0, 1) ** q, 0, 1) ** (1 / q)
        x_edge = np.where(s < s_p, upper, lower)
        x_edge = np.where(s <= 1, x_edge, 0.0)
        y_nip = s_p * y_bot
        info.update(y_bot=y_bot, x_top=x_top)
    # gentle irregularity of the outline, vanishing where the outline meets the chest wall
    step = float(ys[1] - ys[0]) if len(ys) > 1 else 1.0
    wobble = _smooth_noise_1d(rng, len(ys), max(1, int(25.0 / step)), 0.015)
    x_edge = x_edge * (1 + wobble)
    info.update(depth=depth, nipple_w=rng.uniform(4.0, 6.5), nipple_h=rng.uniform(2.5, 5.0))
    return x_edge.astype(np.float32), float(y_nip), info


def _chord(d_mm: np.ndarray, radius_mm: float, stretch: float = 1.0) -> np.ndarray:
    """Path (mm) through a half-ellipse rim (semi-axes ``radius_mm`` along the beam,
    ``stretch * radius_mm`` in the image plane) at distance d from its edge."""
    u = np.clip(np.asarray(d_mm) / (stretch * radius_mm), 0, 1)
    return 2 * radius_mm * np.sqrt(np.maximum(2 * u - u * u, 0))


def build_anatomy(rng: np.random.Generator, woman: Woman, view: str, shape: tuple[int, int],
                  spacing_mm: float) -> Anatomy:
    """Render one breast's tissue maps in the canonical frame (chest wall at x = 0)."""
    h, w = shape
    s = spacing_mm
    ys = (np.arange(h, dtype=np.float32) + 0.5) * s
    xs = (np.arange(w, dtype=np.float32) + 0.5) * s
    x_edge, y_nip, info = _outline(rng, woman, view, ys, w * s, h * s)
    X = np.broadcast_to(xs[None, :], (h, w))
    Y = np.broadcast_to(ys[:, None], (h, w))
    # distance to the skin line: horizontal gap times the cosine of the outline's slope
    slope = np.gradient(x_edge, s)
    cos = 1.0 / np.sqrt(1.0 + slope ** 2)
    dist = (x_edge[:, None] - X) * cos[:, None]
    breast = dist > 0
    dist = np.where(breast, dist, 0.0).astype(np.float32)

    T_mm = woman.thickness_cm * 10.0
    R = T_mm / 2
    rim = rng.uniform(1.4, 2.4)  # the uncompressed rim bulges wider than T/2
    # a tilted / flexible paddle: the breast thins a few per cent towards the nipple
    taper = 1.0 - rng.uniform(0.0, 0.08) * np.clip(X / max(float(x_edge.max()), 1.0), 0, 1)
    thick_mm = _chord(dist, R, rim) * taper
    inner = _chord(dist - SKIN_MM, R - SKIN_MM, rim) * (dist > SKIN_MM) * taper
    skin_mm = thick_mm - inner

    # pectoral muscle (MLO): a wedge in the upper chest-wall corner, thickest at the wall
    pect = np.zeros((h, w), dtype=bool)
    muscle_mm = np.zeros((h, w), dtype=np.float32)
    if view == "MLO":
        x_p = info["x_top"] * rng.uniform(0.75, 1.0)  # the muscle spans most of the axillary tail
        y_p = info["y_bot"] * rng.uniform(0.45, 0.75)
        kappa = rng.uniform(0.8, 1.25)
        xb = x_p * np.clip(1 - ys / y_p, 0, 1) ** kappa
        gap = xb[:, None] - X
        pect = (gap > 0) & breast
        ramp = rng.uniform(8.0, 20.0)
        m_max = rng.uniform(0.4, 0.65) * T_mm
        corner = np.clip(1.0 - (X / max(x_p, 1.0) + Y / max(y_p, 1.0)) / 2, 0, 1)  # thicker into the corner
        muscle_mm = np.where(pect, m_max * np.clip(gap / ramp, 0, 1) ** 0.7 * (0.75 + 0.25 * corner), 0.0)
        muscle_mm = np.minimum(muscle_mm, np.maximum(inner, 0)).astype(np.float32)

    # glandular envelope: an ellipse behind the nipple, away from skin and muscle
    depth = info["depth"]
    cx, cy = depth * rng.uniform(0.40, 0.52), y_nip + rng.uniform(-0.05, 0.05) * depth
    ax, ay = depth * rng.uniform(0.50, 0.62), (woman.height_mm if view == "CC" else 1.3 * woman.height_mm) * rng.uniform(0.28, 0.38)
    ang = 0.0 if view == "CC" else np.deg2rad(rng.uniform(25, 45))
    dx, dy = X - cx, Y - cy
    ca, sa = np.cos(ang), np.sin(ang)
    e = ((dx * ca - dy * sa) / ax) ** 2 + ((dx * sa + dy * ca) / ay) ** 2
    envelope = np.exp(-1.6 * e) * np.clip((dist - 3.0) / 12.0, 0, 1) * (~pect)
    envelope = envelope.astype(np.float32)

    not_pect = (~pect).astype(np.float32)
    stretch = rng.uniform(1.5, 2.5)  # tissue structures run from the chest wall to the nipple
    field = power_law_field(rng, shape, s, beta=rng.uniform(2.8, 3.2), f_min=1.0 / 60.0, stretch_x=stretch,
                            smooth_mm=1.5)  # soft cloud edges
    score = 2.0 * envelope + 0.6 * field / (field.std() + 1e-6)
    core = breast & (dist > 2.0) & ~pect
    vals = score[core]
    thr = float(np.quantile(vals, 1.0 - woman.pda)) if vals.size else float("inf")
    dense_frac = not_pect / (1.0 + np.exp(-(score - thr) / 0.25))
    dense = core & (score > thr)

    # mottled texture inside the glandular tissue, fat lobules, Cooper's ligaments
    fine = power_law_field(rng, shape, s, beta=2.6, f_min=1.0 / 15.0, stretch_x=stretch)
    gland_frac = woman.gland_max * dense_frac * np.clip(1.0 + 0.15 * fine, 0.3, 1.5)
    lob = band_pass_field(rng, shape, s, f_centre=1.0 / 30.0, rel_width=0.35, stretch_x=stretch)
    lob2 = band_pass_field(rng, shape, s, f_centre=1.0 / 11.0, rel_width=0.4, stretch_x=stretch)
    holes = np.clip(lob2 - 0.9, 0, 1.5)  # rounded fat lobules inside dense tissue
    gland_frac = gland_frac * (1.0 - 0.25 * holes)
    # ligaments: zero-crossing arcs, broken into segments by a slowly varying gate
    gate = np.clip(power_law_field(rng, shape, s, beta=3.0, f_min=1.0 / 40.0) * 0.8 + 0.6, 0, 1)
    lig = (ridge_lines(lob, s, width_mm=0.25) + 0.2 * ridge_lines(lob2, s, width_mm=0.2)) * gate
    lig_amp = rng.uniform(0.08, 0.18) * np.clip(1.0 - 0.6 * dense_frac, 0, 1) * np.clip((dist - 2.0) / 10.0, 0, 1)
    # faint fibrous background everywhere, so fat is not one flat grey
    gland_frac = gland_frac + lig_amp * lig * not_pect + 0.03 * envelope + 0.05 * np.clip(0.6 + 0.6 * field, 0, 1.5)

    # ducts: streaks converging on the nipple inside the envelope
    nip_x = float(x_edge[min(h - 1, int(y_nip / s))])
    r = np.hypot(X - nip_x, Y - y_nip)
    theta = np.arctan2(Y - y_nip, nip_x - X)  # 0 towards the chest wall
    n_t = 1024
    streak = band_pass_field(rng, (24, n_t), 1.0, f_centre=0.06, rel_width=0.4)
    streak = ndimage.gaussian_filter1d(streak, 3.0, axis=0)
    # sample the (radius, angle) streak field: nearest in radius (smooth), linear in angle
    ri = np.minimum((r * (23.0 / (1.2 * depth)) + 0.5).astype(np.int32), 23)
    tf = (theta + np.pi) * ((n_t - 1) / (2 * np.pi))
    t0 = tf.astype(np.int32)
    frac = tf - t0
    ducts = streak[ri, t0] * (1 - frac) + streak[ri, np.minimum(t0 + 1, n_t - 1)] * frac
    ducts = np.exp(-(ducts / 0.4) ** 2)
    duct_amp = rng.uniform(0.04, 0.09) * np.exp(-r / (0.5 * depth)) * np.clip(envelope * 3, 0, 1) * not_pect
    gland_frac = gland_frac + duct_amp * ducts

    gland_frac = np.clip(gland_frac, 0.0, 0.95)
    avail = np.maximum(inner - muscle_mm, 0)
    gland_mm = np.where(breast, gland_frac * avail, 0.0)

    # the nipple in profile: a skin-dense half-ellipse beyond the outline
    n_w, n_h = info["nipple_w"], info["nipple_h"]
    ex = (X - nip_x) / n_h
    ey = (Y - y_nip) / n_w
    nip = (ex > -0.2) & (ex ** 2 + ey ** 2 < 1) & ~breast
    nip_path = np.where(nip, 1.6 * n_w * np.sqrt(np.clip(1 - ex ** 2 - ey ** 2, 0, 1)), 0.0)
    breast = breast | nip
    thick_mm = thick_mm + nip_path
    skin_mm = skin_mm + nip_path
    nipple = (y_nip / s - 0.5, (nip_x + n_h) / s - 0.5)
    return Anatomy(
        spacing_mm=s,
        breast=breast,
        thickness=(thick_mm / 10.0).astype(np.float32),
        skin=(skin_mm / 10.0).astype(np.float32),
        muscle=(muscle_mm / 10.0).astype(np.float32),
        gland=(gland_mm / 10.0).astype(np.float32),
        dense=dense,
        envelope=envelope,
        dist_mm=dist,
        pectoral=pect,
        nipple=nipple,
    )
