"""Layout adapters: one module per repository layout.

Each module defines ``NAME``, ``DATASET`` (the source dataset's name), ``detect(source)``
and ``scan(source)`` yielding :class:`SourceItem` / :class:`LabelReject` / :class:`Note`; optionally
``dataset_kind(source)``. :func:`detect_layout` picks one for ``--layout auto``.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from .base import LabelReject, LayoutError, Note, RawFinding, SourceItem

#: layout name -> module, in auto-detection order (``folder`` matches anything)
LAYOUTS = {
    "prepared": "prepared",
    "mias": "mias",
    "cbis-ddsm": "cbis_ddsm",
    "vindr": "vindr",
    "inbreast": "inbreast",
    "cmmd": "cmmd",
    "rsna": "rsna",
    "folder": "folder",
}


def get_adapter(layout: str) -> ModuleType:
    """The adapter module for a layout name."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {('auto', *LAYOUTS)}")
    return importlib.import_module(f"{__name__}.{LAYOUTS[layout]}")


def detect_layout(source: str | Path) -> str:
    """The first layout whose ``detect`` recognises SOURCE (``folder`` as the fallback)."""
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: source folder not found")
    for name in LAYOUTS:
        if get_adapter(name).detect(source):
            return name
    return "folder"  # pragma: no cover - folder.detect is always true


__all__ = ["LAYOUTS", "LabelReject", "LayoutError", "Note", "RawFinding", "SourceItem", "detect_layout", "get_adapter"]
