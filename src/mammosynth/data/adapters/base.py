"""What a layout adapter yields: :class:`SourceItem` (one image with raw labels),
:class:`LabelReject` (a bad label row, a missing or unlabelled file) or :class:`Note`,
plus helpers."""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ...io.images import RASTER_SUFFIXES
from ...io.paths import is_inside

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


#: Label files larger than this are refused as a whole (they are text tables, not data).
MAX_LABEL_BYTES = 256 << 20
#: A label value longer than this is refused with its row (the csv module's own limit).
MAX_FIELD_CHARS = 131_072


def label_files(source: Path, pattern: str) -> list[Path]:
    """``source.glob(pattern)``, sorted, without the files that resolve outside ``source``
    (through a symlinked folder or a symlink): a label file found by a pattern such as
    ``*/metadata.csv`` is read only when it is really inside the source."""
    head, _, name = pattern.rpartition("/")
    if head not in ("", "*"):
        raise ValueError(f"label_files: pattern {pattern!r} must be NAME or */NAME")
    folders = [source]
    if head == "*":  # one folder down, never through a folder that resolves outside (not even listed)
        try:
            folders = sorted(d for d in source.iterdir() if d.is_dir() and is_inside(source, d))
        except OSError:
            return []
    return sorted(p for d in folders for p in d.glob(name) if is_inside(source, p))


def _label_inside(path: Path) -> None:
    """A label file that is a symlink must point inside its own folder (else LayoutError):
    ``labels.csv -> /etc/passwd`` is never read."""
    if path.is_symlink() and not is_inside(path.parent, path):
        raise LayoutError(f"{path}: label file is a symlink to outside its folder; refused")


def read_label_text(path: Path) -> str:
    """The text of a label file: UTF-8 (with or without BOM), else Latin-1 (every byte is a
    character there, so decoding never fails and the rows decide). Raises
    :class:`LayoutError` naming the file for an oversized or unreadable file."""
    _label_inside(path)
    try:
        size = path.stat().st_size
        if size > MAX_LABEL_BYTES:
            raise LayoutError(f"{path}: label file of {size:,} bytes is larger than {MAX_LABEL_BYTES:,}; refused")
        data = path.read_bytes()
    except OSError as exc:
        raise LayoutError(f"{path}: cannot read label file ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _sniff(first: str, delimiter: str | None) -> str:
    return delimiter if delimiter is not None else max([",", ";", "\t"], key=first.count)


def read_csv(path: Path, delimiter: str | None = None) -> Iterator[tuple[int, dict[str, str] | LabelReject]]:
    """Rows of a CSV file as ``(line_number, {column: value})`` with stripped keys/values.

    The delimiter is sniffed among ``, ; \\t`` when not given. A row that cannot be used
    (a field over :data:`MAX_FIELD_CHARS`, binary data, broken quoting) comes as
    ``(line, LabelReject("FILE:LINE", reason))``: callers yield it and go on.
    """
    text = read_label_text(path)
    lines = iter(io.StringIO(text, newline=""))
    first = text.split("\n", 1)[0]
    reader = csv.reader(lines, delimiter=_sniff(first, delimiter))
    header: list[str] | None = None
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if header is None:
                raise LayoutError(f"{path}:{reader.line_num}: bad header ({exc})") from None
            yield reader.line_num, LabelReject(f"{path.name}:{reader.line_num}", f"bad label row: {exc}")
            continue
        if header is None:
            if any("\0" in v for v in values):
                raise LayoutError(f"{path}:1: binary data (NUL bytes); not a text label file")
            header = [str(n).strip() for n in values]
            continue
        if any("\0" in v for v in values):
            yield reader.line_num, LabelReject(f"{path.name}:{reader.line_num}", "bad label row: binary data (NUL bytes)")
            continue
        clean = {k: v.strip() for k, v in zip(header, values) if k}
        for k in header[len(values):]:
            if k:
                clean[k] = ""
        if not any(clean.values()):
            continue
        yield reader.line_num, clean


def require_columns(path: Path, columns: set[str], present: list[str]) -> None:
    missing = sorted(columns - set(present))
    if missing:
        found = [str(c)[:40] for c in present[:30]]
        raise LayoutError(f"{path}:1: missing column(s) {missing}; found {found}")


def csv_columns(path: Path, delimiter: str | None = None) -> list[str]:
    _label_inside(path)
    try:
        with open(path, "rb") as f:
            raw = f.readline(1 << 20)
    except OSError as exc:
        raise LayoutError(f"{path}: cannot read label file ({exc.strerror or exc})") from None
    try:
        first = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        first = raw.decode("latin-1")
    try:
        return [c.strip() for c in next(csv.reader([first.rstrip("\r\n")], delimiter=_sniff(first, delimiter)), [])]
    except csv.Error as exc:
        raise LayoutError(f"{path}:1: bad header ({exc})") from None


def parse_float(text: str, what: str) -> float:
    if len(str(text)) > 64:  # a 5,000-digit value is junk, not a coordinate
        raise ValueError(f"{what} is too long to be a number ({len(str(text)):,} characters)")
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
