"""Detect file opens and folder listings under a folder (an audit hook: PIL, tifffile,
pydicom and open() raise the ``open`` audit event, os.scandir/listdir (glob, rglob, walk)
theirs). Run the code under test in-process (``workers=1``)."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

_WATCHED: list[tuple[str, list[str]]] = []
_INSTALLED = False


def _hook(event: str, args: tuple) -> None:
    if event not in ("open", "os.scandir", "os.listdir") or not _WATCHED or not args:
        return
    path = args[0]
    if isinstance(path, int) or path is None:
        return
    try:
        real = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return
    for root, seen in _WATCHED:
        if real == root or real.startswith(root + os.sep):
            seen.append(real)


@contextmanager
def watch_opens(folder: str | os.PathLike):
    """Yield the list of files under ``folder`` opened or listed inside the block (after symlinks)."""
    global _INSTALLED
    if not _INSTALLED:
        sys.addaudithook(_hook)  # cannot be removed: it is idle when nothing is watched
        _INSTALLED = True
    entry = (os.path.realpath(Path(folder)), [])
    _WATCHED.append(entry)
    try:
        yield entry[1]
    finally:
        _WATCHED.remove(entry)
