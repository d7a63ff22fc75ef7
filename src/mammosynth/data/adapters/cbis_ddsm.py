"""CBIS-DDSM: ``mass_case_description_*.csv`` and ``calc_case_description_*.csv``.

One CSV row per abnormality. A film is one (woman, side, view): the rows naming it
become one image with several findings, also across files (71 films are in both a mass
and a calc file). Density 1-4 -> A-D (``breast_density`` in the mass files, ``breast
density`` in the calc files; 0, found in two calc rows, -> unknown); pathology BENIGN /
BENIGN_WITHOUT_CALLBACK -> benign. The woman is the CSV ``patient_id`` (``P_00001``),
not the DICOM PatientID, which is the series' subject folder name
(``Mass-Training_P_00001_LEFT_CC``).

Two trees are read:

* the CSV paths as written (``<Subject>/<StudyUID>/<SeriesUID>/000000.dcm``), which a
  real download never has;
* the download tool's tree ``CBIS-DDSM/<Subject>/<date>-DDSM-NA-<n>/1.000000-<description>-<n>/1-N.dcm``
  with its ``metadata.csv`` mapping the CSV's Series UID to that folder; without
  ``metadata.csv`` the subject folder is searched.

An ROI series folder holds two files, the cropped lesion and its mask, in no fixed
order: they are tried largest file first (the mask has the full image's size, the crop
is small) and the one that is a binary mask of the image's size is used (checked at
ingest). The official train/test split is kept in ``preprocessing["source_labels"]``;
mammosynth's per-woman split replaces it, and a note says how many women the official
files put in both train and test.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterator

from ...io.paths import is_inside
from . import nbia
from .base import (LabelReject, LayoutError, Note, RawFinding, SourceItem, acr_density, csv_columns, hashed_id,
                   label_files, laterality_code, read_csv, rel, require_columns, view_code)

NAME = "cbis-ddsm"
DATASET = "CBIS-DDSM"
PATHOLOGY = {"BENIGN": "benign", "BENIGN_WITHOUT_CALLBACK": "benign", "MALIGNANT": "malignant"}
KIND = {"mass": "mass", "calcification": "calcification"}
REQUIRED = {"patient_id", "left or right breast", "image view", "abnormality type", "pathology", "image file path"}
#: series description -> preference as an ROI mask (lower first)
MASK_PREFERENCE = {"roi mask images": 0, "cropped images": 1}


def csv_files(source: Path) -> list[Path]:
    return [p for pattern in ("*.csv", "*/*.csv") for p in label_files(source, pattern)
            if "case_description" in p.name.lower()]


def detect(source: Path) -> bool:
    return bool(csv_files(source))


class Resolver:
    """Finds the files a CBIS CSV path names, in either tree (see the module docstring)."""

    def __init__(self, source: Path):
        self.source = source
        meta = nbia.find_metadata(source)
        self.series = nbia.read_series(meta) if meta is not None else {}
        roots = [source, source / "CBIS-DDSM"]
        if meta is not None:
            roots += [meta.parent, meta.parent / "CBIS-DDSM"]
        self.roots = list(dict.fromkeys(roots))

    def candidates(self, text: str) -> list[tuple[Path, str]]:
        """``(file, series description)`` for a CSV path: the exact file, else the
        series' files via ``metadata.csv``, else every DICOM under the subject folder."""
        t = text.strip().strip('"').strip().replace("\\", "/")
        if not t:
            return []
        parts = [p for p in t.split("/") if p]
        if self.outside(t):
            return []  # never look outside SOURCE
        for base in self.roots:
            p = base.joinpath(*parts)
            if p.is_file():
                return [(p, "")]
        if len(parts) >= 2 and parts[-2] in self.series:
            s = self.series[parts[-2]]
            found = [(p, s.description.lower()) for p in s.dicoms()]
            if found:
                return found
        for base in self.roots:
            top = base / parts[0]
            if top.is_dir():
                return [(p, "") for p in sorted(top.rglob("*.dcm"))]
        return []

    def outside(self, text: str) -> bool:
        """Whether a CSV path would lead outside SOURCE (``..``, absolute, symlinks out)."""
        t = text.strip().strip('"').strip().replace("\\", "/")
        parts = [p for p in t.split("/") if p]
        return t.startswith("/") or ".." in parts or not is_inside(self.source, self.source.joinpath(*parts))

    def image(self, text: str) -> tuple[Path | None, str]:
        """The film a CSV path names, or None and why."""
        if self.outside(text):
            return None, "path outside the source"
        found = self.candidates(text)
        full = [p for p, d in found if d == "full mammogram images"]
        if len(full) == 1:
            return full[0], ""
        if len(found) == 1:
            return found[0][0], ""
        if not found:
            return None, "missing file"
        return None, f"ambiguous file: {len(found)} DICOMs and no single 'full mammogram images' series"

    def masks(self, mask_text: str, crop_text: str) -> list[Path]:
        """The ROI files to try as the mask, most likely first."""
        found = dict(self.candidates(mask_text))
        for p, d in self.candidates(crop_text):
            found.setdefault(p, d)
        order = sorted(found, key=lambda p: (MASK_PREFERENCE.get(found[p], 0), -p.stat().st_size))
        return order


def official_split(csv_path: Path) -> str:
    name = csv_path.name.lower()
    return "test" if "test" in name else "train" if "train" in name else "unknown"


def _density(row: dict[str, str]) -> tuple[str, str | None]:
    text = row.get("breast_density") or row.get("breast density") or ""
    return ("unknown" if text.strip() == "0" else acr_density(text)), (text or None)


def scan(source: Path) -> Iterator[SourceItem | LabelReject | Note]:
    files = csv_files(source)
    if not files:
        raise LayoutError(f"{source}: no *case_description*.csv; not a CBIS-DDSM folder")
    resolver = Resolver(source)
    items: dict[tuple, SourceItem] = {}
    bad: dict[tuple, str] = {}
    kinds: dict[tuple, set[str]] = defaultdict(set)
    splits_of_woman: dict[str, set[str]] = defaultdict(set)
    for csv_path in files:
        cols = csv_columns(csv_path)
        require_columns(csv_path, REQUIRED, cols)
        split = official_split(csv_path)
        for line, row in read_csv(csv_path):
            if isinstance(row, LabelReject):  # an unusable row (binary, oversized field)
                yield row
                continue
            where = f"{rel(source, csv_path)}:{line}"
            pid = row["patient_id"]
            try:
                kind = KIND.get(row["abnormality type"].strip().lower())
                if kind is None:
                    raise ValueError(f"unknown abnormality type {row['abnormality type']!r}")
                pathology = PATHOLOGY.get(row["pathology"].strip().upper())
                if pathology is None:
                    raise ValueError(f"unknown pathology {row['pathology']!r}")
                density, density_source = _density(row)
                lat = laterality_code(row["left or right breast"])
                view = view_code(row["image view"])
            except ValueError as exc:
                yield LabelReject(where, f"bad label row: {exc}")
                bad[(pid, row["left or right breast"].upper()[:1], row["image view"].upper())] = where
                continue
            key = (pid, lat, view)  # one film per woman, side and view in CBIS-DDSM
            splits_of_woman[pid].add(split)
            kinds[key].add(kind)
            if key not in items:
                path, why = resolver.image(row["image file path"])
                if path is None:
                    yield LabelReject(row["image file path"].strip(), f"{why}: named by label row {where}")
                    bad[key] = where
                    continue
                items[key] = SourceItem(
                    image_id=hashed_id("cbis", "/".join(str(k) for k in key)), path=path,
                    source_file=rel(source, path), patient_raw=pid, laterality=lat, view=view,
                    density=density, density_source=density_source,
                    extra={"preprocessing": {"source_labels": {"official_split": split}}},
                )
            item = items[key]
            labels = item.extra["preprocessing"]["source_labels"]
            if split not in labels["official_split"].split("+"):
                labels["official_split"] += f"+{split}"
            if item.density == "unknown" and density != "unknown":
                item.density, item.density_source = density, density_source
            masks = resolver.masks(row.get("ROI mask file path", ""), row.get("cropped image file path", ""))
            codes = {k: row[k] for k in ("abnormality id", "abnormality type", "mass shape", "mass margins",
                                         "calc type", "calc distribution", "assessment", "pathology", "subtlety")
                     if row.get(k)}
            item.findings.append(RawFinding(kind=kind, pathology=pathology, mask_path=masks[0] if masks else None,
                                            mask_fallback=masks[1] if len(masks) > 1 else None,
                                            source_codes=codes))
    for key, item in items.items():
        if key in bad:
            yield LabelReject(item.source_file, f"labels incomplete: row {bad[key]} was rejected")
            continue
        yield item
    both = sorted(k for k, v in kinds.items() if len(v) > 1 and k in items and k not in bad)
    if both:
        yield Note(f"{len(both)} film(s) are named by both a mass and a calc file: ingested once with all findings")
    crossing = sorted(w for w, s in splits_of_woman.items() if {"train", "test"} <= s)
    if crossing:
        yield Note(f"{len(crossing)} woman/women are in both the official train and test files; mammosynth's "
                   "per-woman split overrides the official split (kept in preprocessing['source_labels'])")
