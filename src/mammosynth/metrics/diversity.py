"""SSIM, MS-SSIM and intra-set diversity (mode-collapse warning).

Implemented with numpy/scipy (separable filtering), matching pytorch-msssim to ~1e-5.
SSIM (Wang et al. 2004): 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, data
range 1, "valid" filtering (as in pytorch-msssim). MS-SSIM (Wang et al. 2003): the
standard 5 scales with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2x2 average
pooling between scales, contrast-structure terms at the first scales and the full SSIM
at the last, negative terms clipped to 0 (pytorch-msssim's ``nonnegative_ssim``).
**Small images**: a scale needs at least 11 pixels on the short side, so images whose
short side is below 11 * 2^4 = 176 use fewer scales (the first weights, renormalised to
sum 1); e.g. 256x160 uses 4 scales and 64x40 uses 2. The number used is reported.

Diversity: mean MS-SSIM over ``n_pairs`` random pairs of distinct images drawn with a fixed
seed; higher = less diverse. **Mode-collapse rule**: the synthetic set is flagged when its
mean MS-SSIM exceeds the real set's by more than ``margin`` (default 0.1 on the 0..1 scale).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN_SIZE = 11
WIN_SIGMA = 1.5
K1, K2 = 0.01, 0.03


def _window() -> np.ndarray:
    g = np.arange(WIN_SIZE, dtype=np.float64) - WIN_SIZE // 2
    g = np.exp(-(g ** 2) / (2 * WIN_SIGMA ** 2))
    return (g / g.sum()).astype(np.float32)


def _blur_valid(x: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter of ``[N, H, W]`` keeping only fully covered pixels."""
    from scipy.ndimage import correlate1d

    win, r = _window(), WIN_SIZE // 2
    y = correlate1d(x, win, axis=1, mode="constant")[:, r:x.shape[1] - r]
    return correlate1d(y, win, axis=2, mode="constant")[:, :, r:x.shape[2] - r]


def _ssim_cs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image SSIM and contrast-structure means of float32 ``[N, H, W]`` images in [0, 1]."""
    c1, c2 = K1 ** 2, K2 ** 2
    n = x.shape[0]
    stats = _blur_valid(np.concatenate([x, y, x * x, y * y, x * y])).astype(np.float64)
    mu_x, mu_y, exx, eyy, exy = (stats[i * n:(i + 1) * n] for i in range(5))
    sxx = exx - mu_x ** 2
    syy = eyy - mu_y ** 2
    sxy = exy - mu_x * mu_y
    cs_map = (2 * sxy + c2) / (sxx + syy + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1) * cs_map
    return ssim_map.reshape(n, -1).mean(1), cs_map.reshape(n, -1).mean(1)


def _as_batch(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected [H, W] or [N, H, W] images, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: images contain NaN or infinity")
    return arr


def ssim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """SSIM of image pairs in [0, 1]: ``[H, W]`` or ``[N, H, W]`` each; returns ``[N]``."""
    a, b = _as_batch(x, "SSIM"), _as_batch(y, "SSIM")
    if a.shape != b.shape:
        raise ValueError(f"SSIM: shapes differ {a.shape} vs {b.shape}")
    if min(a.shape[-2:]) < WIN_SIZE:
        raise ValueError(f"SSIM: images must be at least {WIN_SIZE}x{WIN_SIZE}, got {a.shape[-2:]}")
    return _ssim_cs(a, b)[0]


def ms_ssim_scales(shape: tuple[int, int]) -> int:
    """Scales MS-SSIM uses for ``(H, W)`` images (5 when the short side is >= 176)."""
    short = min(shape)
    n = 0
    while n < len(MS_SSIM_WEIGHTS) and short // (2 ** n) >= WIN_SIZE:
        n += 1
    if n == 0:
        raise ValueError(f"MS-SSIM: images must be at least {WIN_SIZE}x{WIN_SIZE}, got {shape}")
    return n


def _pool2(x: np.ndarray) -> np.ndarray:
    n, h, w = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, h // 2, 2, w // 2, 2).mean(axis=(2, 4))


def ms_ssim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """MS-SSIM of image pairs in [0, 1] (``[H, W]`` or ``[N, H, W]``); returns ``[N]``."""
    a, b = _as_batch(x, "MS-SSIM"), _as_batch(y, "MS-SSIM")
    if a.shape != b.shape:
        raise ValueError(f"MS-SSIM: shapes differ {a.shape} vs {b.shape}")
    n = ms_ssim_scales(a.shape[-2:])
    w = np.asarray(MS_SSIM_WEIGHTS[:n], dtype=np.float64)
    w = w / w.sum()
    terms = []
    for s in range(n):
        ss, cs = _ssim_cs(a, b)
        terms.append(np.maximum(ss if s == n - 1 else cs, 0.0))
        if s < n - 1:
            a, b = _pool2(a), _pool2(b)
    vals = np.stack(terms, axis=1)  # [N, n]
    return np.prod(vals ** w[None], axis=1)


def random_pairs(n_images: int, n_pairs: int, seed: int) -> np.ndarray:
    """``[P, 2]`` pairs of distinct indices (without repeats when possible), fixed seed."""
    if n_images < 2:
        raise ValueError(f"diversity: {n_images} image(s); at least 2 needed for a pair")
    if n_pairs < 1:
        raise ValueError(f"diversity: n_pairs must be >= 1, got {n_pairs}")
    total = n_images * (n_images - 1) // 2
    rng = np.random.default_rng(seed)
    if total <= n_pairs:
        i, j = np.triu_indices(n_images, 1)
        return np.stack([i, j], 1)
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < n_pairs:
        i, j = rng.integers(0, n_images, size=2)
        if i != j:
            chosen.add((int(min(i, j)), int(max(i, j))))
    return np.array(sorted(chosen))


def intra_set_ms_ssim(load: Callable[[int], np.ndarray], n_images: int, n_pairs: int = 200,
                      seed: int = 0, batch: int = 32) -> tuple[float, int, int]:
    """Mean MS-SSIM over random pairs of a set; ``load(i)`` returns image ``i`` in [0, 1].

    Returns ``(mean, pairs used, scales used)``.
    """
    pairs = random_pairs(n_images, n_pairs, seed)
    cache: dict[int, np.ndarray] = {}

    def get(i: int) -> np.ndarray:
        if i not in cache:
            cache[i] = load(i)
        return cache[i]

    vals = []
    for s in range(0, len(pairs), batch):
        chunk = pairs[s:s + batch]
        vals.append(ms_ssim(np.stack([get(int(i)) for i in chunk[:, 0]]),
                            np.stack([get(int(j)) for j in chunk[:, 1]])))
    scales = ms_ssim_scales(get(int(pairs[0, 0])).shape)
    return float(np.concatenate(vals).mean()), len(pairs), scales


def diversity_report(ms_real: float, ms_syn: float, pairs: int, scales: int, margin: float = 0.1) -> dict[str, Any]:
    """The ``diversity`` block: values, mode-collapse flag and a one-line message."""
    collapse = bool(ms_syn > ms_real + margin)
    scale_note = "" if scales == len(MS_SSIM_WEIGHTS) else f" ({scales} of 5 MS-SSIM scales: images too small for 5)"
    if collapse:
        msg = (f"possible mode collapse: synthetic images are markedly more alike than real ones "
               f"(mean MS-SSIM {ms_syn:.3f} vs {ms_real:.3f}; rule: synthetic > real + {margin:g}){scale_note}")
    else:
        msg = (f"synthetic diversity comparable to real (mean MS-SSIM {ms_syn:.3f} vs {ms_real:.3f}; "
               f"flag when synthetic > real + {margin:g}){scale_note}")
    return {"ms_ssim_real": float(ms_real), "ms_ssim_synthetic": float(ms_syn), "pairs": int(pairs),
            "scales": int(scales), "mode_collapse": collapse, "margin": float(margin), "message": msg}
