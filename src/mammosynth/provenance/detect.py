"""Screen images for synthetic markings and the mammosynth watermark before they enter a
clinical or training pipeline.

For each PNG / JPEG / TIFF / PGM / DICOM file (folders are searched recursively) the result
lists the evidence found:

* ``watermark``: the blind watermark detector (:mod:`.watermark`) verified a payload; its
  ``p_value`` bounds the chance of that on an unmarked image;
* ``metadata``: PNG/TIFF text / JPEG comment saying the image is a mammosynth synthetic;
* ``dicom``: ConversionType ``SYN``, Manufacturer ``mammosynth``, ``SYNTHETIC^`` patient name;
* ``c2pa``: a ``<stem>.c2pa`` sidecar whose manifest declares trainedAlgorithmicMedia (its
  validation state is reported: "Invalid" means the image no longer matches the manifest).

Metadata is a declaration (easy to strip or forge); the watermark survives format
conversion, JPEG and rescaling but not heavy editing.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..io.images import RASTER_SUFFIXES, read_raster
from ..utils import is_temporary
from .watermark import MIN_SIDE, WatermarkConfig, detect_watermark, split_payload

DICOM_SUFFIXES = {".dcm", ".dicom"}
SKIP_TEMPORARY = "temporary file of an interrupted write (not an image; delete it)"
IMAGE_SUFFIXES = RASTER_SUFFIXES | DICOM_SUFFIXES


def iter_files(paths: list[str | os.PathLike]) -> list[tuple[Path, str | None]]:
    """(file, error) pairs: folders expand recursively to image files; a missing path is an error."""
    out: list[tuple[Path, str | None]] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += [(f, SKIP_TEMPORARY if is_temporary(f.name) else None) for f in sorted(p.rglob("*"))
                    if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
        elif p.is_file():
            out.append((p, None))
        else:
            out.append((p, "file not found"))
    return out


def _dicom_pixels(path: Path) -> tuple[np.ndarray, list[str]]:
    """Stored pixel values (no windowing, so the watermark is intact) and synthetic markers."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    from .dicom import is_synthetic_dicom

    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError as exc:
        raise ValueError(f"{path}: not a DICOM file ({exc})") from exc
    except Exception as exc:
        raise ValueError(f"{path}: cannot parse DICOM ({type(exc).__name__}: {exc})") from exc
    _, reasons = is_synthetic_dicom(ds)
    try:
        arr = np.asarray(ds.pixel_array)
    except Exception as exc:
        raise ValueError(f"{path}: cannot decode DICOM pixel data ({type(exc).__name__}: {exc})") from exc
    if arr.ndim != 2:
        raise ValueError(f"{path}: expected a single-frame grayscale DICOM, got shape {arr.shape}")
    bits = int(getattr(ds, "BitsStored", 16) or 16)
    arr = arr.astype(np.int64)
    if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        arr = (1 << bits) - 1 - arr
    if bits <= 8:
        return np.clip(arr, 0, 255).astype(np.uint8), reasons
    return np.clip(arr << (16 - bits), 0, 65535).astype(np.uint16), reasons


def _c2pa_evidence(path: Path) -> dict[str, Any]:
    """State and digital source type of an image's C2PA sidecar (``{"error"}`` without c2pa-python)."""
    from .c2pa import verify_image

    try:
        return verify_image(path)
    except (RuntimeError, ValueError) as exc:
        return {"error": str(exc)}


def detect_file(path: str | os.PathLike, cfg: WatermarkConfig = WatermarkConfig(), crops: bool = True) -> dict[str, Any]:
    """Evidence that one image is a mammosynth synthetic. Raises ValueError when unreadable."""
    from .markings import read_markings

    path = Path(path)
    result: dict[str, Any] = {"path": str(path), "synthetic": False, "evidence": [], "watermark": None,
                              "metadata": None, "dicom": None}
    if path.suffix.lower() in RASTER_SUFFIXES:
        arr, _ = read_raster(path)
        marks = read_markings(path)
        if marks:
            result["metadata"] = marks["provenance"]
            result["evidence"].append("metadata")
    else:
        arr, reasons = _dicom_pixels(path)
        if reasons:
            result["dicom"] = reasons
            result["evidence"].append("dicom")
    sidecar = path.with_suffix(".c2pa")
    if sidecar.is_file():
        result["c2pa"] = _c2pa_evidence(path)
        if result["c2pa"].get("digital_source_type", "") and "trainedAlgorithmic" in result["c2pa"]["digital_source_type"]:
            result["evidence"].append("c2pa")
    if min(arr.shape) >= MIN_SIDE:
        det = detect_watermark(arr, cfg, crops=crops)
        wm = det.to_dict()
        if det.found and det.payload is not None:
            run32, image32 = split_payload(det.payload)
            wm.update(run32=run32, image32=image32)
            result["evidence"].append("watermark")
        result["watermark"] = wm
    result["synthetic"] = bool(result["evidence"])
    return result


def detect_paths(paths: list[str | os.PathLike], cfg: WatermarkConfig = WatermarkConfig(), crops: bool = True) -> list[dict[str, Any]]:
    """:func:`detect_file` over files and folders; unreadable files give ``{"path", "error"}``,
    temporaries of interrupted writes in folders ``{"path", "skipped"}``."""
    from ..utils import progress

    files = iter_files(paths)
    results = []
    for f, err in progress(files, total=len(files), desc="detect"):
        if err == SKIP_TEMPORARY:  # an interrupted write's leftover, not an image to judge
            results.append({"path": str(f), "skipped": err})
            continue
        if err is not None:
            results.append({"path": str(f), "error": f"{f}: {err}"})
            continue
        try:
            results.append(detect_file(f, cfg, crops=crops))
        except ValueError as exc:  # ImageReadError is a ValueError
            results.append({"path": str(f), "error": str(exc)})
    return results
