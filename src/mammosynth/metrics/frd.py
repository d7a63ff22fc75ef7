"""Fréchet Radiomics Distance (FRD v1, Konz, Osuala et al. 2026) via the ``frd-score`` package.

``frd_score.compute_frd([real, synthetic])`` extracts radiomics features from both sets on
every call. To let a second evaluation against the same real set skip the real images,
this wrapper runs the package's own two stages separately and caches the first:

1. radiomics features per image with the package's v1 extractor
   (``get_feature_extractor(frd_version="v1")`` + ``compute_features``: Original, LoG and
   wavelet images; firstorder, GLCM, GLRLM, GLSZM, NGTDM; whole-image mask), on 16-bit
   PNGs of the prepared images resized to ``size`` (written to a temporary folder: resizing
   here, not with frd-score's ``resize_size``, whose mask resampling fails with "No labels
   found in this mask" when it downsamples, in frd-score 1.0.1); cached per set;
2. the package's v1 statistics: drop images with NaN features, z-score both sets with the
   real set's mean and SD, drop feature columns that became NaN/inf, Fréchet distance
   (``calculate_frechet_distance``), FRD = log(d^2).

A test checks that the result equals ``frd_score.compute_frd`` on the same files. When
the package (or pyradiomics) is missing or fails, :class:`MetricUnavailable` says why.
An FRD of identical statistics (d = 0) is undefined (log 0) and is reported as such.

Because the features are z-scored with the *real* set's SD, a feature that is (nearly)
constant across the real images dominates the distance when the synthetic images move
it at all (e.g. the high-pass wavelet medians are exactly 0 on a flat background).
:func:`frd_feature_terms` names the features that carry the distance: each feature's
own 1-D Fréchet term ``(mu_r - mu_s)^2 + (sd_r - sd_s)^2`` in the normalised space, as
a share of their sum (the covariance coupling is left out, so this ranks rather than
splits the distance).

Some of those features are constant up to float rounding: a wavelet band's first-order
median is ~1e-14 on every mini-MIAS film (SD 9e-15 over 54 films at 256x160), and one
synthetic image whose median came out at -2e-11, numerically zero as well, sits 2000 SDs
away; that one term carried 99.9 % of a set's distance, FRD 11.2 against 5.4 without the
image. Such swings say nothing about the images, so :class:`FrdResult` also gives FRD
without the features whose real-set SD is below :data:`FLOAT_NOISE_SD`
(``without_float_noise``), next to the published value, which stays the headline.
"""
from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import MetricUnavailable
from .cache import FeatureCache, cache_key
from .features import select_indices

FRD_VERSION = "v1"


def _frd_module() -> Any:
    try:
        import frd_score
        from frd_score import frd as frd_mod
    except ImportError as exc:
        raise MetricUnavailable(f"frd-score is not installed ({exc}); pip install frd-score") from exc
    try:
        frd_mod._ensure_radiomics()
    except ImportError as exc:
        raise MetricUnavailable(f"frd-score needs pyradiomics, which failed to import ({exc})") from exc
    for name in ("get_feature_extractor", "compute_features", "calculate_frechet_distance"):
        if not hasattr(frd_mod, name):
            raise MetricUnavailable(f"frd-score {getattr(frd_score, '__version__', '?')} lacks {name}(); "
                                    "this wrapper was written for frd-score 1.0")
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    frd_mod.setVerbosity(60)
    return frd_mod


def frd_version_string() -> str:
    """``frd-score <version> <FRD version>`` (part of the cache key)."""
    import frd_score

    return f"frd-score {getattr(frd_score, '__version__', '?')} {FRD_VERSION}"


def radiomics_features(files: list[str], num_workers: int = 1, chunk: int = 64,
                       desc: str = "radiomics") -> tuple[np.ndarray, list[str]]:
    """FRD-v1 radiomics features ``[N, F]`` of image files (used at their stored size)
    and the ``F`` feature names."""
    from ..utils import progress

    fm = _frd_module()
    extractor = fm.get_feature_extractor(frd_version=FRD_VERSION, image_dim=2)
    rows, names = [], []
    for s in progress(range(0, len(files), chunk), total=(len(files) + chunk - 1) // chunk, desc=desc, unit="chunk"):
        try:
            arr, results, _ = fm.compute_features(files[s:s + chunk], extractor, masks=None, resize_size=None,
                                                  num_workers=num_workers, frd_version=FRD_VERSION)
        except Exception as exc:  # pyradiomics raises many types
            raise MetricUnavailable(f"radiomics extraction failed on {files[s]} (or the next files): "
                                    f"{type(exc).__name__}: {exc}") from exc
        rows.append(np.asarray(arr, dtype=np.float64))
        names = names or [str(k) for k in results[0]]
    return np.concatenate(rows), names


#: a radiomics feature whose SD over the real images is below this is constant up to float
#: rounding (no feature of 8- or 16-bit images varies meaningfully at this scale)
FLOAT_NOISE_SD = 1e-9


def _normalised(real: np.ndarray, synthetic: np.ndarray, drop_float_noise: bool = False
                ) -> tuple[list[np.ndarray], np.ndarray]:
    """frd-score's v1 stage 2 up to the distance: both sets without NaN rows, z-scored
    with the real mean and SD, feature columns that became NaN/inf dropped (and, with
    ``drop_float_noise``, those constant up to float rounding in the real set); returns the
    two arrays and the kept-column mask."""
    sets = []
    for a, name in ((real, "real"), (synthetic, "synthetic")):
        a = np.asarray(a, dtype=np.float64)
        a = a[~np.isnan(a).any(axis=1)].astype(np.float32)
        if len(a) < 2:
            raise MetricUnavailable(f"FRD: {len(a)} {name} image(s) with valid radiomics; at least 2 needed")
        sets.append(a)
    mean = np.nanmean(sets[0], axis=0)
    std = np.nanstd(sets[0], axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        normed = [(a - mean) / std for a in sets]
    bad = np.zeros(normed[0].shape[1], dtype=bool)
    if drop_float_noise:
        bad |= ~(std >= FLOAT_NOISE_SD)
    for a in normed:
        bad |= ~np.isfinite(a).all(axis=0)
    if bad.all():
        raise MetricUnavailable("FRD: no radiomics feature varies across the real images")
    return [a[:, ~bad] for a in normed], ~bad


def float_noise_features(real: np.ndarray, names: list[str]) -> list[str]:
    """Features that vary over the real images, but only by float rounding (SD below
    :data:`FLOAT_NOISE_SD`); those with no variation at all FRD v1 drops itself."""
    a = np.asarray(real, dtype=np.float64)
    a = a[~np.isnan(a).any(axis=1)]
    std = a.std(axis=0) if len(a) else np.zeros(len(names))
    return [n for n, sd in zip(names, std) if 0 < sd < FLOAT_NOISE_SD]


def frd_from_features(real: np.ndarray, synthetic: np.ndarray, drop_float_noise: bool = False) -> float:
    """FRD v1 from raw radiomics features (real first), exactly as frd-score computes it;
    ``drop_float_noise``: without the features constant up to float rounding in the real set."""
    fm = _frd_module()
    normed, _ = _normalised(real, synthetic, drop_float_noise)
    mu = [a.mean(axis=0) for a in normed]
    cov = [np.cov(a, rowvar=False) for a in normed]
    d2 = float(fm.calculate_frechet_distance(mu[0], cov[0], mu[1], cov[1]))
    if not np.isfinite(d2):
        raise MetricUnavailable(f"FRD: Fréchet distance is not finite ({d2})")
    if d2 <= 0:
        raise MetricUnavailable("FRD: Fréchet distance of the radiomics features is 0 (identical statistics); "
                                "log(0) is undefined")
    return float(np.log(d2))


def frd_feature_terms(real: np.ndarray, synthetic: np.ndarray, names: list[str], top: int = 5) -> list[dict[str, Any]]:
    """The ``top`` features with the largest 1-D Fréchet terms in FRD's normalised space,
    each ``{"feature", "term", "share"}`` (share of the sum over all kept features)."""
    normed, kept = _normalised(real, synthetic)
    if len(names) != len(kept):
        raise ValueError(f"{len(names)} feature names for {len(kept)} radiomics features")
    kept_names = [n for n, k in zip(names, kept) if k]
    terms = ((normed[0].mean(0) - normed[1].mean(0)) ** 2 + (normed[0].std(0) - normed[1].std(0)) ** 2).astype(np.float64)
    total = float(terms.sum())
    order = np.argsort(-terms)[:top]
    return [{"feature": kept_names[i], "term": float(terms[i]), "share": float(terms[i] / total) if total > 0 else 0.0}
            for i in order]


def _png_files(ds: Any, indices: np.ndarray, size: tuple[int, int], tmpdir: Path) -> list[str]:
    """The selected images resized to ``size`` and written as 16-bit PNGs in ``tmpdir``."""
    from ..io.images import write_image
    from .images import as_eval_images

    imgs = as_eval_images(ds)
    files = []
    for n, i in enumerate(indices):
        out = tmpdir / f"{n:06d}.png"
        img = imgs.resized(int(i), size)
        write_image(out, np.rint(img * 65535.0).astype(np.uint16), fmt="png16")
        files.append(str(out))
    return files


def set_radiomics(ds: Any, size: tuple[int, int], max_images: int | None = None, seed: int = 0,
                  cache: FeatureCache | None = None, num_workers: int = 1,
                  desc: str = "radiomics") -> tuple[np.ndarray, list[str]]:
    """Radiomics features of a prepared dataset and their names (cached by content,
    selection and settings)."""
    _frd_module()
    idx = select_indices(len(ds), max_images, seed)
    key = cache_key(kind="frd-radiomics-named", version=frd_version_string(), size=list(size), resize="pil-bilinear",
                    content=ds.content_hash,
                    indices=hashlib.sha256(idx.astype(np.int64).tobytes()).hexdigest()[:16])
    if cache is not None:
        hit = cache.load(key)
        if hit is not None and "names" in hit:
            return hit["features"], [str(n) for n in hit["names"]]
    with tempfile.TemporaryDirectory(prefix="mammosynth-frd-") as tmp:
        feats, names = radiomics_features(_png_files(ds, idx, size, Path(tmp)), num_workers=num_workers, desc=desc)
    if cache is not None:
        cache.save(key, {"features": feats, "names": np.asarray(names, dtype=str)})
    return feats, names


@dataclass(frozen=True)
class FrdResult:
    """FRD v1 (real first) and the features that carry it (:func:`frd_feature_terms`)."""

    value: float
    top_features: list[dict[str, Any]] = field(default_factory=list)
    #: FRD without the features constant up to float rounding in the real set (None: none such)
    without_float_noise: float | None = None
    float_noise_features: list[str] = field(default_factory=list)

    def note(self) -> str:
        """One line for reports: the largest feature terms and their shares."""
        line = "largest feature terms: " + ", ".join(f"{t['feature']} {100 * t['share']:.2f}%"
                                                     for t in self.top_features)
        if self.without_float_noise is not None:
            line += (f"; without the {len(self.float_noise_features)} feature(s) constant up to float rounding in "
                     f"the real images ({', '.join(self.float_noise_features[:3])}"
                     f"{', ...' if len(self.float_noise_features) > 3 else ''}): {self.without_float_noise:.4g}")
        return line


def compute_frd(real: Any, synthetic: Any, size: tuple[int, int] = (256, 160), max_images: int | None = None,
                seed: int = 0, cache: FeatureCache | None = None, num_workers: int | None = None,
                top: int = 5) -> FrdResult:
    """FRD v1 between two prepared datasets (real first) with its ``top`` feature terms;
    MetricUnavailable when it cannot be computed."""
    from ..utils import num_workers as _nw

    nw = _nw(num_workers)
    r, names = set_radiomics(real, size, max_images, seed, cache, nw, desc="radiomics real")
    s, _ = set_radiomics(synthetic, size, max_images, seed, cache, nw, desc="radiomics synthetic")
    noise = float_noise_features(r, names)
    return FrdResult(frd_from_features(r, s), frd_feature_terms(r, s, names, top),
                     frd_from_features(r, s, drop_float_noise=True) if noise else None, noise)


__all__ = ["FLOAT_NOISE_SD", "FrdResult", "compute_frd", "float_noise_features", "frd_feature_terms",
           "frd_from_features", "radiomics_features", "set_radiomics", "FRD_VERSION"]
