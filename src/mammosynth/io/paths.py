"""Confinement of paths that come from data (label files, manifests, ids): every such path
must resolve, after symlinks, inside its root, or it is refused before anything opens it.

>>> confine("source", "images/a.png")          # doctest: +SKIP
PosixPath('source/images/a.png')
>>> confine("source", "../etc/passwd")         # doctest: +SKIP
OutsideRootError: path outside the source: '../etc/passwd' resolves outside source
"""
from __future__ import annotations

import os
from pathlib import Path


class OutsideRootError(ValueError):
    """A path named by data resolves outside the folder it must stay in."""


def is_inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """True when ``path`` (after symlinks) lies in ``root`` (after symlinks)."""
    try:
        real_root = os.path.realpath(root)
        real = os.path.realpath(path)
    except (OSError, ValueError):  # symlink loops, NUL bytes
        return False
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def confine(root: str | os.PathLike, path: str | os.PathLike, what: str = "source") -> Path:
    """``root / path`` when it resolves (after symlinks) inside ``root``; else
    :class:`OutsideRootError`. ``path`` may be relative to ``root`` or absolute (an absolute
    path inside ``root`` is accepted). ``what`` names the root in the message."""
    text = os.fspath(path)
    if "\0" in str(text):
        raise OutsideRootError(f"path outside the {what}: {text!r} contains a NUL byte")
    joined = Path(root) / text
    if not is_inside(root, joined):
        raise OutsideRootError(f"path outside the {what}: {str(text)[:200]!r} resolves outside {root} "
                               "(after '..' and symlinks); refused")
    return joined


def plain_name(text: str, what: str) -> str:
    """``text`` when it can be used as one path component (an id in a file name); no
    separators, no ``.``/``..``, nothing empty."""
    t = str(text)
    if not t or t in (".", "..") or "/" in t or "\\" in t or "\0" in t:
        raise OutsideRootError(f"path outside the source: {what} {t[:200]!r} is not a plain name")
    return t


__all__ = ["OutsideRootError", "confine", "is_inside", "plain_name"]
