"""VinDr-Mammo: ``breast-level_annotations.csv`` + ``finding_annotations.csv``,
images at ``images/<study_id>/<image_id>.dicom``.

Breast-level rows give laterality, view and density ("DENSITY C"); finding rows give
``finding_categories`` (a list such as ``['Mass', 'Suspicious Calcification']``) and a
box ``xmin ymin xmax ymax`` in source pixels. Categories the schema has no kind for
(skin thickening, nipple retraction, lymph node, other) are kept as
``source_codes["associated"]`` of the row's lesions; a row with only such categories
becomes one finding of kind ``unspecified`` with its box, so that no flagged image is
labelled "no finding". Unknown categories reject the row. The study id stands in for
the patient (one study per woman in VinDr-Mammo). Pathology is unknown (BI-RADS only,
kept in ``source_codes``).

Traits of the real files: some boxes extend outside the image (negative ``xmin``,
``xmax`` > ``width``): they are clipped to the row's ``width``/``height``, the source box
kept as ``source_codes["box_unclipped"]``, and a note counts them. ``No Finding`` rows
exist for breasts rated BI-RADS 3-5 (the finding is on the other view): the image is
no-finding for that view and the breast-level BI-RADS is kept in
``preprocessing["source_labels"]["breast_birads"]``. Files end in ``.dicom``;
``finding_categories`` is a Python-style list in single quotes.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from ...io.paths import plain_name
from .base import (LabelReject, LayoutError, Note, RawFinding, SourceItem, acr_density, csv_columns, image_files,
                   label_files, laterality_code, parse_float, read_csv, rel, require_columns, safe_id, view_code)

NAME = "vindr"
DATASET = "VinDr-Mammo"
BREAST_CSV = "breast-level_annotations.csv"
FINDING_CSV = "finding_annotations.csv"
CATEGORIES = {
    "mass": "mass",
    "suspicious calcification": "calcification",
    "architectural distortion": "distortion",
    "asymmetry": "asymmetry",
    "focal asymmetry": "asymmetry",
    "global asymmetry": "asymmetry",
    "no finding": None,
    # known VinDr categories the schema has no kind for (see the module docstring)
    "skin thickening": "unspecified",
    "nipple retraction": "unspecified",
    "suspicious lymph node": "unspecified",
    "skin retraction": "unspecified",
    "other": "unspecified",
}


def _find(source: Path, name: str) -> Path | None:
    for p in label_files(source, name) + label_files(source, f"*/{name}"):
        if p.is_file():
            return p
    return None


def detect(source: Path) -> bool:
    return _find(source, BREAST_CSV) is not None or _find(source, FINDING_CSV) is not None


def _image_path(source: Path, study: str, image: str) -> Path | None:
    for base in (source / "images", source):
        for suffix in (".dicom", ".dcm", ".png"):
            p = base / study / f"{image}{suffix}"
            if p.is_file():
                return p
    return None


_QUOTED = re.compile(r"""\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*([,\]])""")
MAX_CATEGORIES_CHARS = 1024


def parse_categories(text: str) -> list[str]:
    """``"['Mass', 'Suspicious Calcification']"`` (or ``"Mass, Other"``) -> names.

    A bounded, non-recursive parser of a flat list of quoted names: anything else (nested
    lists, expressions, over :data:`MAX_CATEGORIES_CHARS` characters) raises ValueError.
    Never ``eval``: a hostile row must not reach the Python parser's recursion."""
    t = text.strip()
    if len(t) > MAX_CATEGORIES_CHARS:
        raise ValueError(f"finding_categories is too long ({len(t):,} characters)")
    if not t.startswith("["):
        return [v.strip() for v in t.split(",") if v.strip()]
    if t[1:].strip() == "]":
        return []
    vals, pos = [], 1
    while True:
        m = _QUOTED.match(t, pos)
        if m is None:
            raise ValueError(f"cannot parse finding_categories {t[:60]!r}: expected a flat list of quoted names")
        vals.append((m.group(1) if m.group(1) is not None else m.group(2)).strip())
        pos = m.end()
        if m.group(3) == "]":
            break
    if t[pos:].strip():
        raise ValueError(f"cannot parse finding_categories {t[:60]!r}: text after the list")
    return vals


def row_findings(cats: list[str], box: tuple[float, float, float, float] | None, birads: str) -> list[RawFinding]:
    """The findings of one ``finding_annotations.csv`` row (see the module docstring)."""
    kinds = []
    for cat in cats:
        if cat.lower() not in CATEGORIES:
            raise ValueError(f"unknown finding category {cat!r}")
        kinds.append((cat, CATEGORIES[cat.lower()]))
    lesions = [(c, k) for c, k in kinds if k not in (None, "unspecified")]
    other = [c for c, k in kinds if k == "unspecified"]
    if not lesions:
        return [RawFinding(kind="unspecified", box=box, source_codes={"category": other, "finding_birads": birads})
                ] if other else []
    codes = {"finding_birads": birads} | ({"associated": other} if other else {})
    return [RawFinding(kind=k, box=box, source_codes={"category": c, **codes}) for c, k in lesions]


def clip_box(box: tuple[float, float, float, float], row: dict[str, str]) -> tuple[tuple, bool]:
    """The box clipped to the row's ``width`` x ``height`` (unchanged when they are absent)."""
    try:
        w, h = parse_float(row.get("width", ""), "width"), parse_float(row.get("height", ""), "height")
    except ValueError:
        return box, False
    out = (max(0.0, box[0]), max(0.0, box[1]), min(w, box[2]), min(h, box[3]))
    if not (out[2] > out[0] and out[3] > out[1]):
        raise ValueError(f"box {box} lies outside the {w:g}x{h:g} image")
    return out, out != tuple(box)


def scan(source: Path) -> Iterator[SourceItem | LabelReject | Note]:
    breast_csv, finding_csv = _find(source, BREAST_CSV), _find(source, FINDING_CSV)
    if breast_csv is None and finding_csv is None:
        raise LayoutError(f"{source}: no {BREAST_CSV} or {FINDING_CSV}; not a VinDr-Mammo folder")
    items: dict[str, SourceItem] = {}
    bad: dict[str, str] = {}
    missing: set[str] = set()
    clipped = 0
    for csv_path, with_findings in ((breast_csv, False), (finding_csv, True)):
        if csv_path is None:
            continue
        require_columns(csv_path, {"study_id", "image_id", "laterality", "view_position"}, csv_columns(csv_path))
        for line, row in read_csv(csv_path):
            if isinstance(row, LabelReject):  # an unusable row (binary, oversized field)
                yield row
                continue
            where = f"{rel(source, csv_path)}:{line}"
            key = row["image_id"]
            try:
                plain_name(row["study_id"], "study_id")
                plain_name(key, "image_id")
                lat = laterality_code(row["laterality"])
                view = view_code(row["view_position"])
                density = acr_density(row.get("breast_density", ""))
                findings = []
                if with_findings:
                    cats = parse_categories(row.get("finding_categories", "") or "['No Finding']")
                    box = None
                    coords = [row.get(k, "") for k in ("xmin", "ymin", "xmax", "ymax")]
                    if any(c and c.lower() != "nan" for c in coords):
                        box = tuple(parse_float(c, n) for c, n in zip(coords, ("xmin", "ymin", "xmax", "ymax")))
                        if not (box[2] > box[0] and box[3] > box[1]):
                            raise ValueError(f"empty box {box}")
                        raw_box = box
                        box, was_clipped = clip_box(box, row)
                    findings = row_findings(cats, box, row.get("finding_birads", ""))
                    if box is not None and was_clipped:
                        clipped += 1
                        for f in findings:
                            f.source_codes["box_unclipped"] = list(raw_box)
            except ValueError as exc:
                yield LabelReject(where, f"bad label row: {exc}")
                bad[key] = where
                continue
            if key not in items:
                path = _image_path(source, row["study_id"], key)
                if path is None:
                    if key not in missing:
                        yield LabelReject(f"images/{row['study_id']}/{key}.dicom",
                                          f"missing file: named by label row {where}")
                    missing.add(key)
                    continue
                items[key] = SourceItem(
                    image_id=safe_id(f"vindr-{key}"), path=path, source_file=rel(source, path),
                    patient_raw=row["study_id"], laterality=lat, view=view, density=density,
                    density_source=row.get("breast_density") or None,
                    extra={"preprocessing": {"source_labels": {"breast_birads": row.get("breast_birads", "")}}},
                )
            items[key].findings.extend(findings)
    for key, item in items.items():
        if key in bad:
            yield LabelReject(item.source_file, f"labels incomplete: row {bad[key]} was rejected")
        else:
            yield item
    if clipped:
        yield Note(f"{clipped} finding box(es) extend outside their image: clipped to the image "
                   "(the source box kept as source_codes['box_unclipped'])")
    known = {item.path.resolve() for item in items.values()}
    for path in image_files(source / "images"):
        if path.resolve() not in known and path.stem not in bad and path.stem not in missing:
            yield LabelReject(rel(source, path), "unlabelled: no row in the VinDr CSVs")
