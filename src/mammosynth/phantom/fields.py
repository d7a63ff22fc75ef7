"""Random fields used by the phantom: power-law (1/f^beta) noise and ridge networks.

All fields are built on the pixel grid but parameterised in millimetres, so a phantom
looks the same (up to resolution) at 256 and 1024 pixels.
"""
from __future__ import annotations

import numpy as np
from scipy import fft as sfft


def _freq_grid(shape: tuple[int, int], spacing_mm: float, stretch_x: float = 1.0) -> np.ndarray:
    """Radial spatial frequency (cycles/mm) of an rfft2 grid; structures are ``stretch_x``
    times longer along x than along y."""
    h, w = shape
    fy = sfft.fftfreq(h, d=spacing_mm).astype(np.float32)
    fx = sfft.rfftfreq(w, d=spacing_mm).astype(np.float32) * stretch_x
    return np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def _white_spectrum(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    spec = rng.standard_normal((h, w // 2 + 1, 2), dtype=np.float32)
    return spec[..., 0] + 1j * spec[..., 1]


def _normalise(field: np.ndarray) -> np.ndarray:
    field = field - field.mean()
    sd = float(field.std())
    return (field / sd if sd > 0 else field).astype(np.float32)


def power_law_field(rng: np.random.Generator, shape: tuple[int, int], spacing_mm: float,
                    beta: float = 3.0, f_min: float = 1.0 / 60.0, stretch_x: float = 1.0,
                    smooth_mm: float = 0.0) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian field with power spectrum ~ 1/f^beta.

    ``f_min`` (cycles/mm) flattens the spectrum below it so one blob does not fill
    the breast (the correlation length is ~1/f_min mm). ``smooth_mm`` applies a Gaussian
    blur of that sigma (in the Fourier domain, free).
    """
    f = np.maximum(_freq_grid(shape, spacing_mm, stretch_x), f_min)
    amp = f ** (-beta / 2.0)
    if smooth_mm > 0:
        amp = amp * np.exp(-2.0 * (np.pi * smooth_mm * _freq_grid(shape, spacing_mm)) ** 2)
    amp[0, 0] = 0.0
    field = sfft.irfft2(_white_spectrum(rng, shape) * amp, s=shape, workers=1)
    return _normalise(field)


def band_pass_field(rng: np.random.Generator, shape: tuple[int, int], spacing_mm: float,
                    f_centre: float, rel_width: float = 0.5, stretch_x: float = 1.0) -> np.ndarray:
    """Unit-variance Gaussian field whose spectrum is a log-normal bump at ``f_centre`` (cycles/mm)."""
    f = _freq_grid(shape, spacing_mm, stretch_x)
    with np.errstate(divide="ignore"):
        lf = np.log(np.maximum(f, 1e-6) / f_centre)
    amp = np.exp(-0.5 * (lf / rel_width) ** 2).astype(np.float32)
    amp[0, 0] = 0.0
    field = sfft.irfft2(_white_spectrum(rng, shape) * amp, s=shape, workers=1)
    return _normalise(field)


def ridge_lines(field: np.ndarray, spacing_mm: float, width_mm: float) -> np.ndarray:
    """Thin curvilinear lines along the zero crossings of ``field``, of width ``width_mm``.

    The distance to the zero crossing is estimated as |field| / |grad field|; the profile
    is a Gaussian of sigma ``width_mm`` widened to the pixel size with the integral kept
    (partial-volume), so coarse images show fainter, not missing, lines. Peak value 1 at
    fine resolution.
    """
    gy, gx = np.gradient(field, spacing_mm)
    grad = np.sqrt(gx * gx + gy * gy) + 1e-6
    dist = np.abs(field) / grad
    w_eff = float(np.hypot(width_mm, 0.5 * spacing_mm))
    return (np.exp(-((dist / w_eff) ** 2)) * (width_mm / w_eff)).astype(np.float32)
