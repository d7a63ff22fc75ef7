"""The one label schema used by every mammosynth stage.

Every image, real or synthetic, is described by an :class:`ImageRecord`; lesions by
:class:`Finding`. Records serialise to one JSON object per line of a prepared
dataset's ``manifest.jsonl``.

Conventions
-----------
* Boxes are ``(x0, y0, x1, y1)`` in pixel coordinates of the stored image, origin at
  the top-left corner, ``x1``/``y1`` exclusive, floats.
* Patient ids are salted SHA-256 hashes (:func:`hash_patient_id`); the source id is
  never stored in clear.
* Breast density uses ACR BI-RADS 5th edition letters A-D or ``unknown``; the source
  value is kept in ``density_source``.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

SCHEMA_VERSION = 1

LATERALITIES = ("L", "R")
VIEWS = ("CC", "MLO", "other")
DENSITIES = ("A", "B", "C", "D", "unknown")
#: Lesion kinds. ``unspecified``: a lesion whose kind the source does not give (RSNA's
#: ``cancer == 1`` has neither kind nor box). It counts as a finding for the utility
#: tasks and the malignancy label, and is *unknown* on the ``finding`` condition axis
#: (a generator cannot be asked for it).
FINDING_KINDS = ("mass", "calcification", "distortion", "asymmetry", "unspecified")
PATHOLOGIES = ("benign", "malignant", "unknown")
SPLITS = ("train", "val", "test")

#: mini-MIAS background tissue -> ACR density. MIAS has three classes, roughly
#: BI-RADS I, II and III-IV (Oliver et al. 2008). Fatty -> A, fatty-glandular -> B,
#: dense-glandular -> C (the lower bound of III-IV, so that no film is labelled
#: "extremely dense" without evidence). The source letter is kept in
#: ``density_source`` so users can apply another rule.
MIAS_DENSITY = {"F": "A", "G": "B", "D": "C"}

#: Aliases accepted for finding kinds in user input and dataset labels.
FINDING_ALIASES = {
    "mass": "mass",
    "calcification": "calcification",
    "calc": "calcification",
    "calcifications": "calcification",
    "distortion": "distortion",
    "architectural distortion": "distortion",
    "architectural_distortion": "distortion",
    "arch": "distortion",
    "asymmetry": "asymmetry",
    "asym": "asymmetry",
    "focal asymmetry": "asymmetry",
    "unspecified": "unspecified",
    "lesion": "unspecified",
}


def _check(value: Any, allowed: tuple, name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def normalise_finding_kind(kind: str) -> str:
    """Map a finding label (any case, common aliases) to a :data:`FINDING_KINDS` value."""
    key = str(kind).strip().lower()
    if key not in FINDING_ALIASES:
        raise ValueError(f"unknown finding kind {kind!r}; expected one of {FINDING_KINDS}")
    return FINDING_ALIASES[key]


def hash_patient_id(source_dataset: str, raw_id: str, salt: str = "mammosynth") -> str:
    """Salted SHA-256 of a source patient id (16 hex chars); the raw id never leaves."""
    digest = hashlib.sha256(f"{salt}\x00{source_dataset}\x00{raw_id}".encode()).hexdigest()
    return digest[:16]


@dataclass(frozen=True)
class Finding:
    """One lesion: kind, pathology, box in stored-image pixels, optional mask file."""

    kind: str
    pathology: str = "unknown"
    box: tuple[float, float, float, float] | None = None
    mask: str | None = None  # path relative to the dataset root (8-bit PNG, 0/255)
    source_codes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.kind, FINDING_KINDS, "finding kind")
        _check(self.pathology, PATHOLOGIES, "pathology")
        if self.box is not None:
            if len(self.box) != 4:
                raise ValueError(f"box must have 4 numbers, got {self.box!r}")
            x0, y0, x1, y1 = (float(v) for v in self.box)
            if not (x1 > x0 and y1 > y0):
                raise ValueError(f"box must have x1 > x0 and y1 > y0, got {self.box!r}")
            object.__setattr__(self, "box", (x0, y0, x1, y1))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["box"] = list(self.box) if self.box is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Finding":
        box = d.get("box")
        return cls(
            kind=d["kind"],
            pathology=d.get("pathology", "unknown"),
            box=tuple(box) if box is not None else None,
            mask=d.get("mask"),
            source_codes=dict(d.get("source_codes") or {}),
        )


@dataclass(frozen=True)
class ImageRecord:
    """Everything known about one stored image (one manifest row)."""

    image_id: str
    patient_id: str
    laterality: str
    view: str
    density: str = "unknown"
    density_source: str | None = None
    findings: tuple[Finding, ...] = ()
    age: float | None = None
    source_dataset: str = "unknown"
    source_file: str | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    bit_depth: int = 16  # bit depth of the source image
    preprocessing: dict[str, Any] = field(default_factory=dict)
    split: str | None = None
    file: str | None = None  # stored image, relative to the dataset root
    sha256: str | None = None
    height: int | None = None
    width: int | None = None
    synthetic: bool = False
    generation: dict[str, Any] | None = None  # seed, checkpoint hash... for synthetic images

    def __post_init__(self) -> None:
        if not self.image_id or "/" in self.image_id or "\\" in self.image_id:
            raise ValueError(f"image_id must be a non-empty name without slashes, got {self.image_id!r}")
        _check(self.laterality, LATERALITIES, "laterality")
        _check(self.view, VIEWS, "view")
        _check(self.density, DENSITIES, "density")
        if self.split is not None:
            _check(self.split, SPLITS, "split")
        if self.bit_depth not in (8, 10, 12, 14, 16):
            raise ValueError(f"bit_depth must be 8, 10, 12, 14 or 16, got {self.bit_depth!r}")
        object.__setattr__(self, "findings", tuple(self.findings))

    @property
    def finding_kind(self) -> str:
        """The first finding's kind, or ``"none"``: the per-image finding label."""
        return self.findings[0].kind if self.findings else "none"

    @property
    def malignant(self) -> bool | None:
        """True if any finding is malignant, False if all are benign or none, None if unknown."""
        if not self.findings:
            return False
        if any(f.pathology == "malignant" for f in self.findings):
            return True
        if all(f.pathology == "benign" for f in self.findings):
            return False
        return None

    def replace(self, **changes: Any) -> "ImageRecord":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["findings"] = [f.to_dict() for f in self.findings]
        if self.pixel_spacing_mm is not None:
            d["pixel_spacing_mm"] = list(self.pixel_spacing_mm)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ImageRecord":
        check_fields(cls, d, "manifest")
        kw = dict(d)
        kw["findings"] = tuple(Finding.from_dict(f) for f in d.get("findings") or ())
        ps = d.get("pixel_spacing_mm")
        kw["pixel_spacing_mm"] = tuple(ps) if ps is not None else None
        return cls(**kw)


# -- conditioning vocabulary shared by generators, generate --mix and metrics ----------

#: Label axes a generator can be conditioned on, with their classes. ``finding`` uses
#: ``none`` for images without findings; an ``unspecified`` lesion is unknown there.
CONDITION_AXES: dict[str, tuple[str, ...]] = {
    "density": ("A", "B", "C", "D"),
    "finding": ("none",) + tuple(k for k in FINDING_KINDS if k != "unspecified"),
    "view": ("CC", "MLO"),
}


def condition_value(record: ImageRecord, axis: str) -> str | None:
    """The record's class on a conditioning axis, or None when unknown/unsupported."""
    if axis == "density":
        return record.density if record.density in CONDITION_AXES["density"] else None
    if axis == "finding":
        kind = record.finding_kind
        return kind if kind in CONDITION_AXES["finding"] else None
    if axis == "view":
        return record.view if record.view in CONDITION_AXES["view"] else None
    raise ValueError(f"unknown condition axis {axis!r}; expected one of {tuple(CONDITION_AXES)}")


def check_fields(cls: type, d: dict[str, Any], what: str) -> None:
    """Raise ValueError when ``d`` holds keys that are not fields of the dataclass ``cls``."""
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} fields {sorted(unknown)}")


def proportion_items(text: str, what: str, key: Callable[[str], str]) -> dict[str, float]:
    """Parse ``"K1:0.1,K2:0.4"`` into ``{key(K1): 0.1, ...}``; ``key`` validates (and may
    normalise) a raw key, raising ValueError. Each proportion must be a number in [0, 1]
    and each key appear once; sums are the caller's rule. Errors name ``what`` and the part."""
    out: dict[str, float] = {}
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if ":" not in part:
            raise ValueError(f"{what}: expected KEY:PROPORTION, got {part!r}")
        raw, _, val = part.partition(":")
        k = key(raw.strip())
        if k in out:
            raise ValueError(f"{what}: {k!r} given twice")
        try:
            p = float(val)
        except ValueError:
            raise ValueError(f"{what}: proportion for {k!r} is not a number: {val.strip()!r}") from None
        if not (0.0 <= p <= 1.0):
            raise ValueError(f"{what}: proportion for {k!r} must be in [0, 1], got {p:g}")
        out[k] = p
    return out


def parse_proportions(text: str, allowed: tuple[str, ...], what: str) -> dict[str, float]:
    """Parse ``"A:0.1,B:0.4"`` into a dict; keys must be in ``allowed``, values >= 0, sum 1.

    Raises ValueError naming the offending part.
    """

    def known(k: str) -> str:
        if k not in allowed:
            raise ValueError(f"{what}: unknown value {k!r}; expected one of {allowed}")
        return k

    out = proportion_items(text, what, known)
    if not out:
        raise ValueError(f"{what}: no proportions given")
    total = sum(out.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"{what}: proportions must sum to 1, got {total:g}")
    return out
