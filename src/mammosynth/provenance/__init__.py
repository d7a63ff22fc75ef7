"""Provenance: mark every synthetic image, watermark it, sign and verify sets.

The functions below are the contract ``generate`` relies on. (Initial stubs: the
provenance issue replaces their bodies; keep the signatures.)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data.schema import ImageRecord


def mark_image(image: np.ndarray, record: ImageRecord, generation: dict[str, Any]) -> tuple[np.ndarray, dict[str, str]]:
    """Watermark ``image`` (uint16/uint8) and return it with the in-file text metadata to store."""
    return image, {"mammosynth:synthetic": "true"}


def write_synthetic_dicom(path: Path, image: np.ndarray, record: ImageRecord) -> None:
    """Write one synthetic image as a DICOM Digital Mammography X-Ray Image (For Presentation)."""
    raise NotImplementedError("DICOM output is not implemented yet")


def finalize_synthetic_set(root: Path, key: str | Path | None = None) -> Path | None:
    """Write the signed provenance manifest of a finished synthetic set; returns its path."""
    return None
