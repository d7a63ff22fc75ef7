"""CBIS-DDSM: ``mass_case_description_*.csv`` and ``calc_case_description_*.csv``.

One CSV row per abnormality; rows sharing an ``image file path`` become one image with
several findings. The box comes from the ROI mask (``ROI mask file path``; when that
file is not a binary mask, the ``cropped image file path`` is tried, a known CBIS
swap). Paths are resolved relative to SOURCE, also under ``CBIS-DDSM/`` and with the
``.dcm`` file found inside the named folder when the CSV path does not exist exactly.
Density 1-4 -> A-D; pathology BENIGN / BENIGN_WITHOUT_CALLBACK -> benign.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...io.paths import is_inside
from .base import (LabelReject, LayoutError, RawFinding, SourceItem, acr_density, csv_columns, hashed_id,
                   laterality_code, read_csv, rel, require_columns, view_code)

NAME = "cbis-ddsm"
DATASET = "CBIS-DDSM"
PATHOLOGY = {"BENIGN": "benign", "BENIGN_WITHOUT_CALLBACK": "benign", "MALIGNANT": "malignant"}
KIND = {"mass": "mass", "calcification": "calcification"}
REQUIRED = {"patient_id", "left or right breast", "image view", "abnormality type", "pathology", "image file path"}


def csv_files(source: Path) -> list[Path]:
    return sorted(p for p in source.glob("*.csv") if "case_description" in p.name.lower()) + \
        sorted(p for p in source.glob("*/*.csv") if "case_description" in p.name.lower())


def detect(source: Path) -> bool:
    return bool(csv_files(source))


def resolve(source: Path, text: str) -> Path | None:
    """Find the file a CBIS CSV path names (the TCIA tree often differs from the CSV)."""
    t = text.strip().strip('"').replace("\\", "/")
    if not t:
        return None
    if not is_inside(source, source / t) or t.split("/")[0] in ("", ".", ".."):
        return None  # never look outside SOURCE (ingest rejects such rows by their reason)
    for base in (source, source / "CBIS-DDSM"):
        p = base / t
        if p.is_file():
            return p
        top = base / t.split("/")[0]
        if top.is_dir():  # same series folder, different inner UIDs
            found = sorted(top.rglob("*.dcm"))
            if len(found) == 1:
                return found[0]
    return None


def scan(source: Path) -> Iterator[SourceItem | LabelReject]:
    files = csv_files(source)
    if not files:
        raise LayoutError(f"{source}: no *case_description*.csv; not a CBIS-DDSM folder")
    items: dict[str, SourceItem] = {}
    bad: dict[str, str] = {}
    for csv_path in files:
        cols = csv_columns(csv_path)
        require_columns(csv_path, REQUIRED, cols)
        for line, row in read_csv(csv_path):
            if isinstance(row, LabelReject):  # an unusable row (binary, oversized field)
                yield row
                continue
            where = f"{rel(source, csv_path)}:{line}"
            img_text = row["image file path"]
            key = img_text.strip()
            try:
                kind = KIND.get(row["abnormality type"].strip().lower())
                if kind is None:
                    raise ValueError(f"unknown abnormality type {row['abnormality type']!r}")
                pathology = PATHOLOGY.get(row["pathology"].strip().upper())
                if pathology is None:
                    raise ValueError(f"unknown pathology {row['pathology']!r}")
                density = acr_density(row.get("breast_density") or row.get("breast density") or "")
                lat = laterality_code(row["left or right breast"])
                view = view_code(row["image view"])
            except ValueError as exc:
                yield LabelReject(where, f"bad label row: {exc}")
                bad[key] = where
                continue
            path = resolve(source, img_text)
            if path is None:
                t = img_text.strip().strip('"').replace("\\", "/")
                outside = not is_inside(source, source / t) or t.split("/")[0] in ("", ".", "..")
                yield LabelReject(key, f"path outside the source: named by label row {where}" if outside
                                  else f"missing file: named by label row {where}")
                bad[key] = where
                continue
            mask = resolve(source, row.get("ROI mask file path", ""))
            alt = resolve(source, row.get("cropped image file path", ""))
            codes = {k: row[k] for k in ("abnormality id", "abnormality type", "mass shape", "mass margins",
                                         "calc type", "calc distribution", "assessment", "pathology", "subtlety")
                     if row.get(k)}
            finding = RawFinding(kind=kind, pathology=pathology, mask_path=mask or alt,
                                 mask_fallback=alt if mask is not None else None, source_codes=codes)
            if key not in items:
                items[key] = SourceItem(
                    image_id=hashed_id("cbis", key), path=path, source_file=rel(source, path),
                    patient_raw=row["patient_id"], laterality=lat, view=view, density=density,
                    density_source=row.get("breast_density") or row.get("breast density") or None,
                )
            items[key].findings.append(finding)
    for key, item in items.items():
        if key in bad:
            yield LabelReject(item.source_file, f"labels incomplete: row {bad[key]} was rejected")
            continue
        yield item
