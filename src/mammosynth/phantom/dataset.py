"""The phantom as a labelled repository: configuration, per-image rendering, dataset writing.

Women and images
----------------
Image ``i`` belongs to woman ``w = i // (2 * len(views))``; her images come in the
order ``views[0]`` R, ``views[0]`` L, ``views[1]`` R, ... (a screening exam). A woman's
density, age, breast size and compressed thickness are drawn from
``SeedSequence(seed, spawn_key=(0, w))``; everything else about image ``i`` (outline
jitter, tissue texture, finding, noise) from ``SeedSequence(seed, spawn_key=(1, i))``.
Image ``i`` is therefore identical whatever ``n`` (a dataset can be extended by a rerun
with a larger ``n``), and the whole set is reproducible from ``seed``.
The CC and MLO images of one breast are independent realisations (a lesion is not
co-registered between views).

Labels
------
* density: ACR A-D drawn per woman with the ``density`` proportions (must sum to 1).
* findings: each image has at most one finding; its kind is drawn per image with the
  ``findings`` probabilities (each in [0, 1], sum <= 1); the remainder 1 - sum is
  "no finding". Kinds: mass (circumscribed or spiculated, see ``spiculated_fraction``),
  calcification, distortion, asymmetry (focal; not in the default mix). Pathology
  follows the rule in :mod:`.lesions`.
* patient id: salted hash of (seed, woman); split by :func:`split_for_patient`.
* orientation: radiological display convention - R breast with the chest wall at the
  image's left edge, L breast at the right edge.
"""
from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..data.prepared import DatasetWriter, split_for_patient
from ..data.schema import (Finding, ImageRecord, hash_patient_id, normalise_finding_kind, parse_proportions,
                           proportion_items)
from ..utils import num_workers, progress
from .anatomy import Woman, build_anatomy, draw_woman
from .imaging import MU_20KEV, display_curve, expose, line_integral, to_uint16
from .lesions import Lesion, make_lesion

DENSITY_CODES = ("A", "B", "C", "D")
SIMULATED_FINDINGS = ("mass", "calcification", "distortion", "asymmetry")
PHANTOM_VIEWS = ("CC", "MLO")


def parse_findings(text: str) -> dict[str, float]:
    """Parse ``"mass:0.2,calcification:0.1"`` into per-image finding probabilities.

    Each proportion is in [0, 1] and their sum is <= 1; the remainder is "no finding".
    An empty string means no findings. Aliases (``calc``, ``arch``...) are accepted.
    """

    def simulated(k: str) -> str:
        try:
            kind = normalise_finding_kind(k)
        except ValueError:
            raise ValueError(f"findings: unknown kind {k!r}; expected one of {SIMULATED_FINDINGS}") from None
        if kind not in SIMULATED_FINDINGS:
            raise ValueError(f"findings: the phantom does not simulate {kind!r}; expected one of {SIMULATED_FINDINGS}")
        return kind

    out = proportion_items(text, "findings", simulated)
    total = sum(out.values())
    if total > 1.0 + 1e-9:
        raise ValueError(f"findings: proportions are per image and must sum to at most 1 "
                         f"(the rest is 'no finding'), got {total:g}")
    return out


def _as_spec(value: str | Mapping[str, float]) -> str:
    if isinstance(value, Mapping):
        return ",".join(f"{k}:{float(v):g}" for k, v in value.items())
    return str(value)


@dataclass(frozen=True)
class PhantomConfig:
    """Settings of the procedural phantom (defaults are the CLI's defaults)."""

    size: tuple[int, int] = (512, 320)  # (H, W) pixels
    seed: int = 0
    density: str = "A:0.1,B:0.4,C:0.4,D:0.1"  # ACR density proportions per woman, sum 1
    findings: str = "mass:0.2,calcification:0.1,distortion:0.05"  # per image, sum <= 1
    views: tuple[str, ...] = ("CC", "MLO")
    spiculated_fraction: float = 0.5  # share of masses that are spiculated
    fov_height_mm: float = 240.0  # detector height covered by the image (24 x 30 cm detector)
    fluence_per_mm2: float = 1.0e5  # quanta/mm^2 reaching the detector behind the breast
    blur_mm: float = 0.1  # detector PSF sigma
    electronic_noise: float = 5.0  # read noise sigma, quanta per pixel
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)

    def __post_init__(self) -> None:
        size = tuple(self.size)
        if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size):
            raise ValueError(f"size must be two integers (H, W), got {self.size!r}")
        if not all(32 <= int(v) <= 8192 for v in size):
            raise ValueError(f"size must be between 32 and 8192 pixels on each side, got {size}")
        object.__setattr__(self, "size", (int(size[0]), int(size[1])))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "density", _as_spec(self.density))
        object.__setattr__(self, "findings", _as_spec(self.findings))
        parse_proportions(self.density, DENSITY_CODES, "density")
        parse_findings(self.findings)
        views = tuple(v.strip() for v in self.views.split(",")) if isinstance(self.views, str) else tuple(self.views)
        if not views or any(v not in PHANTOM_VIEWS for v in views) or len(set(views)) != len(views):
            raise ValueError(f"views must be distinct values from {PHANTOM_VIEWS}, got {self.views!r}")
        object.__setattr__(self, "views", views)
        if not 0.0 <= self.spiculated_fraction <= 1.0:
            raise ValueError(f"spiculated_fraction must be in [0, 1], got {self.spiculated_fraction}")
        for name in ("fov_height_mm", "fluence_per_mm2"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("blur_mm", "electronic_noise"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        split_for_patient("x", tuple(self.split_fractions))
        object.__setattr__(self, "split_fractions", tuple(float(f) for f in self.split_fractions))

    @property
    def density_probs(self) -> dict[str, float]:
        return parse_proportions(self.density, DENSITY_CODES, "density")

    @property
    def finding_probs(self) -> dict[str, float]:
        return parse_findings(self.findings)

    @property
    def spacing_mm(self) -> float:
        """Square pixel size: the field-of-view height over the image height."""
        return self.fov_height_mm / self.size[0]

    def to_settings(self) -> dict:
        """JSON-ready settings (stored in dataset.json; a rerun must match them)."""
        d = asdict(self)
        d["size"], d["views"], d["split_fractions"] = list(self.size), list(self.views), list(self.split_fractions)
        return d


@dataclass
class PhantomSample:
    """One rendered phantom image with its ground truth, in display orientation."""

    image: np.ndarray  # uint16
    record: ImageRecord
    masks: dict[int, np.ndarray]  # finding index -> bool mask (DatasetWriter.add format)
    breast: np.ndarray  # bool, inside the skin line
    dense: np.ndarray  # bool, ground-truth dense area
    woman: Woman
    lesions: list[Lesion] = field(default_factory=list)
    #: bool, the pectoral muscle (MLO; empty for CC)
    pectoral: np.ndarray | None = None


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=key))


def image_labels(index: int, config: PhantomConfig) -> dict:
    """Woman, view, laterality and finding kind of image ``index`` (no rendering)."""
    if index < 0:
        raise ValueError(f"image index must be >= 0, got {index}")
    per = 2 * len(config.views)
    w, j = divmod(index, per)
    wrng = _rng(config.seed, 0, w)
    dens = config.density_probs
    codes = [c for c in DENSITY_CODES if c in dens]
    density = codes[int(wrng.choice(len(codes), p=np.array([dens[c] for c in codes]) / sum(dens.values())))]
    woman = draw_woman(wrng, density)
    irng = _rng(config.seed, 1, index)
    u = irng.random()
    kind, acc = "none", 0.0
    for k in SIMULATED_FINDINGS:
        acc += config.finding_probs.get(k, 0.0)
        if u < acc:
            kind = k
            break
    return {"woman_index": w, "woman": woman, "view": config.views[j // 2], "laterality": "RL"[j % 2],
            "finding": kind, "rng": irng}


def _box(mask: np.ndarray) -> tuple[float, float, float, float]:
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    r0, r1 = np.flatnonzero(rows)[[0, -1]]
    c0, c1 = np.flatnonzero(cols)[[0, -1]]
    return float(c0), float(r0), float(c1 + 1), float(r1 + 1)


def simulate_phantom(index: int, config: PhantomConfig = PhantomConfig()) -> PhantomSample:
    """Render image ``index`` of the phantom set defined by ``config``, with ground truth."""
    lab = image_labels(index, config)
    woman, rng = lab["woman"], lab["rng"]
    anat_rng, lesion_rng, noise_rng = (np.random.default_rng(s) for s in rng.bit_generator.seed_seq.spawn(3))
    s = config.spacing_mm
    anat = build_anatomy(anat_rng, woman, lab["view"], config.size, s)
    lesions = []
    if lab["finding"] != "none":
        lesions.append(make_lesion(lesion_rng, anat, lab["finding"], config.spiculated_fraction))
    extra = sum((les.extra for les in lesions), start=np.zeros(config.size, dtype=np.float32))
    p = line_integral(anat.thickness, anat.skin, anat.muscle, anat.gland, extra)
    gray = expose(p, noise_rng, s, woman.thickness_cm, config.fluence_per_mm2, config.blur_mm,
                  config.electronic_noise)
    breast, dense, pect = anat.breast, anat.dense, anat.pectoral
    masks = [les.mask for les in lesions]
    if lab["laterality"] == "L":  # chest wall at the right edge
        gray, breast, dense, pect = gray[:, ::-1], breast[:, ::-1], dense[:, ::-1], pect[:, ::-1]
        masks = [m[:, ::-1] for m in masks]
    image = to_uint16(np.ascontiguousarray(gray))
    findings = tuple(
        Finding(kind=les.kind, pathology=les.pathology, box=_box(m),
                source_codes={"subtype": les.subtype, **les.params})
        for les, m in zip(lesions, masks)
    )
    pid = hash_patient_id("phantom", f"seed{config.seed}-woman{lab['woman_index']}")
    t = np.maximum(anat.thickness - anat.skin, 0)
    record = ImageRecord(
        image_id=f"phantom-{index:06d}",
        patient_id=pid,
        laterality=lab["laterality"],
        view=lab["view"],
        density=woman.density,
        density_source=f"phantom:{woman.density}",
        findings=findings,
        age=woman.age,
        source_dataset="phantom",
        pixel_spacing_mm=(s, s),
        bit_depth=16,
        split=split_for_patient(pid, config.split_fractions),
        synthetic=False,
        generation={
            "generator": "mammosynth.phantom",
            "mammosynth_version": __version__,
            "seed": config.seed,
            "index": index,
            "woman": lab["woman_index"],
            "compressed_thickness_cm": round(woman.thickness_cm, 3),
            "percent_dense_area": round(float(dense.sum() / max(breast.sum(), 1)), 4),
            "volumetric_glandular_fraction": round(float(anat.gland.sum() / max(t.sum(), 1e-9)), 4),
        },
    )
    return PhantomSample(image, record, {k: np.ascontiguousarray(m) for k, m in enumerate(masks)},
                         np.ascontiguousarray(breast), np.ascontiguousarray(dense), woman, lesions,
                         np.ascontiguousarray(pect))


def render_phantom(index: int, config: PhantomConfig = PhantomConfig()
                   ) -> tuple[np.ndarray, ImageRecord, dict[int, np.ndarray]]:
    """Image ``index`` as ``(uint16 image, ImageRecord, {finding index: bool mask})``, no disk."""
    sample = simulate_phantom(index, config)
    return sample.image, sample.record, sample.masks


# -- simple density measure ------------------------------------------------------------

def _level_for_gland_fraction(g: float, thickness_cm: float = 5.0) -> float:
    """Grey level (0-1) of a full-thickness region whose path is a fraction ``g`` glandular."""
    skin = 0.3
    inner = thickness_cm - skin
    p = MU_20KEV["fat"] * inner * (1 - g) + MU_20KEV["gland"] * inner * g + MU_20KEV["skin"] * skin
    return float(display_curve(np.float32(p / (MU_20KEV["gland"] * thickness_cm))))


#: grey level separating dense from fatty tissue in phantom images: a region whose
#: path is 25 % glandular at 5 cm compressed thickness.
DENSE_LEVEL = _level_for_gland_fraction(0.25)
#: grey level below which a pixel is air (background).
AIR_LEVEL = 0.02


def _gray(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32)
    raise ValueError(f"expected a uint8, uint16 or float image, got {image.dtype}")


def breast_mask(image: np.ndarray, level: float = AIR_LEVEL) -> np.ndarray:
    """Pixels brighter than air (``level`` of full scale): the breast of a phantom image."""
    return _gray(image) > level


def percent_dense_area(image: np.ndarray, breast: np.ndarray | None = None, level: float = DENSE_LEVEL) -> float:
    """Fraction (0-1) of breast pixels brighter than ``level`` (of full scale).

    ``breast`` defaults to :func:`breast_mask`. The default level is calibrated for
    phantom images (see :data:`DENSE_LEVEL`); pass another level for other images.
    """
    g = _gray(image)
    if breast is None:
        breast = breast_mask(g)
    breast = np.asarray(breast, dtype=bool)
    if breast.shape != g.shape:
        raise ValueError(f"breast mask shape {breast.shape} differs from image {g.shape}")
    n = int(breast.sum())
    if n == 0:
        raise ValueError("breast mask is empty")
    return float((g[breast] >= level).sum() / n)


# -- the dataset -----------------------------------------------------------------------

def _render_job(job: tuple[int, PhantomConfig]):
    return render_phantom(*job)


def make_phantom_dataset(out: str | Path, n: int, config: PhantomConfig = PhantomConfig(),
                         workers: int | None = None) -> Path:
    """Write ``n`` phantom images (indices 0..n-1) as a prepared dataset (kind ``phantom``).

    Parallel over ``workers`` processes (default: the cores available); a rerun skips
    images already written, and a rerun with a larger ``n`` extends the set.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    workers = num_workers(workers)
    out = Path(out)
    source = {"name": "mammosynth procedural phantom", "generator": "mammosynth.phantom",
              "mammosynth_version": __version__}
    writer = DatasetWriter(out, kind="phantom", source=source, settings=config.to_settings())
    todo = [i for i in range(n) if not writer.has(f"phantom-{i:06d}")]
    try:
        jobs = [(i, config) for i in todo]
        if workers == 1 or len(todo) <= 2:
            results = map(_render_job, jobs)
            pool = None
        else:
            pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)))
            chunk = max(1, min(16, len(todo) // (4 * workers)))
            results = pool.map(_render_job, jobs, chunksize=chunk)
        try:
            for image, record, masks in progress(results, total=len(todo), desc="phantom"):
                writer.add(record, image, masks)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        writer.close()
    return out
