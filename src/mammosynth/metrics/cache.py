"""On-disk cache of per-set features, keyed by dataset content and extractor settings.

A cache entry is one ``.npz`` file ``<cache_dir>/features/<key>.npz`` where ``key`` is the
SHA-256 of a JSON object holding everything the arrays depend on: the dataset's
:attr:`~mammosynth.data.prepared.PreparedDataset.content_hash`, the images selected, the
extractor name and version, and its preprocessing settings (resize target...). Changing
any of them gives a new key, so a stale entry is never read. Entries are written
atomically (temporary file, then rename); an unreadable entry is recomputed.

The cache directory is ``$MAMMOSYNTH_CACHE`` when set, else ``~/.cache/mammosynth``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import atomic_file

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$MAMMOSYNTH_CACHE`` or ``~/.cache/mammosynth``."""
    env = os.environ.get("MAMMOSYNTH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mammosynth"


def cache_key(**parts: Any) -> str:
    """SHA-256 (hex) of the JSON encoding of ``parts`` (sorted keys)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class FeatureCache:
    """Load/save dicts of numpy arrays by key. ``root=None`` uses :func:`default_cache_dir`;
    ``enabled=False`` makes every load miss and every save a no-op."""

    def __init__(self, root: str | os.PathLike | None = None, enabled: bool = True):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.root / "features" / f"{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``, or None (miss, disabled or unreadable entry)."""
        if not self.enabled:
            self.misses += 1
            return None
        path = self.path(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                out = {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            log.warning("%s: unreadable cache entry, recomputing (%s)", path, exc)
            self.misses += 1
            return None
        self.hits += 1
        return out

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> Path | None:
        """Store ``arrays`` under ``key`` atomically; returns the file (None when disabled)."""
        if not self.enabled:
            return None
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp:
            np.savez(tmp, **arrays)
        return path
