"""Grey-level co-occurrence (GLCM, Haralick) texture statistics over the breast region.

The image (float in [0, 1]) is quantised to ``levels`` grey levels inside the breast mask;
background pixels get level 0 and every co-occurrence pair touching the background is
dropped, so the large empty background does not dominate the statistics. For each pixel
distance the matrix is symmetric and the properties are averaged over the four directions
0, 45, 90 and 135 degrees.

Set-level summary (:func:`texture_summary`): mean and SD per statistic of the per-image
values at distance 1. Set distance (:func:`texture_distance`): the mean over the four
statistics (contrast, homogeneity, energy, correlation) of the absolute standardised mean
difference ``|mean_syn - mean_real| / sqrt((sd_real^2 + sd_syn^2) / 2)`` (Cohen's d;
when both SDs are 0 the plain absolute difference is used). 0 means identical means.
"""
from __future__ import annotations

import numpy as np

GLCM_PROPS = ("contrast", "homogeneity", "energy", "correlation", "dissimilarity")
#: the statistics reported per set (Haralick's classic four)
REPORTED_PROPS = ("contrast", "homogeneity", "energy", "correlation")
ANGLES = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)


def glcm_features(img: np.ndarray, mask: np.ndarray | None = None, levels: int = 32,
                  distances: tuple[int, ...] = (1, 2, 4)) -> np.ndarray:
    """GLCM properties ``[len(distances), len(GLCM_PROPS)]`` of a [0, 1] image in ``mask``.

    Without breast pixel pairs at some distance (tiny or empty mask) the whole image is used.
    """
    from skimage.feature import graycomatrix, graycoprops

    img = np.asarray(img, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"GLCM: expected a 2-D image, got shape {img.shape}")
    if not np.isfinite(img).all():
        raise ValueError("GLCM: image contains NaN or infinity")
    if levels < 2:
        raise ValueError(f"GLCM: levels must be >= 2, got {levels}")
    q = 1 + np.clip((img * levels).astype(np.int64), 0, levels - 1)
    if mask is not None:
        q = np.where(mask, q, 0)
    p = graycomatrix(q.astype(np.uint8), distances=list(distances), angles=list(ANGLES),
                     levels=levels + 1, symmetric=True, normed=False)[1:, 1:].astype(np.float64)
    if (p.sum(axis=(0, 1)) == 0).any():  # no breast pairs: fall back to the whole image
        q = 1 + np.clip((img * levels).astype(np.int64), 0, levels - 1)
        p = graycomatrix(q.astype(np.uint8), distances=list(distances), angles=list(ANGLES),
                         levels=levels + 1, symmetric=True, normed=False)[1:, 1:].astype(np.float64)
    out = np.empty((len(distances), len(GLCM_PROPS)))
    for j, prop in enumerate(GLCM_PROPS):
        vals = graycoprops(p, prop)  # [distances, angles]; normalises each matrix
        out[:, j] = np.nan_to_num(vals, nan=1.0 if prop == "correlation" else 0.0).mean(axis=1)
    return out


def texture_summary(values: np.ndarray) -> dict[str, dict[str, float]]:
    """Mean and SD per statistic of per-image values ``[N, len(REPORTED_PROPS)]``."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != len(REPORTED_PROPS) or len(v) == 0:
        raise ValueError(f"texture: expected [N>0, {len(REPORTED_PROPS)}] values, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("texture: values contain NaN or infinity")
    sd = v.std(axis=0, ddof=1) if len(v) > 1 else np.zeros(v.shape[1])
    return {p: {"mean": float(v[:, j].mean()), "sd": float(sd[j])} for j, p in enumerate(REPORTED_PROPS)}


def texture_distance(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Mean absolute standardised mean difference over the reported GLCM statistics."""
    r = np.asarray(real, dtype=np.float64)
    s = np.asarray(synthetic, dtype=np.float64)
    for a, name in ((r, "real"), (s, "synthetic")):
        if a.ndim != 2 or a.shape[1] != len(REPORTED_PROPS) or len(a) < 2:
            raise ValueError(f"texture: {name} needs [N>=2, {len(REPORTED_PROPS)}] values, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"texture: {name} values contain NaN or infinity")
    pooled = np.sqrt((r.var(axis=0, ddof=1) + s.var(axis=0, ddof=1)) / 2)
    diff = np.abs(r.mean(axis=0) - s.mean(axis=0))
    d = np.where(pooled > 0, diff / np.where(pooled > 0, pooled, 1.0), diff)
    return float(d.mean())
