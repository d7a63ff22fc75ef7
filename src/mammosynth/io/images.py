"""Raster image readers and writers (PNG, JPEG, TIFF, PGM/PNM) for grayscale mammograms.

Images travel as 2-D numpy arrays: ``uint8`` or ``uint16``. :func:`read_image` returns
the array and a metadata dict (``bit_depth``, ``format``, and for DICOM the windowing
applied). Every failure raises :class:`ImageReadError` naming the file and the reason.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import atomic_file

#: The one decoded-size limit of every reader (raster and DICOM), in pixels (all samples and
#: pages counted). Checked from the header before any pixel is decoded, so a small file
#: claiming a huge image (a decompression bomb) costs nothing. 50 megapixels is above any
#: digital or digitised mammogram (DDSM scans reach ~40 MP); override with the
#: ``MAMMOSYNTH_MAX_PIXELS`` environment variable.
MAX_PIXELS = int(os.environ.get("MAMMOSYNTH_MAX_PIXELS", "50000000"))

RASTER_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pgm", ".pnm", ".ppm", ".bmp"}
DICOM_SUFFIXES = {".dcm", ".dicom", ""}
WRITE_FORMATS = ("png16", "png8", "tiff")


class ImageReadError(ValueError):
    """An image could not be read; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def check_pixels(path: str | os.PathLike, shape: tuple[int, ...], what: str = "") -> None:
    """Raise :class:`ImageReadError` when an image of ``shape`` would exceed :data:`MAX_PIXELS`."""
    n = 1
    for d in shape:
        n *= max(0, int(d))
    if n > MAX_PIXELS:
        dims = " x ".join(str(int(d)) for d in shape)
        raise ImageReadError(path, f"decoded size {dims}{what} = {n:,} pixels exceeds the limit of "
                                   f"{MAX_PIXELS:,} pixels (MAMMOSYNTH_MAX_PIXELS; a decompression bomb?)")


def _grey_lut(rgb: np.ndarray, path: Path) -> np.ndarray:
    """The grey levels of a palette ``[3, n]``; a palette with colours is refused."""
    if not (np.array_equal(rgb[0], rgb[1]) and np.array_equal(rgb[1], rgb[2])):
        raise ImageReadError(path, "colour palette image; mammograms must be grayscale")
    return rgb[0]


def _read_tiff(path: Path, meta: dict[str, Any] | None = None) -> np.ndarray:
    """First (only) page of a TIFF, size-checked before decoding; grey palettes mapped to levels."""
    import logging

    import tifffile

    # a corrupt TIFF makes tifffile log one line per bad tag (hundreds a file, flooding the
    # run's output); the reject reason already says it cannot be decoded
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)
    with tifffile.TiffFile(path) as tif:
        if len(tif.pages) != 1:
            raise ImageReadError(path, f"multi-page TIFF ({len(tif.pages)} pages); expected one grayscale image")
        page = tif.pages[0]
        check_pixels(path, page.shape)
        if meta is not None and page.description:
            meta["text"] = _tiff_text(page.description)
        arr = page.asarray()
        if page.photometric == tifffile.PHOTOMETRIC.PALETTE:
            cmap = page.colormap
            if cmap is None:
                raise ImageReadError(path, "palette TIFF without a colour map")
            lut = _grey_lut(np.asarray(cmap), path)
            if arr.dtype == np.uint8 and np.all(lut % 257 == 0):
                lut = (lut // 257).astype(np.uint8)  # an 8-bit grey palette stays 8 bit
            arr = lut[arr]
    return arr


def _tiff_text(desc: str) -> dict[str, str]:
    """A TIFF ImageDescription as text metadata (mammosynth stores a JSON dict there)."""
    import json

    try:
        obj = json.loads(desc)
    except ValueError:
        return {"Description": desc[:10_000]}
    return {str(k): str(v) for k, v in obj.items()} if isinstance(obj, dict) else {"Description": desc[:10_000]}


def _to_gray(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        rgb = arr[..., :3]
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])):
            raise ImageReadError(path, "colour image; mammograms must be grayscale")
        arr = rgb[..., 0]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise ImageReadError(path, f"expected a 2-D grayscale image, got shape {arr.shape}")
    return arr


def _bit_depth(arr: np.ndarray, path: Path) -> int:
    if arr.dtype == np.uint8:
        return 8
    if arr.dtype == np.uint16:
        return 16
    if arr.dtype == bool:
        raise ImageReadError(path, "1-bit image; expected 8 or 16 bit grayscale")
    raise ImageReadError(path, f"unsupported pixel type {arr.dtype}; expected 8 or 16 bit grayscale")


def read_raster(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a PNG/JPEG/TIFF/PGM file as a 2-D uint8/uint16 array."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "file not found")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file")
    suffix = path.suffix.lower()
    meta: dict[str, Any] = {"format": suffix.lstrip(".")}
    try:
        if suffix in (".tif", ".tiff"):
            arr = _read_tiff(path, meta)
        else:
            from PIL import Image

            with Image.open(path) as im:
                check_pixels(path, (im.height, im.width, len(im.getbands())) if len(im.getbands()) > 1
                             else (im.height, im.width))
                im.load()
                meta["text"] = {str(k): str(v) for k, v in (getattr(im, "text", {}) or {}).items()}
                comment = im.info.get("comment")  # JPEG COM segment
                if comment:
                    meta["text"].setdefault("comment", comment.decode("utf-8", "replace")
                                            if isinstance(comment, bytes) else str(comment))
                if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                    arr = np.asarray(im, dtype=np.int64)
                    if arr.min() < 0 or arr.max() > 65535:
                        raise ImageReadError(path, "pixel values outside 16-bit range")
                    arr = arr.astype(np.uint16)
                elif im.mode in ("L", "RGB", "RGBA", "LA"):
                    arr = np.asarray(im.convert("L") if im.mode == "LA" else im)
                elif im.mode in ("P", "PA"):
                    idx = np.asarray(im.getchannel(0) if im.mode == "PA" else im)
                    pal = np.zeros((3, 256), np.uint8)
                    rgb = np.asarray(im.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3).T[:, :256]
                    pal[:, : rgb.shape[1]] = rgb
                    used = np.unique(idx)
                    _grey_lut(pal[:, used], path)  # only the entries the image uses must be grey
                    arr = pal[0][idx]
                elif im.mode == "1":
                    raise ImageReadError(path, "1-bit image; expected 8 or 16 bit grayscale")
                else:
                    raise ImageReadError(path, f"unsupported image mode {im.mode}")
    except ImageReadError:
        raise
    except Exception as exc:  # PIL/tifffile raise many types for corrupt or truncated data
        if type(exc).__name__ == "DecompressionBombError":  # PIL's own guard fired first (> 2x its limit)
            raise ImageReadError(path, f"decoded size exceeds the limit of {MAX_PIXELS:,} pixels ({exc})") from None
        raise ImageReadError(path, f"cannot decode image ({type(exc).__name__}: {exc})") from exc
    arr = _to_gray(np.asarray(arr), path)
    meta["bit_depth"] = _bit_depth(arr, path)
    return np.ascontiguousarray(arr), meta


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """Read any supported image (raster or DICOM) as a 2-D uint8/uint16 array plus metadata."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in RASTER_SUFFIXES:
        return read_raster(path)
    from .dicom import read_dicom

    return read_dicom(path)


def write_image(
    path: str | os.PathLike,
    arr: np.ndarray,
    fmt: str = "png16",
    text: dict[str, str] | None = None,
) -> Path:
    """Write a grayscale image atomically (temporary file, then rename).

    ``fmt``: ``png16`` (uint16 PNG), ``png8`` (uint8 PNG) or ``tiff`` (uint16 TIFF).
    ``text`` goes into PNG tEXt chunks / the TIFF ImageDescription (as JSON).
    uint16 input is scaled to 8 bit for ``png8``; uint8 input is scaled up for 16-bit formats.
    """
    if fmt not in WRITE_FORMATS:
        raise ValueError(f"format must be one of {WRITE_FORMATS}, got {fmt!r}")
    path = Path(path)
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale array, got shape {arr.shape}")
    if arr.dtype == np.uint8 and fmt != "png8":
        arr = arr.astype(np.uint16) * 257
    elif arr.dtype == np.uint16 and fmt == "png8":
        arr = ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected uint8 or uint16 pixels, got {arr.dtype}")
    with atomic_file(path) as tmp:
        if fmt == "tiff":
            import json

            import tifffile

            tifffile.imwrite(tmp, arr, description=json.dumps(text or {}), metadata=None)
        else:
            from PIL import Image, PngImagePlugin

            info = PngImagePlugin.PngInfo()
            for k, v in (text or {}).items():
                info.add_itxt(str(k), str(v))
            Image.fromarray(arr).save(tmp, format="PNG", pnginfo=info, compress_level=1)
    return path


def to_uint16(arr: np.ndarray) -> np.ndarray:
    """Scale a uint8/uint16/float-in-[0,1] image to the full uint16 range."""
    arr = np.asarray(arr)
    if arr.dtype == np.uint16:
        return arr
    if arr.dtype == np.uint8:
        return arr.astype(np.uint16) * 257
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError("image contains NaN or inf")
        return np.clip(np.rint(arr * 65535.0), 0, 65535).astype(np.uint16)
    raise ValueError(f"cannot convert {arr.dtype} image to uint16")
