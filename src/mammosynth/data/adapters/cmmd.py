"""CMMD (The Chinese Mammography Database, TCIA): ``CMMD_clinicaldata_revision.xlsx``,
the download tool's ``metadata.csv`` and ``CMMD/<ID1>/<study>/<series>/1-N.dcm``.

Labels are per breast, not per image: one xlsx row per (woman ``ID1``, side
``LeftRight``) with ``Age``, ``number`` (images), ``abnormality`` (calcification, mass,
both), ``classification`` (Benign, Malignant) and ``subtype`` (malignant only). Every
image of that breast gets the row's findings (``both`` -> a mass and a calcification),
without a box; the source values are kept in ``source_codes``. ``metadata.csv`` maps the
subject to its series folders (without it, ``CMMD/<ID1>/`` or ``<ID1>/`` is searched).
Density is unknown (CMMD does not give it). The woman is ``ID1``.

The DICOMs lack ``ImageLaterality`` and ``ViewPosition``. Side, first that applies:

1. ``ImageLaterality`` or ``Laterality`` when present;
2. ``PatientOrientation``: its row direction is ``A`` for a right breast and ``P`` for a
   left one (the mammography display convention puts the chest wall on the left for R);
3. the woman's clinical rows, when she has a row for one breast only;
4. the image (the chest-wall side, as preprocessing reads it), and the labels of that
   breast are applied after preprocessing.

View: ``ViewPosition``; ``ViewCodeSequence`` (SNOMED 399162004 CC, 399368009 MLO); the
column direction of ``PatientOrientation`` (contains ``F`` or ``H``: oblique -> MLO;
``L``/``R`` only -> CC); else ``other``. Where each came from is recorded in
``preprocessing["source_labels"]`` (``side_from``, ``view_from``).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

from . import nbia
from .base import (LabelReject, LayoutError, RawFinding, SourceItem, csv_columns, hashed_id, image_files,
                   label_files, laterality_code, parse_float, read_csv, rel)

NAME = "cmmd"
DATASET = "CMMD"
COLUMNS = {"ID1", "LeftRight", "abnormality", "classification"}
ABNORMALITY = {"calcification": ["calcification"], "mass": ["mass"], "both": ["mass", "calcification"]}
CLASSIFICATION = {"benign": "benign", "malignant": "malignant"}
VIEW_CODES = {"399162004": "CC", "399368009": "MLO", "R-10242": "CC", "R-10226": "MLO"}


# -- the clinical table -----------------------------------------------------------------

def _xlsx_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of the first sheet as ``(row number, {header: text})``; numbers as text
    (``61`` not ``61.0``), empty cells as ''."""
    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise LayoutError(f"{path}: reading .xlsx needs the 'openpyxl' package") from exc
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise LayoutError(f"{path}: cannot read the workbook ({type(exc).__name__}: {exc})") from None
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
        for n, values in enumerate(rows, start=2):
            cells = {h: _cell(v) for h, v in zip(header, values) if h}
            if any(cells.values()):
                yield n, cells
    finally:
        wb.close()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _columns(path: Path) -> list[str]:
    if path.suffix.lower() == ".csv":
        return csv_columns(path)
    for _, row in _xlsx_rows(path):
        return list(row)
    return []


def clinical_file(source: Path) -> Path | None:
    """The clinical table: ``CMMD_clinicaldata*.xlsx`` (or a .csv export of it) with the CMMD columns."""
    for pattern in ("*.xlsx", "*/*.xlsx", "*clinical*.csv"):
        for p in label_files(source, pattern):
            if p.name.startswith("~$"):  # Excel's lock file
                continue
            try:
                if COLUMNS <= set(_columns(p)):
                    return p
            except (LayoutError, OSError, UnicodeDecodeError):
                continue
    return None


def detect(source: Path) -> bool:
    if clinical_file(source) is not None:
        return True
    meta = nbia.find_metadata(source)
    return meta is not None and nbia.collection(meta).upper() == "CMMD"


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    return read_csv(path) if path.suffix.lower() == ".csv" else _xlsx_rows(path)


def breast_findings(row: dict[str, str]) -> list[RawFinding]:
    """The findings of one clinical row (raises ValueError naming a bad value)."""
    kinds = ABNORMALITY.get(row.get("abnormality", "").strip().lower())
    if kinds is None:
        raise ValueError(f"unknown abnormality {row.get('abnormality')!r}")
    pathology = CLASSIFICATION.get(row.get("classification", "").strip().lower())
    if pathology is None:
        raise ValueError(f"unknown classification {row.get('classification')!r}")
    codes = {k: row[k] for k in ("abnormality", "classification", "subtype", "number") if row.get(k)}
    return [RawFinding(kind=k, pathology=pathology, source_codes=dict(codes)) for k in kinds]


# -- side and view from the DICOM header ------------------------------------------------

def header_side_view(path: Path) -> tuple[str | None, str | None, str | None, str | None]:
    """(side, where from, view, where from) from the header alone (see the docstring)."""
    try:
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:
        return None, None, None, None  # unreadable: ingest rejects it with the reason
    side = side_from = view = view_from = None
    for attr in ("ImageLaterality", "Laterality"):
        v = str(getattr(ds, attr, "") or "").strip().upper()
        if v in ("L", "R"):
            side, side_from = v, attr
            break
    orient = [str(v).strip().upper() for v in (getattr(ds, "PatientOrientation", None) or [])]
    if side is None and len(orient) == 2 and orient[0] in ("A", "P"):
        side, side_from = ("R" if orient[0] == "A" else "L"), "PatientOrientation"
    vp = str(getattr(ds, "ViewPosition", "") or "").strip().upper()
    if vp:
        view, view_from = (vp if vp in ("CC", "MLO") else "other"), "ViewPosition"
    if view is None:
        for item in getattr(ds, "ViewCodeSequence", None) or []:
            code = str(getattr(item, "CodeValue", "") or "").strip()
            if code:
                view, view_from = VIEW_CODES.get(code, "other"), "ViewCodeSequence"
                break
    if view is None and len(orient) == 2 and orient[1]:
        view = "MLO" if ("F" in orient[1] or "H" in orient[1]) else "CC"
        view_from = "PatientOrientation"
    return side, side_from, view, view_from


# -- the scan ---------------------------------------------------------------------------

def subject_files(source: Path) -> dict[str, list[Path]]:
    """Subject (ID1) -> its DICOM files, via ``metadata.csv`` or the folder names."""
    out: dict[str, list[Path]] = defaultdict(list)
    meta = nbia.find_metadata(source)
    if meta is not None:
        for s in nbia.read_series(meta).values():
            out[s.subject] += s.dicoms()
    if not out:
        for base in (source / "CMMD", source):
            if base.is_dir():
                for sub in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
                    files = image_files(sub, {".dcm"})
                    if files:
                        out[sub.name] += files
    return {k: sorted(set(v)) for k, v in out.items()}


def scan(source: Path) -> Iterator[SourceItem | LabelReject]:
    table = clinical_file(source)
    if table is None:
        raise LayoutError(f"{source}: no CMMD clinical table (.xlsx with columns {sorted(COLUMNS)})")
    breasts: dict[str, dict[str, list[RawFinding]]] = defaultdict(dict)
    ages: dict[str, float] = {}
    bad: dict[str, str] = {}
    for line, row in _rows(table):
        if isinstance(row, LabelReject):  # an unusable row (binary, oversized field)
            yield row
            continue
        where = f"{rel(source, table)}:{line}"
        woman = row.get("ID1", "")
        try:
            if not woman:
                raise ValueError("empty ID1")
            side = laterality_code(row.get("LeftRight", ""))
            if side is None:
                raise ValueError("empty LeftRight")
            if side in breasts[woman]:
                raise ValueError(f"second row for {woman} {side}")
            breasts[woman][side] = breast_findings(row)
            if row.get("Age"):
                ages[woman] = parse_float(row["Age"], "Age")
        except ValueError as exc:
            yield LabelReject(where, f"bad label row: {exc}")
            if woman:
                bad[woman] = where
    files = subject_files(source)
    for woman in sorted(breasts):
        if woman in bad:
            for path in files.get(woman, []):
                yield LabelReject(rel(source, path), f"labels incomplete: row {bad[woman]} was rejected")
            continue
        if not files.get(woman):
            yield LabelReject(f"CMMD/{woman}/", f"missing file: no DICOM for {woman} named by {table.name}")
            continue
        for path in files[woman]:
            side, side_from, view, view_from = header_side_view(path)
            by_side = breasts[woman]
            if side is None and len(by_side) == 1:
                side, side_from = next(iter(by_side)), "clinical row (one breast)"
            labels = {"side_from": side_from or "image", "view_from": view_from or "none"}
            extra: dict[str, Any] = {"preprocessing": {"source_labels": labels}}
            findings: list[RawFinding] = []
            if view is None:
                extra["view_from_image"] = True  # MLO when the pectoral muscle shows (preprocess.view_from_image)
            if side is None:
                extra["findings_by_side"] = by_side  # the image tells the side during preprocessing
            elif side not in by_side:
                yield LabelReject(rel(source, path), f"unlabelled: {table.name} has no row for {woman} {side} "
                                                     f"(side from {side_from})")
                continue
            else:
                findings = [RawFinding(kind=f.kind, pathology=f.pathology, source_codes=dict(f.source_codes))
                            for f in by_side[side]]
            yield SourceItem(
                image_id=hashed_id("cmmd", rel(source, path)), path=path, source_file=rel(source, path),
                patient_raw=woman, laterality=side, view=view or "other", findings=findings,
                age=ages.get(woman), extra=extra,
            )
    for woman in sorted(set(files) - set(breasts)):
        for path in files[woman]:
            yield LabelReject(rel(source, path), f"unlabelled: {woman} has no row in {table.name}")
