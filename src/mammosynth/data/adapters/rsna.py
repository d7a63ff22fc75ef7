"""RSNA Screening Mammography: ``train.csv`` + ``train_images/<patient_id>/<image_id>.dcm``.

Columns used: patient_id, image_id, laterality, view, age, cancer, density (A-D or
empty), BIRADS, biopsy. RSNA gives no lesion boxes and no lesion kind: an image with
``cancer == 1`` gets one finding of kind ``unspecified``, pathology ``malignant``, no box
(a positive for the finding and malignancy tasks, unknown on the ``finding`` condition
axis). ``cancer == 0`` images get no finding (RSNA does not label benign lesions).
The source cancer, BIRADS, biopsy and invasive codes are kept in ``source_codes``.

Traits of the real files: views other than CC/MLO (``AT``, ``LM``, ``ML``, ``LMO``) ->
``other``, the source view kept in ``preprocessing["source_labels"]``; site 2 has no
density (-> unknown) and some rows no age; the DICOMs have no ``Modality``,
``ViewPosition`` or SOP Class (the file meta says DX; nothing requires MG); MONOCHROME1
films are padded with the maximum value (black after inversion, removed with the
background).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .base import (LabelReject, LayoutError, RawFinding, SourceItem, acr_density, csv_columns, image_files, laterality_code,
                   parse_float, read_csv, rel, require_columns, safe_id, view_code)

NAME = "rsna"
DATASET = "RSNA-Screening-Mammography"
REQUIRED = {"patient_id", "image_id", "laterality", "view", "cancer"}


def detect(source: Path) -> bool:
    p = source / "train.csv"
    return p.is_file() and REQUIRED <= set(csv_columns(p))


def _image_path(source: Path, pid: str, iid: str) -> Path | None:
    for base in (source / "train_images", source):
        for suffix in (".dcm", ".png"):
            p = base / pid / f"{iid}{suffix}"
            if p.is_file():
                return p
    return None


def scan(source: Path) -> Iterator[SourceItem | LabelReject]:
    csv_path = source / "train.csv"
    if not csv_path.is_file():
        raise LayoutError(f"{source}: no train.csv; not an RSNA folder")
    require_columns(csv_path, REQUIRED, csv_columns(csv_path))
    named: set[str] = set()
    for line, row in read_csv(csv_path):
        where = f"train.csv:{line}"
        pid, iid = row["patient_id"], row["image_id"]
        named.add(f"{pid}/{iid}")
        try:
            lat = laterality_code(row["laterality"])
            view = view_code(row["view"])
            density = acr_density(row.get("density", ""))
            age = parse_float(row["age"], "age") if row.get("age") and row["age"].lower() != "nan" else None
            cancer = row["cancer"].strip()
            if cancer not in ("0", "1", "0.0", "1.0"):
                raise ValueError(f"cancer must be 0 or 1, got {cancer!r}")
        except ValueError as exc:
            yield LabelReject(where, f"bad label row: {exc}")
            continue
        path = _image_path(source, pid, iid)
        if path is None:
            yield LabelReject(f"train_images/{pid}/{iid}.dcm", f"missing file: named by label row {where}")
            continue
        findings = []
        if cancer.startswith("1"):
            codes = {k: row[k] for k in ("cancer", "BIRADS", "biopsy", "invasive") if row.get(k) not in (None, "")}
            findings.append(RawFinding(kind="unspecified", pathology="malignant", source_codes=codes))
        extra = {"preprocessing": {"source_labels": {"view": row["view"]}}} if view == "other" else {}
        yield SourceItem(
            image_id=safe_id(f"rsna-{iid}"), path=path, source_file=rel(source, path), patient_raw=pid,
            laterality=lat, view=view, density=density, density_source=row.get("density") or None, age=age,
            findings=findings, extra=extra,
        )
    for path in image_files(source / "train_images"):
        if f"{path.parent.name}/{path.stem}" not in named:
            yield LabelReject(rel(source, path), "unlabelled: no row in train.csv")
