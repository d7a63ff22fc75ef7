"""X-ray image formation: Beer-Lambert projection, detector blur, noise, display.

Monoenergetic approximation at 20 keV (a Mo/Mo 28 kVp beam has its mean energy near
18-20 keV). Linear attenuation coefficients, cm^-1:

======================  =======  ==========================================================
tissue                  mu       source
======================  =======  ==========================================================
fat (adipose)           0.456    Johns & Yaffe 1987, Phys Med Biol 32:675, table 2
fibroglandular          0.802    Johns & Yaffe 1987 (fibrous tissue)
carcinoma (IDC)         0.844    Johns & Yaffe 1987 (infiltrating duct carcinoma)
skin                    0.80     Hammerstein et al. 1979 skin composition, ~fibroglandular
pectoral muscle         0.86     NIST ICRU-44 skeletal muscle, mu/rho 0.82 cm^2/g x 1.05 g/cm^3
calcification           25.0     hydroxyapatite (3.06 g/cm^3), NIST XCOM elemental mixture
======================  =======  ==========================================================

Signal chain: quanta ``N = N0 exp(-sum mu_k t_k)`` per pixel, where ``N0`` is the
unattenuated fluence (quanta/mm^2) times the pixel area; detector blur (Gaussian PSF,
sigma ``blur_mm``); quantum noise (Poisson, in its normal approximation, exact for the
> 1000 quanta per pixel used here) plus Gaussian electronic noise; log transform back to
the line integral ``p = -ln(N / N0)``. For presentation ``p`` is divided by the path a
pure-glandular breast of the same compressed thickness would give (the role an AEC plus
the vendor's processing play), passed through a display curve (its window shifted per
image by ``window_jitter``, like film processing) and stored in 16 bits: air is black,
fat mid-grey, glandular tissue, muscle and calcium bright.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

MU_20KEV: dict[str, float] = {
    "fat": 0.456,
    "gland": 0.802,
    "carcinoma": 0.844,
    "skin": 0.80,
    "muscle": 0.86,
    "calcification": 25.0,
}

#: display curve: normalised line integral v (pure gland at full thickness = 1) ->
#: grey level g = clip((v - V_LO) / (V_HI - V_LO), 0, 1) ** GAMMA
V_LO, V_HI, GAMMA = 0.3, 1.0, 0.9


def display_curve(v: np.ndarray, lo: float = V_LO, hi: float = V_HI) -> np.ndarray:
    """The for-presentation curve, normalised line integral -> grey level in [0, 1]."""
    return np.clip((v - lo) / (hi - lo), 0.0, 1.0) ** GAMMA


def line_integral(thickness: np.ndarray, skin: np.ndarray, muscle: np.ndarray, gland: np.ndarray,
                  extra: np.ndarray | None = None) -> np.ndarray:
    """sum mu_k t_k (dimensionless) from tissue path lengths in cm; fat fills the remainder.

    ``extra`` is an added line integral (lesions, already expressed as mu * path minus
    the displaced tissue).
    """
    fat = np.maximum(thickness - skin - muscle - gland, 0.0)
    p = (MU_20KEV["fat"] * fat + MU_20KEV["gland"] * gland + MU_20KEV["skin"] * skin
         + MU_20KEV["muscle"] * muscle)
    if extra is not None:
        p = p + extra
    return p.astype(np.float32)


def expose(p: np.ndarray, rng: np.random.Generator, spacing_mm: float, thickness_cm: float,
           fluence_per_mm2: float, blur_mm: float, electronic_noise: float,
           window_jitter: float = 0.02) -> np.ndarray:
    """Detected, noisy, log-transformed and displayed image in [0, 1] (float32).

    ``fluence_per_mm2`` is the fluence that reaches the detector behind the interior of a
    breast (the AEC target); ``electronic_noise`` is the read-noise sigma in quanta per pixel;
    ``window_jitter`` is the sd of the per-image shift of the display window.
    """
    p_ref = MU_20KEV["fat"] * thickness_cm * 0.7 + MU_20KEV["gland"] * thickness_cm * 0.3
    n0 = fluence_per_mm2 * spacing_mm * spacing_mm * float(np.exp(p_ref))  # incident quanta/pixel
    q = n0 * np.exp(-p.astype(np.float32))
    sigma_px = blur_mm / spacing_mm
    if sigma_px > 0.3:
        q = ndimage.gaussian_filter(q, sigma_px, mode="nearest")
    lo, hi = V_LO + rng.normal(0, window_jitter), V_HI + rng.normal(0, window_jitter)
    noise = rng.standard_normal(q.shape, dtype=np.float32)
    q = q + noise * np.sqrt(q + electronic_noise ** 2)
    q = np.maximum(q, 1.0)
    p_meas = np.log(n0) - np.log(q)
    v = p_meas / (MU_20KEV["gland"] * thickness_cm)
    return display_curve(v, lo, hi).astype(np.float32)


def to_uint16(gray: np.ndarray) -> np.ndarray:
    """[0, 1] grey levels -> uint16."""
    return np.clip(np.rint(gray * 65535.0), 0, 65535).astype(np.uint16)
