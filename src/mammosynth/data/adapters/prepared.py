"""Re-prepare an existing prepared dataset (e.g. the phantom's raw-orientation output).

Labels, patient ids (already hashed), splits and lesion masks are carried over; boxes are
in the stored image's pixels and follow the new preprocessing. The output keeps the
source's dataset kind (``phantom`` stays ``phantom``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..prepared import DATASET_JSON, MANIFEST, PreparedDataset
from ...io.paths import confine
from .base import LabelReject, RawFinding, SourceItem

NAME = "prepared"
DATASET = "prepared"


def detect(source: Path) -> bool:
    return (source / DATASET_JSON).is_file() and (source / MANIFEST).is_file()


def dataset_kind(source: Path) -> str:
    return PreparedDataset(source).kind


def scan(source: Path) -> Iterator[SourceItem | LabelReject]:
    ds = PreparedDataset(source)
    for r in ds:
        try:  # paths from the manifest stay inside the set (after '..' and symlinks)
            for rel in [r.file or ""] + [f.mask for f in r.findings if f.mask]:
                confine(source, rel, what="source")
        except ValueError as exc:
            yield LabelReject(r.file or r.image_id, str(exc))
            continue
        if r.file is None or not (source / r.file).is_file():
            yield LabelReject(r.file or r.image_id, "missing file: named in the manifest")
            continue
        findings = []
        for f in r.findings:
            findings.append(RawFinding(kind=f.kind, pathology=f.pathology, box=f.box,
                                       mask_path=source / f.mask if f.mask else None,
                                       source_codes=dict(f.source_codes)))
        prev = {"previous_preprocessing": r.preprocessing} if r.preprocessing else {}
        yield SourceItem(
            image_id=r.image_id, path=source / r.file, source_file=r.file, patient_hashed=r.patient_id,
            laterality=r.laterality, view=r.view, density=r.density, density_source=r.density_source,
            findings=findings, age=r.age, pixel_spacing_mm=r.pixel_spacing_mm, split=r.split,
            extra={"dataset": r.source_dataset, "preprocessing": prev},
        )
