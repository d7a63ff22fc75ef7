"""The weight-free "mammo-texture" descriptor and per-set feature extraction (cached).

Why this extractor: ImageNet networks need downloaded weights and were trained on natural
RGB photographs; mammograms are single-channel, and what distinguishes a realistic one is
its grey-level distribution, the fibroglandular texture at several scales and the breast
shape. The descriptor measures exactly those, is deterministic (no weights, no randomness),
cheap (computed on the image downsampled by 2) and interpretable. It follows the idea of
the Fréchet Radiomics Distance (hand-crafted radiomics instead of a CNN) at a fraction of
the cost, so Fréchet/KID/PRDC/memorisation can always be computed.

Features of one image (resized to ``size``, values in [0, 1]; breast = pixels above the
background threshold), ``DIM`` = 87 in total:

* intensity (10): mean, SD, skewness, excess kurtosis, 5/25/50/75/95th percentiles of breast
  pixels, breast area fraction;
* multi-scale band energy (9): on 3 Gaussian-pyramid levels, log mean |x - G_1 * x|,
  log SD of that band, log mean Sobel gradient magnitude (breast pixels);
* GLCM (15): contrast, homogeneity, energy, correlation, dissimilarity at distances 1, 2, 4
  (32 grey levels, breast pairs only, averaged over 4 directions; :mod:`.texture`);
* LBP (20): uniform local-binary-pattern histograms (P=8, R=1 and R=2) over the breast;
* wavelet (9): log energies of the Haar detail bands (horizontal, vertical, diagonal) at
  3 levels;
* layout (24): mean intensity on a 6 x 4 grid (breast shape and position).

Per set, :func:`extract_set` also keeps the pooled intensity histogram and power sums (for
:mod:`.intensity`) and small thumbnails (for SSIM in :mod:`.memorization`); everything is
cached by the dataset's content hash, the selected images and these settings.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .cache import FeatureCache, cache_key
from .intensity import N_BINS, intensity_summary
from .texture import GLCM_PROPS, REPORTED_PROPS, glcm_features

EXTRACTOR_NAME = "mammo-texture"
EXTRACTOR_VERSION = "1"
EXTRACTOR_WHY = (
    "Weight-free, deterministic radiomics-style descriptor (intensity moments and percentiles, "
    "multi-scale band and gradient energies, GLCM, LBP, Haar wavelet energies, coarse layout) "
    "computed over the breast region: it measures what makes a mammogram realistic (grey-level "
    "distribution, parenchymal texture across scales, breast shape) without ImageNet weights "
    "trained on RGB photographs, and needs no download."
)
GLCM_DISTANCES = (1, 2, 4)
PYRAMID_LEVELS = 3
WAVELET_LEVELS = 3
LAYOUT_GRID = (6, 4)  # (rows, cols)
_EPS = 1e-4


def feature_names() -> list[str]:
    """Names of the descriptor's entries, in order."""
    names = ["int_mean", "int_sd", "int_skew", "int_kurt", "int_p05", "int_p25", "int_p50", "int_p75",
             "int_p95", "breast_fraction"]
    for lvl in range(PYRAMID_LEVELS):
        names += [f"band{lvl}_absmean", f"band{lvl}_sd", f"grad{lvl}_mean"]
    for d in GLCM_DISTANCES:
        names += [f"glcm_d{d}_{p}" for p in GLCM_PROPS]
    for r in (1, 2):
        names += [f"lbp_r{r}_{b}" for b in range(10)]
    for lvl in range(WAVELET_LEVELS):
        names += [f"haar{lvl}_{o}" for o in ("h", "v", "d")]
    names += [f"layout_{i}_{j}" for i in range(LAYOUT_GRID[0]) for j in range(LAYOUT_GRID[1])]
    return names


DIM = len(feature_names())
#: columns holding the GLCM statistics reported by :mod:`.texture` (distance 1)
TEXTURE_COLUMNS = [feature_names().index(f"glcm_d1_{p}") for p in REPORTED_PROPS]


@dataclass(frozen=True)
class FeatureSettings:
    """Preprocessing of the descriptor; part of the cache key."""

    size: tuple[int, int] = (256, 160)  # (H, W) every image is resized to
    background_threshold: float = 0.04  # breast = pixels above this ([0, 1] scale)
    thumb_size: tuple[int, int] = (64, 40)  # (H, W) thumbnails for SSIM
    glcm_levels: int = 32

    def __post_init__(self) -> None:
        h, w = self.size
        if min(h, w) < 32:
            raise ValueError(f"feature size must be at least 32x32 pixels, got {self.size}")
        if not 0.0 <= self.background_threshold < 1.0:
            raise ValueError(f"background_threshold must be in [0, 1), got {self.background_threshold}")
        if min(self.thumb_size) < 11:
            raise ValueError(f"thumb_size must be at least 11x11 (SSIM window), got {self.thumb_size}")


def resize01(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8/uint16/float image -> float32 [0, 1] resized to ``size`` (H, W), antialiased bilinear."""
    from .images import resize, to01

    return resize(to01(img), size, "bilinear")


def _box(x: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(x, dtype=np.float32), mode="F")
                      .resize((w, h), Image.Resampling.BOX), dtype=np.float64)


def _masked(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    v = values[mask]
    return v if v.size >= 4 else values.ravel()


def describe_image(img: np.ndarray, threshold: float = 0.04) -> np.ndarray:
    """The ``DIM``-vector mammo-texture descriptor of a [0, 1] float image (finite values)."""
    from scipy import ndimage
    from skimage.feature import local_binary_pattern

    img = np.asarray(img, dtype=np.float32)
    if img.ndim != 2 or min(img.shape) < 32:
        raise ValueError(f"describe_image: expected a 2-D image of at least 32x32, got shape {img.shape}")
    if not np.isfinite(img).all():
        raise ValueError("describe_image: image contains NaN or infinity")
    h, w = img.shape
    small = _box(img, h // 2, w // 2)
    mask = small > threshold
    if mask.sum() < 16:  # no breast found: describe the whole image
        mask = np.ones_like(mask)
    out: list[float] = []
    # intensity
    v = small[mask]
    mu, sd = float(v.mean()), float(v.std())
    z = (v - mu) / sd if sd > 1e-8 else np.zeros_like(v)
    out += [mu, sd, float((z ** 3).mean()), float((z ** 4).mean() - 3.0) if sd > 1e-8 else 0.0]
    out += [float(p) for p in np.percentile(v, (5, 25, 50, 75, 95))]
    out.append(float(mask.mean()))
    # multi-scale band and gradient energies
    g, m = small, mask
    for _ in range(PYRAMID_LEVELS):
        blur = ndimage.gaussian_filter(g, 1.0, mode="nearest")
        band = _masked(g - blur, m)
        grad = _masked(np.hypot(ndimage.sobel(g, 0, mode="nearest"), ndimage.sobel(g, 1, mode="nearest")), m)
        out += [np.log(np.abs(band).mean() + _EPS), np.log(band.std() + _EPS), np.log(grad.mean() + _EPS)]
        g, m = blur[::2, ::2], m[::2, ::2]
    # GLCM
    out += glcm_features(small, mask, distances=GLCM_DISTANCES).ravel().tolist()
    # LBP
    u8 = np.rint(small * 255).astype(np.uint8)
    for r in (1, 2):
        codes = local_binary_pattern(u8, 8, r, method="uniform")[mask].astype(np.int64)
        hist = np.bincount(codes, minlength=10)[:10].astype(np.float64)
        out += (hist / max(hist.sum(), 1.0)).tolist()
    # Haar wavelet detail energies
    a = small
    for _ in range(WAVELET_LEVELS):
        a = a[: a.shape[0] // 2 * 2, : a.shape[1] // 2 * 2]
        tl, tr, bl, br = a[0::2, 0::2], a[0::2, 1::2], a[1::2, 0::2], a[1::2, 1::2]
        for d in ((tl + tr - bl - br) / 2, (tl - tr + bl - br) / 2, (tl - tr - bl + br) / 2):
            out.append(float(np.log((d * d).mean() + 1e-8)))
        a = (tl + tr + bl + br) / 2
    # layout
    out += _box(img, *LAYOUT_GRID).ravel().tolist()
    vec = np.asarray(out, dtype=np.float64)
    if vec.shape != (DIM,) or not np.isfinite(vec).all():  # a bug, never user input
        raise RuntimeError(f"describe_image produced {vec.shape} values, finite={np.isfinite(vec).all()}")
    return vec


@dataclass
class SetFeatures:
    """Everything the image metrics need from one set (all arrays aligned with ``ids``)."""

    ids: list[str]
    indices: np.ndarray  # record indices in the dataset
    features: np.ndarray  # [N, DIM]
    hist: np.ndarray  # [N_BINS] pooled breast-pixel histogram
    sums: np.ndarray  # [5] pooled power sums n, S1..S4
    thumbs: np.ndarray  # [N, h, w] float32 thumbnails
    from_cache: bool = False

    @property
    def texture(self) -> np.ndarray:
        """Per-image GLCM statistics at distance 1, ``[N, 4]`` (see :mod:`.texture`)."""
        return self.features[:, TEXTURE_COLUMNS]

    def __len__(self) -> int:
        return len(self.ids)


def select_indices(n: int, max_images: int | None, seed: int) -> np.ndarray:
    """All indices, or a seeded random subset of ``max_images`` (sorted)."""
    if max_images is None or n <= max_images:
        return np.arange(n)
    if max_images < 1:
        raise ValueError(f"max_images must be >= 1, got {max_images}")
    return np.sort(np.random.default_rng(seed).choice(n, max_images, replace=False))


def _indices_digest(indices: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]


def extract_set(ds: Any, settings: FeatureSettings = FeatureSettings(), max_images: int | None = None,
                seed: int = 0, cache: FeatureCache | None = None, desc: str = "features") -> SetFeatures:
    """Descriptors, pooled intensity histogram and thumbnails of a :class:`PreparedDataset`.

    Served from ``cache`` when the same images were described with the same settings before
    (then no image is decoded); otherwise images come from ``ds``'s shared resized view
    (:class:`~mammosynth.metrics.images.EvalImages`, one is made when ``ds`` is a plain dataset).
    """
    from ..utils import progress
    from .images import as_eval_images, resize

    if len(ds) == 0:
        raise ValueError(f"{getattr(ds, 'root', ds)}: dataset has no images")
    idx = select_indices(len(ds), max_images, seed)
    ids = [ds[int(i)].image_id for i in idx]
    key = cache_key(kind="set-features", extractor=EXTRACTOR_NAME, version=EXTRACTOR_VERSION,
                    settings=asdict(settings), content=ds.content_hash, indices=_indices_digest(idx),
                    n_bins=N_BINS)
    if cache is not None:
        hit = cache.load(key)
        if hit is not None and hit["features"].shape == (len(idx), DIM):
            return SetFeatures(ids=ids, indices=idx, features=hit["features"], hist=hit["hist"],
                               sums=hit["sums"], thumbs=hit["thumbs"], from_cache=True)
    th, tw = settings.thumb_size
    feats = np.empty((len(idx), DIM))
    thumbs = np.empty((len(idx), th, tw), dtype=np.float32)
    hist = np.zeros(N_BINS)
    sums = np.zeros(5)
    imgs = as_eval_images(ds)
    for n, i in enumerate(progress(idx, total=len(idx), desc=desc)):
        img = imgs.resized(int(i), settings.size)
        feats[n] = describe_image(img, settings.background_threshold)
        h, s = intensity_summary(img, settings.background_threshold)
        hist += h
        sums += s
        thumbs[n] = resize(img, settings.thumb_size)
    if cache is not None:
        cache.save(key, {"features": feats, "hist": hist, "sums": sums, "thumbs": thumbs})
    return SetFeatures(ids=ids, indices=idx, features=feats, hist=hist, sums=sums, thumbs=thumbs)


def standardise(reference: np.ndarray, *others: np.ndarray, pooled: bool = False) -> list[np.ndarray]:
    """z-score every matrix with the reference's per-feature mean and SD (SD 0 -> 1), or
    with those of all the matrices together (``pooled``). Pooled statistics keep a feature
    that is (nearly) constant in the reference but not elsewhere (e.g. a layout cell that
    is background in every real image) from outweighing all the others in a distance
    between the sets."""
    basis = np.concatenate([reference, *others]) if pooled else reference
    mu = basis.mean(axis=0)
    sd = basis.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return [(reference - mu) / sd] + [(o - mu) / sd for o in others]
