"""The image-metrics orchestrator: :func:`compute_image_metrics`.

One call computes every image-level metric of a synthetic set against a real set:
fidelity (FRD, Fréchet/KID in the mammo-texture space, FID/KID on InceptionV3 when a local
weights file is given), PRDC, intensity moments and histogram distances, GLCM texture,
label distributions, intra-set diversity (MS-SSIM) and memorisation (when the generator's
training set is given). Each metric that cannot be computed says why; nothing is NaN or
infinite, and the result is JSON-serialisable.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator

import numpy as np

from . import MetricUnavailable
from .cache import FeatureCache
from .features import (DIM, EXTRACTOR_NAME, EXTRACTOR_VERSION, EXTRACTOR_WHY, FeatureSettings, SetFeatures,
                       extract_set, standardise)
from .images import DecodeStore, as_eval_images
from .result import MetricResult


@dataclass(frozen=True)
class ImageMetricsConfig:
    """Settings of :func:`compute_image_metrics` (the CLI reuses these defaults)."""

    size: tuple[int, int] = (256, 160)  # (H, W) images are resized to for every metric
    background_threshold: float = 0.04  # breast = pixels above this ([0, 1] scale)
    thumb_size: tuple[int, int] = (64, 40)  # (H, W) thumbnails for memorisation SSIM
    max_images: int | None = 2000  # per set; a seeded random subset above this
    seed: int = 0
    k: int = 5  # PRDC neighbourhood size
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    cache_dir: str | None = None  # None: $MAMMOSYNTH_CACHE or ~/.cache/mammosynth
    use_cache: bool = True
    inception_weights: str | None = None  # local inception-2015-12-05.pt (TorchScript)
    inception_batch: int = 32
    frd: bool = True  # compute FRD (frd-score; slow: 0.2-1 s per image per core)
    frd_max_images: int | None = 500  # per set for FRD (seeded subset); None: max_images
    num_workers: int | None = None  # FRD radiomics processes; None: all cores
    ms_ssim_pairs: int = 200
    collapse_margin: float = 0.1  # mode collapse: synthetic MS-SSIM > real + margin
    memo_alpha: float = 0.01
    memo_ssim_threshold: float = 0.9
    memo_zero_fraction: float = 0.01
    memo_top_k: int = 5
    n_closest: int = 8

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.max_images is not None and self.max_images < 2:
            raise ValueError(f"max_images must be >= 2, got {self.max_images}")
        if self.ms_ssim_pairs < 1:
            raise ValueError(f"ms_ssim_pairs must be >= 1, got {self.ms_ssim_pairs}")
        if self.collapse_margin < 0:
            raise ValueError(f"collapse_margin must be >= 0, got {self.collapse_margin}")
        self.feature_settings()  # validates size/threshold/thumb_size

    def feature_settings(self) -> FeatureSettings:
        return FeatureSettings(size=tuple(self.size), background_threshold=self.background_threshold,
                               thumb_size=tuple(self.thumb_size))


def _guard(fn: Callable[[], MetricResult], **if_unavailable: Any) -> MetricResult:
    """Run one metric; ValueError / MetricUnavailable become a not-computed result with why."""
    try:
        return fn()
    except MetricUnavailable as exc:
        return MetricResult.unavailable(exc.reason, **if_unavailable)
    except ValueError as exc:
        return MetricResult.unavailable(str(exc), **if_unavailable)


def _section(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one block (intensity, texture...); on failure ``{"available": False, "reason"}``."""
    try:
        return {"available": True, "reason": None, **fn()}
    except (MetricUnavailable, ValueError) as exc:
        return {"available": False, "reason": getattr(exc, "reason", None) or str(exc)}


def _small_sample_note(n_real: int, n_syn: int, dim: int) -> dict[str, str]:
    n = min(n_real, n_syn)
    if n > dim:
        return {}
    return {"note": f"{n} images per set for {dim} feature dimensions: covariances are singular and the "
                    "value is biased upwards; compare only values computed at the same set sizes"}


def _frechet_kid(x: np.ndarray, y: np.ndarray, config: ImageMetricsConfig) -> tuple[MetricResult, MetricResult]:
    from .frechet import frechet_distance, kernel_inception_distance

    note = _small_sample_note(len(x), len(y), x.shape[1])
    fd = _guard(lambda: MetricResult.of(frechet_distance(x, y), **note))

    def kid() -> MetricResult:
        mean, std = kernel_inception_distance(x, y, config.kid_subsets, config.kid_subset_size, config.seed)
        extra = {}
        if len(x) == len(y) <= config.kid_subset_size:
            extra["note"] = (f"subsets of {len(x)} cover both whole sets, so every subset gives the same "
                             "estimate: std is 0 and says nothing about uncertainty")
        return MetricResult.of(mean, std=std, **extra)

    return fd, _guard(kid, std=None)


def _prdc(x: np.ndarray, y: np.ndarray, k: int) -> dict[str, Any]:
    from .prdc import prdc

    return _section(lambda: {**prdc(x, y, k), "k": k})


def _diversity(real: Any, rf: SetFeatures, synthetic: Any, sf: SetFeatures, config: ImageMetricsConfig,
               cache: FeatureCache) -> dict:
    from .cache import cache_key
    from .diversity import diversity_report, intra_set_ms_ssim

    def set_value(ds: Any, feats: SetFeatures) -> tuple[float, int, int]:
        key = cache_key(kind="ms-ssim", content=ds.content_hash, ids=feats.ids, size=list(config.size),
                        pairs=config.ms_ssim_pairs, seed=config.seed)
        hit = cache.load(key)
        if hit is not None:
            return float(hit["value"]), int(hit["pairs"]), int(hit["scales"])
        load = lambda i: ds.resized(int(feats.indices[i]), tuple(config.size))  # noqa: E731
        value, pairs, scales = intra_set_ms_ssim(load, len(feats), config.ms_ssim_pairs, config.seed)
        cache.save(key, {"value": np.array(value), "pairs": np.array(pairs), "scales": np.array(scales)})
        return value, pairs, scales

    def run() -> dict[str, Any]:
        mr, pr, scales = set_value(real, rf)
        ms, ps, _ = set_value(synthetic, sf)
        out = diversity_report(mr, ms, min(pr, ps), scales, config.collapse_margin)
        out.update(pairs_real=pr, pairs_synthetic=ps)
        return out

    out = _section(run)
    if not out["available"]:
        out.update(ms_ssim_real=None, ms_ssim_synthetic=None, pairs=0, mode_collapse=False,
                   message=f"diversity not computed: {out['reason']}")
    return out


def _memorization(train: Any, heldout: Any, sf: SetFeatures, config: ImageMetricsConfig, cache: FeatureCache,
                  settings: FeatureSettings) -> dict[str, Any]:
    from .memorization import MemorizationConfig, find_memorization

    if train is None:
        return {"available": False, "reason": "no training set given (train=None): memorisation not checked",
                "threshold": None, "n_flagged": 0, "flagged": [], "closest": [], "heldout_nn_quantiles": {}}

    def run() -> dict[str, Any]:
        mc = MemorizationConfig(alpha=config.memo_alpha, ssim_threshold=config.memo_ssim_threshold,
                                zero_fraction=config.memo_zero_fraction, top_k=config.memo_top_k,
                                n_closest=config.n_closest)
        tf = extract_set(train, settings, config.max_images, config.seed, cache, desc="features train")
        hf = None
        if heldout is not None:
            hf = extract_set(heldout, settings, config.max_images, config.seed, cache, desc="features held-out")
        return find_memorization(tf, sf, hf, mc)

    out = _section(run)
    if not out["available"]:
        out.update(threshold=None, n_flagged=0, flagged=[], closest=[], heldout_nn_quantiles={})
    return out


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round(time.perf_counter() - t0, 3)


def compute_image_metrics(real: Any, synthetic: Any, train: Any = None, heldout: Any = None,
                          config: ImageMetricsConfig = ImageMetricsConfig()) -> dict[str, Any]:
    """Every image-level metric of ``synthetic`` against ``real`` (PreparedDataset objects).

    ``train`` is the generator's training set (memorisation is skipped, with the reason, when
    None); ``heldout`` holds real images the generator never saw (calibrates the near-copy
    threshold). Returns a JSON-serialisable dict; see the README's "Image metrics" section.
    """
    from .intensity import intensity_report
    from .labels import compare_labels
    from .texture import texture_distance, texture_summary

    store = DecodeStore()
    real, synthetic = as_eval_images(real, store), as_eval_images(synthetic, store)
    train = as_eval_images(train, store) if train is not None else None
    heldout = as_eval_images(heldout, store) if heldout is not None else None
    timings: dict[str, float] = {}
    cache = FeatureCache(config.cache_dir, enabled=config.use_cache)
    settings = config.feature_settings()
    with _timed(timings, "features_real"):
        rf = extract_set(real, settings, config.max_images, config.seed, cache, desc="features real")
    with _timed(timings, "features_synthetic"):
        sf = extract_set(synthetic, settings, config.max_images, config.seed, cache, desc="features synthetic")

    with _timed(timings, "texture_space"):
        rz, sz = standardise(rf.features, sf.features, pooled=True)
        fd_tex, kid_tex = _frechet_kid(rz, sz, config)
        prdc_block: dict[str, Any] = {"texture": _prdc(rz, sz, config.k)}

    with _timed(timings, "frd"):
        if not config.frd:
            frd = MetricResult.unavailable("FRD disabled in the configuration (frd=False)")
        else:
            from .frd import compute_frd

            fmax = config.frd_max_images if config.frd_max_images is not None else config.max_images
            def _frd() -> MetricResult:
                res = compute_frd(real, synthetic, tuple(config.size), fmax, config.seed, cache, config.num_workers)
                return MetricResult.of(res.value, version="v1", top_features=res.top_features, note=res.note(),
                                       without_float_noise=res.without_float_noise,
                                       float_noise_features=res.float_noise_features)

            frd = _guard(_frd)

    with _timed(timings, "inception"):
        fid, kid_inc = _inception(real, synthetic, config, cache, prdc_block)

    with _timed(timings, "intensity"):
        intensity = _section(lambda: intensity_report(rf.hist, rf.sums, sf.hist, sf.sums))
    with _timed(timings, "texture"):
        texture = _section(lambda: {"real": texture_summary(rf.texture), "synthetic": texture_summary(sf.texture),
                                    "distance": texture_distance(rf.texture, sf.texture),
                                    "distance_kind": "mean |Cohen's d| over GLCM contrast, homogeneity, "
                                                     "energy, correlation (distance 1)"})
    with _timed(timings, "labels"):
        labels = _section(lambda: compare_labels(real.records, synthetic.records))
    with _timed(timings, "diversity"):
        diversity = _diversity(real, rf, synthetic, sf, config, cache)
    with _timed(timings, "memorization"):
        memorization = _memorization(train, heldout, sf, config, cache, settings)

    return {
        "fidelity": {"frd": frd.to_dict(), "fd_texture": fd_tex.to_dict(), "kid_texture": kid_tex.to_dict(),
                     "fid_inception": fid.to_dict(), "kid_inception": kid_inc.to_dict()},
        "prdc": prdc_block,
        "intensity": intensity,
        "texture": texture,
        "labels": labels,
        "diversity": diversity,
        "memorization": memorization,
        "extractor": {"name": EXTRACTOR_NAME, "version": EXTRACTOR_VERSION, "dim": DIM, "why": EXTRACTOR_WHY,
                      "settings": asdict(settings)},
        "n_images": {"real": len(rf), "synthetic": len(sf), "real_total": len(real), "synthetic_total": len(synthetic)},
        "cache": {"dir": str(cache.root), "enabled": cache.enabled, "hits": cache.hits, "misses": cache.misses},
        "config": asdict(config),
        "timings_s": timings,
    }


def _inception(real: Any, synthetic: Any, config: ImageMetricsConfig, cache: FeatureCache,
               prdc_block: dict[str, Any]) -> tuple[MetricResult, MetricResult]:
    """FID/KID (and PRDC) on InceptionV3 features, or not computed with the reason."""
    from .inception import inception_features, load_inception

    try:
        model = load_inception(config.inception_weights)
        fr = inception_features(real, config.inception_weights, config.max_images, config.seed, cache,
                                config.inception_batch, model=model, desc="inception real")
        fs = inception_features(synthetic, config.inception_weights, config.max_images, config.seed, cache,
                                config.inception_batch, model=model, desc="inception synthetic")
    except MetricUnavailable as exc:
        return MetricResult.unavailable(exc.reason), MetricResult.unavailable(exc.reason, std=None)
    fid, kid = _frechet_kid(fr, fs, config)
    prdc_block["inception"] = _prdc(fr, fs, config.k)
    return fid, kid
