"""DICOM mammogram reader: pixel data as a for-presentation grayscale array.

:func:`read_dicom` applies, in this order, the modality LUT (rescale slope and
intercept), the VOI LUT or window centre/width (the first one stored), and the
MONOCHROME1 inversion, so that brighter always means more attenuating. The result is
``uint16`` when the source stores more than 8 bits, else ``uint8``.

Compressed transfer syntaxes are decoded by the pydicom pixel plugins; when none is
installed the error names the missing package (``pylibjpeg-libjpeg``,
``pylibjpeg-openjpeg``, ...). Every failure raises :class:`ImageReadError`.

The metadata dict never leaks identifying attributes into the output: the only DICOM
values returned are the ones the label schema needs (laterality, view, age, pixel
spacing) plus the raw patient id under ``"patient_id_raw"``, which callers must hash
(:func:`mammosynth.data.schema.hash_patient_id`) and never store.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .images import ImageReadError

#: transfer syntax UID prefix -> the pylibjpeg plugin that decodes it
_PLUGIN_FOR_SYNTAX = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg",  # JPEG baseline
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg",  # JPEG extended
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg",  # JPEG lossless
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.80": "pylibjpeg-libjpeg",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81": "pylibjpeg-libjpeg",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",  # JPEG 2000
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg",  # HTJ2K
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle",  # RLE lossless
}

_VIEW_CODES = {"CC": "CC", "MLO": "MLO", "XCC": "CC", "XCCL": "CC", "XCCM": "CC", "FB": "CC"}


def missing_plugin_for(transfer_syntax_uid: str) -> str:
    """The pylibjpeg package that decodes a compressed transfer syntax (for error messages)."""
    return _PLUGIN_FOR_SYNTAX.get(str(transfer_syntax_uid), "a pydicom pixel-data plugin (pylibjpeg, gdcm)")


def _age_years(text: Any) -> float | None:
    """DICOM AS value ('052Y', '006M') -> years; None when absent or malformed."""
    m = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY]?)\s*", str(text or ""))
    if not m:
        return None
    n = float(m.group(1))
    return round({"D": n / 365.25, "W": n / 52.18, "M": n / 12.0}.get(m.group(2), n), 2)


def _header_meta(ds: Any) -> dict[str, Any]:
    """Schema-relevant header values only (nothing identifying except the id to be hashed)."""
    meta: dict[str, Any] = {}
    lat = str(getattr(ds, "ImageLaterality", "") or getattr(ds, "Laterality", "") or "").strip().upper()
    if lat in ("L", "R"):
        meta["laterality"] = lat
    view = str(getattr(ds, "ViewPosition", "") or "").strip().upper()
    if view:
        meta["view"] = _VIEW_CODES.get(view, "other")
    age = _age_years(getattr(ds, "PatientAge", None))
    if age is not None:
        meta["age"] = age
    spacing = getattr(ds, "PixelSpacing", None) or getattr(ds, "ImagerPixelSpacing", None)
    if spacing is not None and len(spacing) == 2:
        try:
            meta["pixel_spacing_mm"] = (float(spacing[0]), float(spacing[1]))
        except (TypeError, ValueError):
            pass
    pid = str(getattr(ds, "PatientID", "") or "").strip()
    if pid:
        meta["patient_id_raw"] = pid
    return meta


def _window(arr: np.ndarray, ds: Any) -> tuple[np.ndarray, str]:
    """Apply VOI LUT / windowing; return values scaled to [0, 1] and what was applied."""
    from pydicom.pixels import apply_voi

    voi_seq = getattr(ds, "VOILUTSequence", None)
    if voi_seq:
        item = voi_seq[0]
        out = apply_voi(np.rint(arr).astype(np.int64), ds, index=0).astype(np.float64)
        bits = int(item.LUTDescriptor[2])
        top = float((1 << bits) - 1) if bits > 0 else float(out.max() or 1)
        return np.clip(out / top, 0, 1), "voi_lut"
    wc, ww = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    if wc is not None and ww is not None:
        c = float(wc[0] if hasattr(wc, "__len__") and not isinstance(wc, str) else wc)
        w = float(ww[0] if hasattr(ww, "__len__") and not isinstance(ww, str) else ww)
        func = str(getattr(ds, "VOILUTFunction", "LINEAR") or "LINEAR").upper()
        if func == "SIGMOID":
            out = 1.0 / (1.0 + np.exp(-4.0 * (arr - c) / w))
        elif func == "LINEAR_EXACT":
            out = (arr - (c - w / 2.0)) / w
        else:  # LINEAR, PS3.3 C.11.2.1.2.1
            if w < 1:
                raise ValueError("WindowWidth < 1")
            out = ((arr - (c - 0.5)) / (w - 1.0)) + 0.5
        return np.clip(out, 0, 1), f"window({c:g},{w:g},{func.lower()})"
    lo, hi = float(arr.min()), float(arr.max())
    return (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr, dtype=np.float64), "minmax"


def read_dicom(path: str | os.PathLike, voi: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a single-frame grayscale DICOM as uint8/uint16 (brighter = denser).

    ``voi=False`` skips the VOI LUT/windowing and scales the modality values min..max.
    Metadata: ``bit_depth`` (BitsStored), ``format`` ('dicom'), ``photometric``,
    ``windowing``, ``transfer_syntax`` and the schema fields found in the header.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "file not found")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file")
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError as exc:  # pragma: no cover - pydicom is a core dependency
        raise ImageReadError(path, "reading DICOM needs the 'pydicom' package") from exc
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError as exc:
        raise ImageReadError(path, f"not a DICOM file ({exc})") from exc
    except Exception as exc:
        raise ImageReadError(path, f"cannot parse DICOM ({type(exc).__name__}: {exc})") from exc
    if "PixelData" not in ds:
        raise ImageReadError(path, "DICOM has no pixel data")
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ImageReadError(path, f"photometric interpretation {photometric}; mammograms must be MONOCHROME1/2")
    if int(getattr(ds, "NumberOfFrames", 1) or 1) != 1:
        raise ImageReadError(path, f"multi-frame DICOM ({ds.NumberOfFrames} frames) is not supported")
    bits = int(getattr(ds, "BitsStored", 0) or 0)
    if not 1 <= bits <= 16:
        raise ImageReadError(path, f"BitsStored {bits} not supported; expected 8 to 16 bit grayscale")
    tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if tsyntax is not None and tsyntax.is_compressed:
        from pydicom.pixels import get_decoder

        try:
            decoder = get_decoder(tsyntax)
        except NotImplementedError as exc:
            raise ImageReadError(path, f"no decoder for transfer syntax {tsyntax.name} ({tsyntax})") from exc
        if not decoder.is_available:
            raise ImageReadError(
                path,
                f"compressed transfer syntax {tsyntax.name} needs the '{missing_plugin_for(tsyntax)}' plugin "
                f"(pip install {missing_plugin_for(tsyntax)}); missing: {'; '.join(decoder.missing_dependencies)}",
            )
    try:
        raw = ds.pixel_array
    except Exception as exc:
        reason = f"cannot decode pixel data ({type(exc).__name__}: {exc})"
        if tsyntax is not None and tsyntax.is_compressed:
            reason += f"; transfer syntax {tsyntax.name} is decoded by '{missing_plugin_for(tsyntax)}'"
        raise ImageReadError(path, reason) from exc
    if raw.ndim != 2:
        raise ImageReadError(path, f"expected a 2-D grayscale image, got shape {raw.shape}")
    from pydicom.pixels import apply_modality_lut

    try:
        # float32 holds every 16-bit value exactly and halves the cost of the steps below
        # (a 3328x2560 film: 0.5 -> 0.2 s, next to 0.9 s of JPEG 2000 decoding)
        arr = apply_modality_lut(raw, ds).astype(np.float32)
        scaled, windowing = _window(arr, ds) if voi else _window(arr, _NoVoi())
    except Exception as exc:
        raise ImageReadError(path, f"bad rescale/VOI attributes ({type(exc).__name__}: {exc})") from exc
    top = 65535 if bits > 8 else 255
    out = np.rint(scaled * top).astype(np.uint16 if bits > 8 else np.uint8)
    if photometric == "MONOCHROME1":  # inverted after rounding: exactly the mirror of MONOCHROME2
        np.subtract(top, out, out=out)
    bit_depth = min((b for b in (10, 12, 14, 16) if b >= bits), default=16) if bits > 8 else 8
    meta: dict[str, Any] = {
        "format": "dicom",
        "bit_depth": bit_depth,
        "bits_stored": bits,
        "photometric": photometric,
        "inverted": photometric == "MONOCHROME1",
        "windowing": windowing,
        "transfer_syntax": str(tsyntax) if tsyntax is not None else None,
    }
    meta.update(_header_meta(ds))
    return np.ascontiguousarray(out), meta


class _NoVoi:
    """Stand-in dataset without VOI attributes (``read_dicom(voi=False)``)."""

    VOILUTSequence = None
    WindowCenter = None
    WindowWidth = None
