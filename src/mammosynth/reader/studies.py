"""Studies built from prepared datasets: case selection, truth, difficulty tiers.

A study draws ``n`` images from each source (a prepared dataset, optionally one split,
labelled real or synthetic). In detection and training studies the CC and MLO views of
one breast form one case when both were drawn; a real-vs-synthetic case is one image.
Truth (synthetic or not, lesion boxes and masks) is kept server-side and never sent
before an answer. Each case gets a difficulty tier computed from its labels:

* density: A/B 0, C 1, D 2 points;
* lesion size: box diagonal over the image's shorter side >= 0.15: 0, >= 0.06: 1, else 2;
* conspicuity: |mean inside the lesion - mean of a surrounding ring| / ring std
  >= 2: 0, >= 1: 1, else 2 (from the mask, or the box when no mask is stored).

Tier 1 (easy) <= 1 point, tier 2 (medium) 2-3, tier 3 (hard) >= 4; normal cases take
their density points only.
"""
from __future__ import annotations

import json
import secrets
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..data.prepared import PreparedDataset
from ..data.schema import ImageRecord

STUDY_KINDS = ("realsynth", "detection", "training")
SCALES = ("5point", "100")
SOURCE_LABELS = ("real", "synthetic")
MAX_SERVED = 2048  # longest served side in pixels; larger images are downscaled


@dataclass(frozen=True)
class Source:
    path: str  # PATH[:split]
    n: int
    label: str  # real | synthetic


@dataclass(frozen=True)
class StudySpec:
    name: str
    kind: str = "realsynth"
    scale: str = "5point"
    sources: tuple[Source, ...] = ()
    seed: int = 0
    group_views: bool = True

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("study name must not be empty")
        if self.kind not in STUDY_KINDS:
            raise ValueError(f"study kind must be one of {STUDY_KINDS}, got {self.kind!r}")
        if self.scale not in SCALES:
            raise ValueError(f"rating scale must be one of {SCALES}, got {self.scale!r}")
        if not self.sources:
            raise ValueError("a study needs at least one source dataset")
        if self.kind == "realsynth" and {s.label for s in self.sources} != set(SOURCE_LABELS):
            raise ValueError("a real-vs-synthetic study needs at least one real and one synthetic source")

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def parse_sources(text: str) -> tuple[Source, ...]:
    """Parse lines ``N PATH[:split] [as real|synthetic]``; the label defaults from the
    dataset kind (real -> real, synthetic/phantom -> synthetic)."""
    out = []
    for n_line, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        label = None
        if " as " in line:
            line, _, label = line.rpartition(" as ")
            label = label.strip().lower()
            if label not in SOURCE_LABELS:
                raise ValueError(f"source line {n_line}: label must be real or synthetic, got {label!r}")
        count, _, path = line.partition(" ")
        try:
            n = int(count)
        except ValueError:
            raise ValueError(f"source line {n_line}: expected 'N PATH [as real|synthetic]', got {line!r}") from None
        if n < 1 or not path.strip():
            raise ValueError(f"source line {n_line}: need a positive count and a dataset path")
        path = path.strip()
        if label is None:
            label = "real" if PreparedDataset(path).kind == "real" else "synthetic"
        out.append(Source(path, n, label))
    return tuple(out)


@dataclass
class CaseImagePlan:
    record: ImageRecord
    path: Path
    mask_paths: list[Path | None]


@dataclass
class CasePlan:
    label: str
    truth: dict
    tier: int
    images: list[CaseImagePlan]


def _conspicuity(image: np.ndarray, box, mask: np.ndarray | None) -> float:
    h, w = image.shape
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    inside = np.zeros((h, w), bool)
    if mask is not None and mask.shape == image.shape and mask.any():
        inside = mask
    else:
        inside[y0:y1, x0:x1] = True
    pad = max(4, (x1 - x0 + y1 - y0) // 4)
    ring = np.zeros((h, w), bool)
    ring[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad] = True
    ring &= ~inside
    if not ring.any():
        return 0.0
    img = image.astype(float)
    sd = img[ring].std() or 1.0
    return float(abs(img[inside].mean() - img[ring].mean()) / sd)


def difficulty(records: list[ImageRecord], images: list[np.ndarray], masks: list[list[np.ndarray | None]]) -> int:
    """Tier 1-3 from density, lesion size and conspicuity (see module docstring)."""
    dens = {"A": 0, "B": 0, "C": 1, "D": 2}
    pts = max(dens.get(r.density, 1) for r in records)
    lesion_pts = []
    for rec, img, ms in zip(records, images, masks):
        short = min(img.shape)
        for f, m in zip(rec.findings, ms):
            if f.box is None:
                continue
            diag = np.hypot(f.box[2] - f.box[0], f.box[3] - f.box[1]) / short
            size = 0 if diag >= 0.15 else 1 if diag >= 0.06 else 2
            c = _conspicuity(img, f.box, m)
            conspic = 0 if c >= 2 else 1 if c >= 1 else 2
            lesion_pts.append(size + conspic)
    if lesion_pts:
        pts += min(lesion_pts)
    return 1 if pts <= 1 else 2 if pts <= 3 else 3


def _group(records: list[ImageRecord], group_views: bool) -> list[list[ImageRecord]]:
    if not group_views:
        return [[r] for r in records]
    by_breast: dict[tuple, list[ImageRecord]] = defaultdict(list)
    for r in records:
        by_breast[(r.patient_id, r.laterality)].append(r)
    groups = []
    for rs in by_breast.values():
        rs = sorted(rs, key=lambda r: {"CC": 0, "MLO": 1}.get(r.view, 2))
        cc = [r for r in rs if r.view == "CC"][:1]
        mlo = [r for r in rs if r.view == "MLO"][:1]
        pair = cc + mlo
        groups.append(pair if pair else rs[:1])
        groups.extend([r] for r in rs if r not in pair)
    return groups


def plan_cases(spec: StudySpec) -> list[CasePlan]:
    """Draw the study's cases from its sources (deterministic in ``spec.seed``)."""
    rng = np.random.default_rng(spec.seed)
    plans: list[CasePlan] = []
    for si, src in enumerate(spec.sources):
        ds = PreparedDataset(src.path)
        if len(ds) == 0:
            raise ValueError(f"{src.path}: no images")
        group_views = spec.group_views and spec.kind != "realsynth"
        groups = _group(list(ds), group_views)
        if src.n > len(groups):
            raise ValueError(f"{src.path}: asked for {src.n} cases, it has {len(groups)}")
        for gi in sorted(rng.choice(len(groups), size=src.n, replace=False)):
            recs = groups[int(gi)]
            imgs = [ds.image(r) for r in recs]
            masks = [[ds.mask(r, k) for k in range(len(r.findings))] for r in recs]
            lesions = []
            for pos, r in enumerate(recs):
                for k, f in enumerate(r.findings):
                    if f.box is not None:
                        lesions.append({"image": pos, "finding": k, "kind": f.kind, "box": list(f.box)})
            truth = {"synthetic": src.label == "synthetic", "source": si, "lesions": lesions,
                     "abnormal": bool(lesions) or any(r.findings for r in recs)}
            tier = difficulty(recs, imgs, masks)
            images = [CaseImagePlan(r, ds.path_of(r), [ds.root / f.mask if f.mask else None for f in r.findings])
                      for r in recs]
            plans.append(CasePlan("/".join(r.image_id for r in recs) + f"@{si}", truth, tier, images))
    return plans


def new_token() -> str:
    """A random, unguessable id (nothing derived from the case or its file)."""
    return secrets.token_urlsafe(18)


def reader_order(n_cases: int, seed: int) -> list[int]:
    """The per-reader case order: a permutation of range(n_cases) fixed by the seed."""
    return [int(i) for i in np.random.default_rng(seed).permutation(n_cases)]


def served_scale(height: int, width: int) -> float:
    return max(1.0, max(height, width) / MAX_SERVED)


def lesions_in_box_space(truth: dict) -> list[dict]:
    return list(truth.get("lesions", []))


def stored_dims(path: Path) -> tuple[int, int]:
    from ..io.images import read_image

    arr, _ = read_image(path)
    return int(arr.shape[0]), int(arr.shape[1])
