"""Provenance: mark every synthetic image, watermark it, sign and verify sets.

The three functions below are the contract ``generate`` relies on:

* :func:`mark_image` - invisible watermark (:mod:`.watermark`) + in-file text markings
  (:mod:`.markings`);
* :func:`write_synthetic_dicom` - MG For Presentation DICOM marked synthetic (:mod:`.dicom`);
* :func:`finalize_synthetic_set` - signed ``provenance.json`` (:mod:`.manifest`), plus C2PA
  manifests when a certificate chain is configured (:mod:`.c2pa`).

Checking: :func:`verify_set` (signature, Merkle root, every file) and :func:`detect_paths`
(screening images for watermark and markings).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..data.schema import ImageRecord
from .manifest import VerifyReport, sign_set, verify_set
from .watermark import MIN_SIDE, SCHEME, WatermarkConfig, detect_watermark, embed_watermark, make_payload, split_payload

__all__ = [
    "mark_image", "write_synthetic_dicom", "finalize_synthetic_set", "verify_set", "VerifyReport",
    "sign_set", "detect_paths", "image_payload", "embed_watermark", "detect_watermark", "WatermarkConfig",
]


_warned_small = False  # the small-image warning is given once per process


def image_payload(generation: dict[str, Any], image_id: str | None = None) -> int:
    """The 64-bit watermark payload of one generated image.

    High 32 bits: SHA-256("mammosynth-run" 0x00 checkpoint_sha256 0x00 run)[:4] - the run.
    Low 32 bits: ``generation["index"]`` (mod 2^32), or a hash of ``image_id`` without an index.
    """
    run_id = f"{generation.get('checkpoint_sha256') or ''}\x00{generation.get('run') or ''}"
    index = generation.get("index")
    if index is None:
        if image_id is None:
            raise ValueError("generation has no 'index' and no image id was given for the watermark payload")
        index = image_id
    return make_payload(run_id, index)


def mark_image(image: np.ndarray, record: ImageRecord, generation: dict[str, Any]) -> tuple[np.ndarray, dict[str, str]]:
    """Watermark ``image`` (uint16/uint8) and return it with the in-file text metadata to store.

    Images under ``MIN_SIDE`` (32) pixels on a side are returned unchanged (a warning; the
    text records why): they cannot hold the watermark's frequency band.
    """
    from .markings import synthetic_text

    image = np.asarray(image)
    payload = image_payload(generation, record.image_id)
    run32, img32 = split_payload(payload)
    if min(image.shape[-2:]) < MIN_SIDE:
        global _warned_small
        if not _warned_small:
            _warned_small = True
            warnings.warn(f"images smaller than {MIN_SIDE} px are not watermarked (only text-marked)",
                          stacklevel=2)
        wm = {"scheme": None, "reason": f"image smaller than {MIN_SIDE} px", "payload": f"{payload:016x}"}
        return image, synthetic_text(record, generation, watermark=wm)
    marked = embed_watermark(image, payload)
    wm = {"scheme": SCHEME, "payload": f"{payload:016x}", "run32": run32, "image32": img32}
    return marked, synthetic_text(record, generation, watermark=wm)


def write_synthetic_dicom(path: Path, image: np.ndarray, record: ImageRecord) -> None:
    """Write one synthetic image as a DICOM Digital Mammography X-Ray Image (For Presentation)."""
    from .dicom import write_synthetic_dicom as _write

    _write(path, image, record)


def finalize_synthetic_set(root: Path, key: str | Path | None = None) -> Path | None:
    """Write the signed provenance manifest of a finished synthetic set; returns its path.

    ``key``: key directory or private-key PEM; None uses (or creates, saying so on stderr) the
    default pair under ``$MAMMOSYNTH_HOME/keys``. When a C2PA certificate chain is configured
    (:func:`mammosynth.provenance.c2pa.c2pa_config`), every PNG/TIFF image first gets a C2PA
    sidecar manifest (``<image>.c2pa``), which the signed manifest then covers.
    """
    root = Path(root)
    extra = None
    from .c2pa import c2pa_config, sign_set_c2pa

    cfg = c2pa_config()
    if cfg is not None:
        extra = {"c2pa": sign_set_c2pa(root, cfg)}
    return sign_set(root, key=key, extra=extra)


def detect_paths(paths: list[str | os.PathLike], **kw: Any) -> list[dict[str, Any]]:
    """Scan files/folders for synthetic markings and watermarks (see :mod:`.detect`)."""
    from .detect import detect_paths as _detect

    return _detect(paths, **kw)
