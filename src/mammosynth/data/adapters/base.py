"""What a layout adapter yields: :class:`SourceItem` (one image with raw labels),
:class:`LabelReject` (a bad label row, a missing or unlabelled file) or :class:`Note`,
plus helpers."""
from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ...io.images import RASTER_SUFFIXES

IMAGE_SUFFIXES = RASTER_SUFFIXES | {".dcm", ".dicom"}


@dataclass
class RawFinding:
    """A finding in source-image pixels, before preprocessing."""

    kind: str
    pathology: str = "unknown"
    box: tuple[float, float, float, float] | None = None
    box_origin: str = "top"  # "bottom": y measured upwards from the bottom edge (MIAS)
    mask_path: Path | None = None  # binary ROI mask in source pixels (box taken from it)
    mask_fallback: Path | None = None  # tried when mask_path is not a binary mask (CBIS swap)
    source_codes: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceItem:
    """One input image and everything its layout says about it."""

    image_id: str
    path: Path
    source_file: str  # path relative to SOURCE
    patient_raw: str | None = None  # hashed by ingest; None: DICOM PatientID, else image_id
    patient_hashed: str | None = None  # already hashed (prepared layout)
    laterality: str | None = None
    view: str | None = None
    density: str = "unknown"
    density_source: str | None = None
    findings: list[RawFinding] = field(default_factory=list)
    age: float | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class LabelReject:
    """An input that cannot be used: ``source_file`` is ``FILE[:LINE]``."""

    source_file: str
    reason: str


@dataclass
class Note:
    """Something the user should know about SOURCE that is not a reject (a box clipped to
    its image, an official split overridden); ingest lists the notes in its summary."""

    text: str


class LayoutError(ValueError):
    """SOURCE does not look like the requested layout (names the missing file)."""


def rel(source: Path, path: Path) -> str:
    """``path`` relative to ``source`` with forward slashes (or the path itself when outside)."""
    try:
        return Path(os.path.relpath(path, source)).as_posix()
    except ValueError:  # pragma: no cover - other drive on Windows
        return Path(path).as_posix()


def safe_id(text: str) -> str:
    """A file-name-safe image id."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")
    if not out:
        raise ValueError(f"cannot make an image id from {text!r}")
    return out


def hashed_id(prefix: str, key: str) -> str:
    """An opaque image id for sources whose file names may carry patient ids."""
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def image_files(root: Path, suffixes: set[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files under ``root`` (recursive, sorted, hidden files skipped)."""
    if not root.is_dir():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in suffixes:
                out.append(Path(dirpath) / name)
    return sorted(out)


def read_csv(path: Path, delimiter: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV file as ``(line_number, {column: value})`` with stripped keys/values.

    The delimiter is sniffed among ``, ; \\t`` when not given.
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        head = f.read(4096)
        f.seek(0)
        if delimiter is None:
            first = head.splitlines()[0] if head else ""
            delimiter = max([",", ";", "\t"], key=first.count)
        reader = csv.DictReader(f, delimiter=delimiter)
        if reader.fieldnames is None:
            return
        reader.fieldnames = [str(n).strip() for n in reader.fieldnames]
        for row in reader:
            clean = {str(k).strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in row.items() if k}
            if not any(clean.values()):
                continue
            yield reader.line_num, clean


def require_columns(path: Path, columns: set[str], present: list[str]) -> None:
    missing = sorted(columns - set(present))
    if missing:
        raise LayoutError(f"{path}: missing column(s) {missing}; found {present}")


def csv_columns(path: Path, delimiter: str | None = None) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        first = f.readline()
    if delimiter is None:
        delimiter = max([",", ";", "\t"], key=first.count)
    return [c.strip() for c in next(csv.reader([first], delimiter=delimiter), [])]


def parse_float(text: str, what: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not a number: {text!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"{what} is not finite: {text!r}")
    return v


DENSITY_DIGITS = {"1": "A", "2": "B", "3": "C", "4": "D"}


def acr_density(text: str) -> str:
    """'A'..'D', '1'..'4', 'DENSITY C', '' -> ACR letter or 'unknown'; other values raise."""
    t = str(text or "").strip().upper().replace("DENSITY", "").strip()
    if t in ("", "NAN", "NONE", "NA"):
        return "unknown"
    if t.endswith(".0"):
        t = t[:-2]
    if t in DENSITY_DIGITS:
        return DENSITY_DIGITS[t]
    if t in ("A", "B", "C", "D"):
        return t
    raise ValueError(f"unknown density {text!r}")


def view_code(text: str) -> str:
    t = str(text or "").strip().upper()
    return t if t in ("CC", "MLO") else "other"


def laterality_code(text: str) -> str | None:
    t = str(text or "").strip().upper()
    if t in ("L", "LEFT"):
        return "L"
    if t in ("R", "RIGHT"):
        return "R"
    if t in ("", "NAN", "NONE"):
        return None
    raise ValueError(f"unknown laterality {text!r}")
