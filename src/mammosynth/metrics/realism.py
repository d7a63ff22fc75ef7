"""Realism of synthetic mammograms: one entry point for the report and the benchmarks.

:func:`realism_metrics` runs the three measures of issue 15 on in-memory arrays:

* **detectability** (:mod:`.detectability`): out-of-fold AUC of a small CNN telling
  synthetic from real films, against the real-vs-real floor; it decides the verdict;
* **texture spectrum** (:mod:`.spectrum`): the power-law exponent beta of breast tissue
  (real films ~3; over-smooth synthetic tissue is steeper);
* **fine detail** (:mod:`.detail`): high-pass (Laplacian) energy of the breast, synthetic /
  real;
* **local texture statistics** (:mod:`.local_texture`): skewness and kurtosis of the fine
  residual, orientation coherence, grain anisotropy, each as an AUC of per-image values
  (they explain, and never change, the verdict);
* **breast outline** (:mod:`.outline`): the share of synthetic breasts shaped unlike any
  real film, and of skin lines more jagged than real ones.

Verdict (:class:`RealismVerdict`): the detectability rule decides pass / warn / fail
(:meth:`.detectability.DetectabilityTest.verdict`); a spectrum or detail difference that is
both clear (its CI excludes "no difference") and large (|delta beta| >= ``beta_tolerance``, or
the energy ratio outside [1 / ``detail_tolerance``, ``detail_tolerance``]) raises a pass to
warn, never to fail: they say *why* films look synthetic, the classifier says *whether*. So
does an outline rate (atypical shape, ragged skin line) whose CI lies wholly above
``outline_tolerance``: anatomy a reader rejects at a glance, which the classifier weighs little.

:func:`realism_sheet` draws native-resolution breast crops, real above synthetic, for the
eye. Strata come from the records: ``density`` (A-D, unknown) and ``finding`` (none, the
finding kind, or "mixed" for films with findings of several kinds).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..data.schema import ImageRecord
from .detail import DetailResult, detail_comparison, highpass_energy
from .cache import FeatureCache, cache_key
from .detectability import DetectabilityConfig, DetectabilityResult, DetectabilityTest, detectability_test
from .local_texture import STATISTICS, LocalTextureResult, local_texture_comparison, local_texture_statistics
from .outline import FEATURES as OUTLINE_FEATURES, OutlineResult, outline_comparison, outline_features
from .spectrum import SpectrumResult, spectral_exponents, spectrum_comparison
from .twosample import check_stack, default_erosion, erode_masks, patches_inside

STRATA_AXES = ("density", "finding")
VERDICTS = ("pass", "warn", "fail")


@dataclass(frozen=True)
class RealismConfig:
    """Settings of :func:`realism_metrics` (defaults used by ``mammosynth evaluate``)."""

    detectability: DetectabilityConfig = DetectabilityConfig()
    #: spectrum patch side, stride and fit band (bins of cycles/patch, lo inclusive, hi
    #: exclusive); None: chosen from the image size by :meth:`spectrum_settings`
    patch: int | None = None
    stride: int | None = None
    erode: int | None = None
    fit: tuple[int, int] | None = None
    strata: tuple[str, ...] = STRATA_AXES
    #: seed and replicates of the spectrum / detail bootstraps (the classifier's own are in
    #: ``detectability``)
    seed: int = 0
    n_boot: int = 1000
    margin: float = 0.10
    #: |median beta difference| from which a clear spectrum difference warns
    beta_tolerance: float = 0.5
    #: high-pass energy ratio outside [1/t, t] with a CI excluding 1 warns
    detail_tolerance: float = 2.0
    #: outline rates count synthetic images above this quantile of the real films' values
    outline_quantile: float = 0.95
    #: an outline rate whose CI lies wholly above this share warns (real films: ~1 - quantile)
    outline_tolerance: float = 0.10

    def __post_init__(self) -> None:
        unknown = set(self.strata) - set(STRATA_AXES)
        if unknown:
            raise ValueError(f"unknown strata axes {sorted(unknown)}; expected some of {STRATA_AXES}")
        if not (0 < self.margin < 0.5) or self.detail_tolerance <= 1 or self.beta_tolerance <= 0:
            raise ValueError("margin must be in (0, 0.5), detail_tolerance > 1 and beta_tolerance > 0")
        if not (0.5 <= self.outline_quantile < 1) or not (1 - self.outline_quantile <= self.outline_tolerance < 1):
            raise ValueError(f"outline_quantile must be in [0.5, 1) and outline_tolerance in [1 - quantile, 1), got "
                             f"{self.outline_quantile}, {self.outline_tolerance}")
        if self.patch is not None and self.patch < 8 or self.stride is not None and self.stride < 1:
            raise ValueError(f"patch must be >= 8 and stride >= 1, got {self.patch}, {self.stride}")

    def spectrum_settings(self, shape: Sequence[int]) -> SpectrumSettings:
        """Patch, stride and fit band of the spectrum for images of ``shape`` ([N,] H, W).

        Given values are honoured (a given patch without stride or fit takes those of
        :data:`PATCH_BANDS`); ``None`` takes the automatic choice: 32-px patches (stride
        16, fit bins (2, 12)) when the smaller image side is >= :data:`LARGE_PATCH_MIN_SIDE`,
        else 16-px patches (stride 8, fit (2, 7)). Why: a 32-px patch never fits inside the
        eroded breast of a 40-px-wide film (64x40: beta NaN on both sides), while phantom
        films of 128x80 hold one in every image. At 16 px the fit keeps lo = 2 (bins 0-1 are
        the Hann window's main lobe around the removed mean, a matter of bins, not of
        cycles/pixel) and ends at bin 6 (0.375 cycles/pixel, near 32's 0.34); on power-law
        fields (tests/metrics/test_realism.py) patch 16 with fit (2, 7) reads beta 2/3/4/6
        as 1.98/2.84/3.77/5.88 (patch 32: 2.01/2.93/3.88/5.91), while (1, 7), the band
        scaled by cycles/pixel, reads 1.99/2.72/3.51/5.31. Exponents from different patch
        sizes are not comparable with each other; both sides of a comparison use the same.
        """
        small = min(int(v) for v in tuple(shape)[-2:]) < LARGE_PATCH_MIN_SIDE
        patch = (16 if small else 32) if self.patch is None else int(self.patch)
        # stride and band of a patch without them: the table's, else half the patch and the
        # band up to 3/8 cycles/pixel
        stride, fit = PATCH_BANDS.get(patch, (max(1, patch // 2), (2, max(4, 3 * patch // 8 + 1))))
        stride = stride if self.stride is None else int(self.stride)
        fit = fit if self.fit is None else (int(self.fit[0]), int(self.fit[1]))
        return SpectrumSettings(patch, int(stride), fit)


#: smallest image side (px) at which the spectrum uses 32-px patches (see
#: :meth:`RealismConfig.spectrum_settings`)
LARGE_PATCH_MIN_SIDE = 80
#: patch side -> (stride, fit band) of the automatic choices
PATCH_BANDS: dict[int, tuple[int, tuple[int, int]]] = {32: (16, (2, 12)), 16: (8, (2, 7))}


@dataclass(frozen=True)
class SpectrumSettings:
    """The spectrum's resolved patch side, stride and fit band (reported with the result)."""

    patch: int
    stride: int
    fit: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {"patch": self.patch, "stride": self.stride, "fit": list(self.fit)}

    def describe(self) -> str:
        return (f"{self.patch}-px patches (stride {self.stride}), fit over {self.fit[0]}-{self.fit[1] - 1} "
                "cycles/patch")


def finding_stratum(record: ImageRecord) -> str:
    """"none", the kind of the film's findings, or "mixed" when they are of several kinds."""
    kinds = {f.kind for f in record.findings}
    if not kinds:
        return "none"
    return kinds.pop() if len(kinds) == 1 else "mixed"


def record_strata(records: Sequence[ImageRecord] | None, axes: Sequence[str] = STRATA_AXES
                  ) -> dict[str, np.ndarray] | None:
    """``{axis: labels}`` for the records (None without records or axes)."""
    if records is None or not axes:
        return None
    get = {"density": lambda r: r.density, "finding": finding_stratum}
    return {a: np.array([get[a](r) for r in records], dtype=str) for a in axes}


@dataclass(frozen=True)
class RealismVerdict:
    """"pass" | "warn" | "fail" and the sentences behind it."""

    status: str
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class RealismResult:
    """Detectability, texture spectrum and fine-detail comparison of one synthetic set."""

    detectability: DetectabilityTest
    spectrum: SpectrumResult
    detail: DetailResult
    verdict: RealismVerdict
    seconds: float
    config: RealismConfig = field(default_factory=RealismConfig, repr=False)
    #: the real side (floor, real exponents and energies) came from the feature cache
    real_side_cached: bool = False
    #: the spectrum's patch, stride and fit band used (resolved from ``config`` and the size)
    spectrum_settings: SpectrumSettings | None = None
    #: local texture statistics on the spectrum's patches (None: results made without them)
    local_texture: LocalTextureResult | None = None
    #: atypical breast shapes and ragged skin lines (None: results made without them)
    outline: OutlineResult | None = None

    def to_dict(self) -> dict[str, Any]:
        spectrum = self.spectrum.to_dict()
        if self.spectrum_settings is not None:
            spectrum["settings"] = {**self.spectrum_settings.to_dict(), "text": self.spectrum_settings.describe()}
        return {"detectability": self.detectability.to_dict(self.config.margin),
                "spectrum": spectrum, "detail": self.detail.to_dict(),
                "local_texture": None if self.local_texture is None else self.local_texture.to_dict(),
                "outline": None if self.outline is None else self.outline.to_dict(),
                "verdict": self.verdict.to_dict(), "seconds": round(self.seconds, 2),
                "real_side_cached": self.real_side_cached}


def realism_verdict(det: DetectabilityTest, spec: SpectrumResult, detail: DetailResult,
                    config: RealismConfig = RealismConfig(), outline: OutlineResult | None = None) -> RealismVerdict:
    """Combine the measures by the rule in the module docstring."""
    status = det.verdict(config.margin)
    reasons = [det.reason(config.margin)]
    if spec.available and (spec.ci_low > 0 or spec.ci_high < 0) and abs(spec.diff_median) >= config.beta_tolerance:
        reasons.append(f"texture spectrum: synthetic beta {spec.synthetic.median:.2f} vs real {spec.real.median:.2f} "
                       f"(difference {spec.diff_median:+.2f}, CI [{spec.ci_low:+.2f}, {spec.ci_high:+.2f}]): "
                       f"{'over-smooth' if spec.diff_median > 0 else 'over-rough'} tissue")
        status = "warn" if status == "pass" else status
    t = config.detail_tolerance
    if detail.available and (detail.ci_high < 1 / t or detail.ci_low > t):
        reasons.append(f"fine detail: synthetic high-pass energy {detail.ratio:.0%} of real "
                       f"(CI [{detail.ci_low:.0%}, {detail.ci_high:.0%}])")
        status = "warn" if status == "pass" else status
    for name in outline.flagged(config.outline_tolerance) if outline is not None else []:
        r = outline.rates[name]
        what = {"atypical": "breasts shaped unlike any real film", "ragged": "skin lines more jagged than real films'",
                "fragmented": "breasts split into more than one run in more rows than real films'"}
        reasons.append(f"outline: {r.rate:.0%} of synthetic images have {what[name]} (CI [{r.ci_low:.0%}, "
                       f"{r.ci_high:.0%}], above {config.outline_tolerance:.0%}; real films {r.real_rate:.0%})")
        status = "warn" if status == "pass" else status
    return RealismVerdict(status, tuple(reasons))


# bump when the real side's measures change meaning (part of the cache key)
REAL_SIDE_VERSION = 4  # 2: local texture statistics; 3: outline features; 4: the split-row share


def _real_side_key(real_key: str, shape: tuple[int, ...], strata: dict[str, np.ndarray] | None,
                   groups: Sequence[str] | None, config: RealismConfig, spectrum: SpectrumSettings) -> str:
    """Cache key of the real side: the set's content, the labels behind strata and the floor's
    split, the image size and every setting (``repr`` of the frozen config, and the spectrum
    settings it resolved to: an automatic choice whose rule changes gives a new key)."""
    import hashlib

    h = hashlib.sha256()
    for name, arr in sorted((strata or {}).items()):
        h.update(name.encode() + b"\0" + "\n".join(arr.tolist()).encode())
    h.update(b"\1" + "\n".join(groups or []).encode())
    return cache_key(kind="realism-real-side", version=REAL_SIDE_VERSION, real=real_key, shape=list(shape),
                     labels=h.hexdigest(), config=repr(config), spectrum=spectrum.to_dict())


def realism_metrics(real_images: np.ndarray, real_masks: np.ndarray, real_records: Sequence[ImageRecord] | None,
                    syn_images: np.ndarray, syn_masks: np.ndarray, syn_records: Sequence[ImageRecord] | None,
                    config: RealismConfig = RealismConfig(), progress: bool = True,
                    real_groups: Sequence[str] | None = None, cache: FeatureCache | None = None,
                    real_key: str | None = None) -> RealismResult:
    """Detectability, texture spectrum and fine detail of ``syn_images`` against ``real_images``.

    Images float32 [N, H, W] in [0, 1] (one size for both sets), masks bool [N, H, W]
    (:func:`mammosynth.data.preprocess.breast_masks`). Records (optional) give the strata
    and, for the real set, the patient ids that keep one woman's films on one side of the
    real-vs-real floor (``real_groups`` overrides them).

    With ``cache`` and ``real_key`` (the real set's content hash), the real side (the
    real-vs-real floor, three of the four detectability tests at the default
    ``floor_splits``, and the real exponents and energies) is stored and reused for the next
    synthetic set evaluated against the same real set.
    """
    t0 = time.perf_counter()
    xr, mr = check_stack(real_images, real_masks, "real images")
    xs, ms = check_stack(syn_images, syn_masks, "synthetic images")
    for recs, x, name in ((real_records, xr, "real"), (syn_records, xs, "synthetic")):
        if recs is not None and len(recs) != len(x):
            raise ValueError(f"{name}: {len(recs)} records for {len(x)} images")
    sr, ss = record_strata(real_records, config.strata), record_strata(syn_records, config.strata)
    if sr is None or ss is None:
        sr = ss = None
    if real_groups is None and real_records is not None:
        real_groups = [r.patient_id for r in real_records]
    say = (lambda msg: print(f"realism: {msg}", flush=True)) if progress else (lambda msg: None)
    settings = config.spectrum_settings(xr.shape)
    key = None if cache is None or real_key is None else _real_side_key(real_key, xr.shape, sr, real_groups, config,
                                                                        settings)
    hit = cache.load(key) if key is not None else None
    say(f"texture spectrum ({settings.describe()}), fine detail, local texture statistics and breast outline")
    kw = dict(patch=settings.patch, stride=settings.stride, erode=config.erode, fit=settings.fit)
    beta_r = hit["beta"] if hit else spectral_exponents(xr, mr, **kw)
    energy_r = hit["energy"] if hit else highpass_energy(xr, mr, config.erode)
    spec = spectrum_comparison(beta_r, spectral_exponents(xs, ms, **kw), sr, ss, seed=config.seed,
                               n_boot=config.n_boot)
    lt_kw = dict(patch=settings.patch, stride=settings.stride, erode=config.erode)
    lt_r = {s: hit[f"local_texture.{s}"] for s in STATISTICS} if hit else local_texture_statistics(xr, mr, **lt_kw)
    local = local_texture_comparison(lt_r, local_texture_statistics(xs, ms, **lt_kw), seed=config.seed,
                                     n_boot=config.n_boot)
    detail = detail_comparison(energy_r, highpass_energy(xs, ms, config.erode), sr, ss, seed=config.seed,
                               n_boot=config.n_boot)
    ol_r = {f: hit[f"outline.{f}"] for f in OUTLINE_FEATURES} if hit else outline_features(mr)
    outline = outline_comparison(ol_r, outline_features(ms), config.outline_quantile, seed=config.seed,
                                 n_boot=config.n_boot)
    say("detectability (synthetic vs real" + (", the real-vs-real floor from the cache)" if hit else
                                                ", then the real-vs-real floor)"))
    floor = DetectabilityResult.from_arrays({k[6:]: v for k, v in hit.items() if k.startswith("floor.")}) if hit \
        else None
    det = detectability_test(xr, xs, sr, ss, config.detectability, real_groups=real_groups, progress=progress,
                             real_masks=mr, syn_masks=ms, floor=floor)
    if key is not None and not hit:
        cache.save(key, {"beta": np.asarray(beta_r), "energy": np.asarray(energy_r),
                         **{f"local_texture.{s}": np.asarray(v) for s, v in lt_r.items()},
                         **{f"outline.{f}": np.asarray(v) for f, v in ol_r.items()},
                         **{f"floor.{k}": v for k, v in det.floor.to_arrays().items()}})
    verdict = realism_verdict(det, spec, detail, config, outline)
    return RealismResult(det, spec, detail, verdict, time.perf_counter() - t0, config, real_side_cached=bool(hit),
                         spectrum_settings=settings, local_texture=local, outline=outline)


# -- the sheet ---------------------------------------------------------------------------
MIN_SHEET_CROP = 16


def _inside(masks: np.ndarray, crop: int) -> np.ndarray:
    """[N, H - crop + 1, W - crop + 1]: top-left corners of windows wholly inside ``masks``."""
    return patches_inside(masks, crop, 1)


def sheet_crop(masks: np.ndarray, crop: int, images_shape: tuple[int, ...] | None = None) -> int | None:
    """``crop`` if some image has a ``crop``-sized window inside its (eroded) breast, else
    the largest power of two >= 16 below it that has one (128 px films: the breast is ~35 px
    wide, no 64 px window fits); None when not even a 16 px window does."""
    m = erode_masks(masks, default_erosion(images_shape or masks.shape))
    c = crop
    while c >= MIN_SHEET_CROP:
        if c <= min(m.shape[1:]) and _inside(m, c).any():
            return c
        c = 1 << (int(c).bit_length() - 1) if c & (c - 1) else c // 2  # next power of two below
    return None


def _crops(images: np.ndarray, masks: np.ndarray, n: int, crop: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Up to ``n`` native-resolution ``crop`` x ``crop`` windows wholly inside the (eroded)
    breast, from different images picked at random, each at a random valid position."""
    if crop > min(images.shape[1:]):
        return []
    inside = _inside(erode_masks(masks, default_erosion(images.shape)), crop)
    out = []
    for i in rng.permutation(len(images)):
        pos = np.argwhere(inside[i])
        if len(pos):
            y, x = pos[rng.integers(len(pos))]
            out.append(images[i, y:y + crop, x:x + crop])
            if len(out) == n:
                break
    return out


def realism_sheet(real_images: np.ndarray, real_masks: np.ndarray, syn_images: np.ndarray, syn_masks: np.ndarray,
                  path: str | os.PathLike, n: int = 8, crop: int = 64, seed: int = 0, scale: int = 2) -> dict[str, Any]:
    """PNG: a row of ``n`` real breast crops over a row of ``n`` synthetic ones.

    Crops are ``crop`` x ``crop`` px at native resolution, wholly inside the eroded breast
    mask; the sheet is enlarged ``scale`` x by pixel replication only (no resampling, which
    would change the texture being judged). Both rows share one grey window (0.5 and 99.5
    percentiles of all crops), so a brightness or contrast difference stays visible. When
    no breast on a side holds a ``crop`` window, the largest power of two >= 16 that fits
    on both sides is used (:func:`sheet_crop`). Returns ``{"path", "n_real", "n_synthetic",
    "size", "crop"}`` (``crop``: the side used); raises ValueError when not even a 16 px
    window fits inside any breast of a side.
    """
    from PIL import Image, ImageDraw

    from ..data.contact_sheet import _font
    from ..utils import atomic_file

    rng = np.random.default_rng(seed)
    sides = []
    for name, (x, m) in (("real", (real_images, real_masks)), ("synthetic", (syn_images, syn_masks))):
        x, m = check_stack(x, m, f"{name} images")
        fit = sheet_crop(m, crop, x.shape)
        if fit is None:
            raise ValueError(f"{name}: no image has a {MIN_SHEET_CROP}x{MIN_SHEET_CROP} window inside the breast")
        sides.append((name, x, m))
        crop = min(crop, fit)
    rows = []
    for name, x, m in sides:
        c = _crops(x, m, n, crop, rng)
        if not c:
            raise ValueError(f"{name}: no image has a {crop}x{crop} window inside the breast")
        rows.append((name, c))
    lo, hi = np.percentile(np.concatenate([np.ravel(c) for _, cs in rows for c in cs]), [0.5, 99.5])
    label_w, gap = 80, 4
    w = label_w + n * (crop + gap)
    sheet = np.full((2 * (crop + gap) + gap, w), 255, dtype=np.uint8)
    for r, (_, cs) in enumerate(rows):
        for j, c in enumerate(cs):
            y0, x0 = gap + r * (crop + gap), label_w + j * (crop + gap)
            sheet[y0:y0 + crop, x0:x0 + crop] = np.clip((c - lo) / max(hi - lo, 1e-6) * 255, 0, 255).round()
    img = Image.fromarray(np.kron(sheet, np.ones((scale, scale), np.uint8)))
    draw = ImageDraw.Draw(img)
    for r, (name, _) in enumerate(rows):
        draw.text((6, (gap + r * (crop + gap) + crop // 2) * scale - 8), name, fill=0, font=_font(14))
    with atomic_file(path) as tmp:
        img.save(tmp)
    return {"path": str(path), "n_real": len(rows[0][1]), "n_synthetic": len(rows[1][1]), "size": list(img.size),
            "crop": crop}
