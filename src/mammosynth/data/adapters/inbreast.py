"""INbreast: ``INbreast.csv`` (semicolon-separated), ``AllDICOMs/`` and ``AllXML/``.

CSV columns used: ``File Name`` (the number that starts the DICOM file name and names
the XML file), ``Laterality``, ``View``, ``ACR`` (1-4 -> A-D), ``Bi-Rads``, ``Patient age``.
The real file is ``;``-separated with CRLF line ends; ``Patient ID`` and ``Patient age``
are the literal ``removed`` in every row (unknown, not an error) and one ``ACR`` cell is
blanks (unknown). The patient is the second ``_`` token of the DICOM file name
(INbreast's anonymised patient hash) unless a real ``Patient ID`` is given. File names
say ``ML`` where the CSV says ``MLO`` (``<n>_<hash>_MG_R_ML_ANON.dcm``): both are MLO, and
the file name's side and view fill empty CSV cells.

ROIs come from the OsiriX XML (an Apple plist): ``Name`` gives the kind, ``Point_px``
the outline (``Point_mm`` and ``Center`` are zeros in the real files and are not used);
the box is the outline's bounding box (single-point calcifications get a 5-pixel box).
A ``Spiculated Region`` that encloses a ``Mass`` ROI is the same lesion: one mass with
``source_codes["spiculated"] = True`` and the mass outline's box (the region's box kept
as ``spiculated_region_box``). A spiculated region enclosing no mass is a mass of its
own. Pathology is unknown (BI-RADS kept in ``source_codes``).
"""
from __future__ import annotations

import plistlib
import re
from pathlib import Path
from typing import Iterator

from .base import (LabelReject, LayoutError, RawFinding, SourceItem, acr_density, csv_columns, image_files,
                   laterality_code, parse_float, read_csv, rel, require_columns, safe_id, view_code)

NAME = "inbreast"
DATASET = "INbreast"
ROI_KINDS = {
    "mass": "mass", "spiculated region": "mass", "espiculated region": "mass", "spiculated mass": "mass",
    "calcification": "calcification", "calcifications": "calcification", "cluster": "calcification",
    "distortion": "distortion", "architectural distortion": "distortion",
    "asymmetry": "asymmetry", "assymetry": "asymmetry", "focal asymmetry": "asymmetry",
}
IGNORED_ROIS = re.compile(r"^(point|unnamed|pectoral|nipple)", re.IGNORECASE)
POINT_HALF = 2.5


def csv_file(source: Path) -> Path | None:
    for p in (source / "INbreast.csv", *sorted(source.glob("*.csv"))):
        if p.is_file() and {"File Name", "Laterality", "View"} <= set(csv_columns(p)):
            return p
    return None


def detect(source: Path) -> bool:
    return (source / "AllDICOMs").is_dir() or ((source / "AllXML").is_dir() and csv_file(source) is not None)


def parse_point(text: str) -> tuple[float, float]:
    m = re.fullmatch(r"\s*\(?\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)?\s*", str(text))
    if not m:
        raise ValueError(f"bad point {text!r}")
    return parse_float(m.group(1), "x"), parse_float(m.group(2), "y")


def read_rois(xml_path: Path) -> tuple[list[RawFinding], list[str]]:
    """Findings from an OsiriX ROI plist, and the reasons of the ROIs rejected."""
    try:
        with open(xml_path, "rb") as f:
            doc = plistlib.load(f)
    except Exception as exc:
        raise ValueError(f"cannot parse ROI XML ({type(exc).__name__}: {exc})") from None
    findings, errors = [], []
    for im in doc.get("Images", []) if isinstance(doc, dict) else []:
        for k, roi in enumerate(im.get("ROIs", [])):
            name = str(roi.get("Name", "")).strip()
            if IGNORED_ROIS.match(name):
                continue
            kind = ROI_KINDS.get(name.lower())
            if kind is None:
                errors.append(f"ROI {k}: unknown ROI name {name!r}")
                continue
            try:
                pts = [parse_point(p) for p in roi.get("Point_px", [])]
            except ValueError as exc:
                errors.append(f"ROI {k} ({name}): {exc}")
                continue
            if not pts:
                errors.append(f"ROI {k} ({name}): no points")
                continue
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
            if x1 - x0 < 1:
                x0, x1 = (x0 + x1) / 2 - POINT_HALF, (x0 + x1) / 2 + POINT_HALF
            if y1 - y0 < 1:
                y0, y1 = (y0 + y1) / 2 - POINT_HALF, (y0 + y1) / 2 + POINT_HALF
            findings.append(RawFinding(kind=kind, box=(x0, y0, x1, y1),
                                       source_codes={"roi_name": name, "points": len(pts)}))
    return merge_spiculated(findings), errors


def _encloses(outer: tuple, inner: tuple, tol: float = 1.0) -> bool:
    return (outer[0] - tol <= inner[0] and outer[1] - tol <= inner[1]
            and inner[2] <= outer[2] + tol and inner[3] <= outer[3] + tol)


def merge_spiculated(findings: list[RawFinding]) -> list[RawFinding]:
    """A ``Spiculated Region`` enclosing a ``Mass`` ROI: one spiculated mass (see the docstring)."""
    regions = [f for f in findings if "spiculated" in str(f.source_codes.get("roi_name", "")).lower()]
    merged: set[int] = set()
    for r in regions:
        for f in findings:
            if f.kind != "mass" or any(f is g for g in regions) or not _encloses(r.box, f.box):
                continue
            f.source_codes["spiculated"] = True
            f.source_codes["spiculated_region_box"] = list(r.box)
            merged.add(id(r))
    return [f for f in findings if id(f) not in merged]


#: view tokens of the DICOM file names (``ML`` there is the CSV's ``MLO``)
FILE_VIEWS = {"CC": "CC", "ML": "MLO", "MLO": "MLO"}


def file_name_labels(path: Path) -> tuple[str | None, str | None]:
    """(laterality, view) from ``<n>_<hash>_MG_<L|R>_<CC|ML>_ANON.dcm`` (None when absent)."""
    parts = path.stem.upper().split("_")
    if "MG" in parts:
        i = parts.index("MG")
        lat = parts[i + 1] if len(parts) > i + 1 and parts[i + 1] in ("L", "R") else None
        view = FILE_VIEWS.get(parts[i + 2], "other") if len(parts) > i + 2 else None
        return lat, view
    return None, None


def scan(source: Path) -> Iterator[SourceItem | LabelReject]:
    csv_path = csv_file(source)
    if csv_path is None:
        raise LayoutError(f"{source}: no INbreast.csv with 'File Name', 'Laterality', 'View' columns")
    require_columns(csv_path, {"File Name", "Laterality", "View"}, csv_columns(csv_path))
    dicoms = {p.name.split("_")[0]: p for p in image_files(source / "AllDICOMs")}
    named: set[str] = set()
    for line, row in read_csv(csv_path):
        where = f"{csv_path.name}:{line}"
        fname = row["File Name"].strip()
        if fname.endswith(".0"):
            fname = fname[:-2]
        named.add(fname)
        try:
            if not fname:
                raise ValueError("empty File Name")
            lat = laterality_code(row["Laterality"])
            view = view_code(row["View"]) if row["View"] else None
            density = acr_density(row.get("ACR", ""))
            age_text = row.get("Patient age", "")
            age = parse_float(age_text, "Patient age") if age_text and age_text.lower() != "removed" else None
        except ValueError as exc:
            yield LabelReject(where, f"bad label row: {exc}")
            continue
        path = dicoms.get(fname)
        if path is None:
            yield LabelReject(f"AllDICOMs/{fname}_*.dcm", f"missing file: named by label row {where}")
            continue
        file_lat, file_view = file_name_labels(path)
        lat, view = lat or file_lat, view or file_view
        findings: list[RawFinding] = []
        xml = source / "AllXML" / f"{fname}.xml"
        if xml.is_file():
            try:
                findings, errors = read_rois(xml)
            except ValueError as exc:
                errors = [str(exc)]
            if errors:
                for e in errors:
                    yield LabelReject(f"{rel(source, xml)}", f"bad ROI: {e}")
                yield LabelReject(rel(source, path), f"labels incomplete: {rel(source, xml)} has rejected ROIs")
                continue
        for f in findings:
            f.source_codes["birads"] = row.get("Bi-Rads", "")
        parts = path.name.split("_")
        pid = row.get("Patient ID", "")
        if not pid or pid.lower() == "removed":
            pid = parts[1] if len(parts) > 1 else fname
        yield SourceItem(
            image_id=safe_id(f"inbreast-{fname}"), path=path, source_file=rel(source, path), patient_raw=pid,
            laterality=lat, view=view, density=density, density_source=row.get("ACR") or None, age=age,
            findings=findings,
        )
    for fname, path in sorted(dicoms.items()):
        if fname not in named:
            yield LabelReject(rel(source, path), f"unlabelled: no row in {csv_path.name}")
