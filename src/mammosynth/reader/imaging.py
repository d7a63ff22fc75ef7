"""Images for readers: fresh 8-bit PNG pixels, nothing else.

The stored file is decoded to pixels and re-encoded by Pillow without any text,
time or colour-profile chunk, so no file name, DICOM tag, manifest field or generator
mark can reach the reader; the URL is a random token unrelated to the file.
"""
from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image

from ..io.images import read_image


def to_display(arr: np.ndarray) -> np.ndarray:
    """Robust 0.5-99.5 percentile scaling to uint8 (the viewer's window/level starts full)."""
    a = arr.astype(np.float32)
    lo, hi = np.percentile(a, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1
    return (np.clip((a - lo) / (hi - lo), 0, 1) * 255 + 0.5).astype(np.uint8)


@lru_cache(maxsize=64)
def encode_png(path: str, scale: float = 1.0) -> bytes:
    arr, _ = read_image(path)
    if arr.ndim != 2:
        arr = arr[..., 0]
    img = Image.fromarray(to_display(arr))
    if scale > 1.0:
        img = img.resize((max(1, round(img.width / scale)), max(1, round(img.height / scale))), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)  # no pnginfo: IHDR, IDAT, IEND only
    return buf.getvalue()


def png_chunks(data: bytes) -> list[str]:
    """The chunk types of a PNG stream (used by the blinding tests and checks)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG stream")
    out, pos = [], 8
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        out.append(data[pos + 4:pos + 8].decode("latin-1"))
        pos += 12 + n
    return out
