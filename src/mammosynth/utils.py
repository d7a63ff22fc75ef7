"""Small shared helpers: progress bars, seeding, timing."""
from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "img",
             disable: bool | None = None) -> Iterator[T]:
    """A tqdm progress bar on stderr; off when ``MAMMOSYNTH_NO_PROGRESS=1`` or stderr is not a tty
    and ``disable`` is None and the job is short."""
    from tqdm.auto import tqdm

    if disable is None:
        disable = os.environ.get("MAMMOSYNTH_NO_PROGRESS") == "1"
    return iter(tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr,
                     dynamic_ncols=True, leave=False))


def num_workers(requested: int | None = None) -> int:
    """Worker processes to use: ``requested`` or the CPU cores available to this process."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"workers must be >= 1, got {requested}")
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    A reader never sees a half-written file, and an interruption leaves the old file (or none).
    The temporary name keeps ``path``'s suffix, so writers that infer the format still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
