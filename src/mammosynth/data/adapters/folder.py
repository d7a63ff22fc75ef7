"""A folder of images (PNG/JPEG/TIFF/PGM/DICOM, recursive) with an optional label CSV.

The CSV is ``labels.csv`` in SOURCE (or the only ``*.csv`` there). Columns (only
``file`` is required; one row per finding, several rows per image allowed)::

    file              image path relative to SOURCE
    patient_id        raw patient id (hashed on ingest); default: DICOM PatientID or file stem
    laterality        L / R (empty: inferred from the image)
    view              CC / MLO / other
    density           A-D or 1-4 (empty: unknown)
    age               years
    finding           mass / calcification / distortion / asymmetry (aliases ok); none or empty
    pathology         benign / malignant / unknown
    x0, y0, x1, y1    lesion box in source pixels, origin top-left (all four or none)
    mask              binary ROI mask path relative to SOURCE (box taken from it)
    pixel_spacing_mm  source pixel size in mm (square pixels)

Without a CSV every image is ingested with unknown labels. With one, images it does not
name are rejected as unlabelled.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...io.paths import confine
from ..schema import PATHOLOGIES, normalise_finding_kind
from .base import (LabelReject, RawFinding, SourceItem, acr_density, csv_columns, image_files,
                   laterality_code, parse_float, read_csv, rel, require_columns, safe_id, view_code)

NAME = "folder"
DATASET = "folder"
COLUMNS = ("file", "patient_id", "laterality", "view", "density", "age", "finding", "pathology",
           "x0", "y0", "x1", "y1", "mask", "pixel_spacing_mm")


def label_csv(source: Path) -> Path | None:
    if (source / "labels.csv").is_file():
        return source / "labels.csv"
    csvs = sorted(source.glob("*.csv"))
    return csvs[0] if len(csvs) == 1 else None


def detect(source: Path) -> bool:
    return source.is_dir()


def _image_id(source: Path, path: Path) -> str:
    r = Path(rel(source, path))
    return safe_id(str(r.with_suffix("")).replace("/", "__"))


def _row_finding(source: Path, row: dict[str, str]) -> RawFinding | None:
    kind = row.get("finding", "").strip()
    coords = [row.get(k, "").strip() for k in ("x0", "y0", "x1", "y1")]
    if kind.lower() in ("", "none", "no finding", "normal"):
        if any(coords) or row.get("mask"):
            raise ValueError("box or mask given without a finding kind")
        return None
    kind = normalise_finding_kind(kind)
    pathology = (row.get("pathology") or "unknown").strip().lower()
    if pathology not in PATHOLOGIES:
        raise ValueError(f"unknown pathology {row.get('pathology')!r}; expected one of {PATHOLOGIES}")
    box = None
    if any(coords):
        if not all(coords):
            raise ValueError("box needs all of x0, y0, x1, y1")
        box = tuple(parse_float(c, n) for c, n in zip(coords, ("x0", "y0", "x1", "y1")))
        if not (box[2] > box[0] and box[3] > box[1]):
            raise ValueError(f"box must have x1 > x0 and y1 > y0, got {box}")
    mask = None
    if row.get("mask"):
        mask = confine(source, row["mask"])
        if not mask.is_file():
            raise ValueError(f"ROI mask not found: {row['mask']}")
    codes = {k: row[k] for k in ("finding", "pathology") if row.get(k)}
    return RawFinding(kind=kind, pathology=pathology, box=box, mask_path=mask, source_codes=codes)


def scan(source: Path) -> Iterator[SourceItem | LabelReject]:
    files = image_files(source)
    csv_path = label_csv(source)
    if csv_path is None:
        for path in files:
            yield SourceItem(image_id=_image_id(source, path), path=path, source_file=rel(source, path))
        return
    require_columns(csv_path, {"file"}, csv_columns(csv_path))
    items: dict[str, SourceItem] = {}
    bad: dict[str, str] = {}
    for line, row in read_csv(csv_path):
        if isinstance(row, LabelReject):  # an unusable row (binary, oversized field)
            yield row
            continue
        where = f"{csv_path.name}:{line}"
        path = source / row.get("file", "")
        key = rel(source, path)
        try:
            if not row.get("file"):
                raise ValueError("empty 'file'")
            confine(source, row["file"])
            finding = _row_finding(source, row)
            fields = dict(
                laterality=laterality_code(row.get("laterality", "")),
                view=view_code(row["view"]) if row.get("view") else None,
                density=acr_density(row.get("density", "")),
                age=parse_float(row["age"], "age") if row.get("age") else None,
                pixel_spacing_mm=(lambda s: (s, s))(parse_float(row["pixel_spacing_mm"], "pixel_spacing_mm"))
                if row.get("pixel_spacing_mm") else None,
                patient_raw=row.get("patient_id") or None,
            )
        except ValueError as exc:
            yield LabelReject(where, f"bad label row: {exc}")
            bad[key] = where
            continue
        if key in items:
            item = items[key]
            clash = [k for k, v in fields.items() if v is not None and v != "unknown" and getattr(item, k) != v]
            if clash:
                yield LabelReject(where, f"bad label row: {clash} differ from an earlier row for {key}")
                bad[key] = where
                continue
        else:
            item = items[key] = SourceItem(image_id=_image_id(source, path), path=path, source_file=key,
                                           density_source=row.get("density") or None, **fields)
        if finding is not None:
            item.findings.append(finding)
    for key in sorted(set(items) | set(bad)):
        path = source / key
        if not path.is_file():
            yield LabelReject(key, f"missing file: named in {csv_path.name}")
        elif key in bad:
            yield LabelReject(key, f"labels incomplete: row {bad[key]} was rejected")
        else:
            yield items[key]
    named = set(items) | set(bad)
    named |= {rel(source, f.mask_path) for item in items.values() for f in item.findings if f.mask_path}
    for path in files:
        if rel(source, path) not in named and path.resolve() != csv_path.resolve():
            yield LabelReject(rel(source, path), f"unlabelled: no row in {csv_path.name}")
