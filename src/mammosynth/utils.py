"""Small shared helpers: progress bars, atomic files, output checks, seeding, timing."""
from __future__ import annotations

import errno
import os
import re
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")

#: seconds between the plain progress lines written when stderr is not a terminal
PLAIN_PROGRESS_INTERVAL = 5.0


class PlainProgress:
    """tqdm's small API (``update``, ``set_postfix``, ``close``, iteration) for logs: one
    plain line every ``interval`` seconds and one at the end, never carriage-return frames,
    which fill a log file (or a CI log) with thousands of redrawn bars."""

    def __init__(self, iterable: Iterable[Any] | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0, interval: float = PLAIN_PROGRESS_INTERVAL,
                 disable: bool = False, file: Any = None, **_: Any):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n, self.interval, self.disable = initial, interval, disable
        self.file = file or sys.stderr
        self.postfix = ""
        self._start = self._last = time.monotonic()
        self._closed = False

    def __iter__(self) -> Iterator[Any]:
        for x in (() if self.iterable is None else self.iterable):
            yield x
            self.update(1)
        self.close()

    def _line(self) -> str:
        elapsed = time.monotonic() - self._start
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        rate = f", {self.n / elapsed:.3g} {self.unit}/s" if elapsed > 0 and self.n else ""
        post = f", {self.postfix}" if self.postfix else ""
        return f"{self.desc + ': ' if self.desc else ''}{done} {self.unit}{pct}, {elapsed:.0f} s{rate}{post}"

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if not self.disable and now - self._last >= self.interval:
            self._last = now
            print(self._line(), file=self.file, flush=True)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kw: Any) -> None:
        items = {**(ordered_dict or {}), **kw}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def close(self) -> None:
        if not self._closed and not self.disable and self.n:
            print(self._line(), file=self.file, flush=True)
        self._closed = True


def progress_bar(iterable: Iterable[T] | None = None, total: int | None = None, desc: str = "",
                 unit: str = "img", disable: bool | None = None, **kw: Any) -> Any:
    """The one place progress bars are made: tqdm on a terminal, :class:`PlainProgress`
    (a line every few seconds) when stderr is a file or a pipe; off when
    ``MAMMOSYNTH_NO_PROGRESS=1`` (and ``disable`` is None)."""
    if disable is None:
        disable = os.environ.get("MAMMOSYNTH_NO_PROGRESS") == "1"
    isatty = getattr(sys.stderr, "isatty", None)
    if not (isatty and isatty()):
        return PlainProgress(iterable, total=total, desc=desc, unit=unit, disable=disable, **kw)
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr,
                dynamic_ncols=True, leave=False, **kw)


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "img",
             disable: bool | None = None) -> Iterator[T]:
    """Iterate with a progress bar on stderr (see :func:`progress_bar`)."""
    return iter(progress_bar(iterable, total=total, desc=desc, unit=unit, disable=disable))


def fit_one_cycle(model: Any, step_loss: Callable[[], Any], steps: int, lr: float, weight_decay: float,
                  desc: str = "", disable: bool | None = None) -> Any:
    """Train ``model`` for ``steps`` AdamW steps on a one-cycle schedule (peak ``lr``); each
    step minimises ``step_loss()``, the loss of the next batch. Returns the model in eval
    mode. The small classifiers of the metrics (detectability, utility) train this way."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    for _ in progress(range(steps), total=steps, desc=desc, unit="step", disable=disable):
        loss = step_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return model


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


def _cpu_times(stat: str) -> tuple[int, int]:
    """(idle, total) jiffies of the aggregate ``cpu`` line of a /proc/stat text."""
    fields = [int(v) for v in stat.splitlines()[0].split()[1:]]
    return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields[:8])


def busy_cores(seconds: float = 0.5, stat_path: str = "/proc/stat") -> float | None:
    """How many CPU cores other processes keep busy, measured over ``seconds`` while this
    one sleeps (from ``/proc/stat``; None where it cannot be read)."""
    try:
        with open(stat_path, encoding="ascii") as f:
            idle0, total0 = _cpu_times(f.read())
        time.sleep(seconds)
        with open(stat_path, encoding="ascii") as f:
            idle1, total1 = _cpu_times(f.read())
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (1.0 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)


def threads_beside_load(requested: int, busy: float | None, cores: int | None = None) -> int:
    """Torch threads for a job that should not wait on itself: ``requested``, lowered to the
    cores that ``busy`` cores of other work leave free (at least one). Why: torch's OpenMP
    threads wait on each other at every op, so one thread descheduled by another job stalls
    them all (the demo trained at 3.5 img/s with 2 threads beside a one-thread job, 50.7 with 1)."""
    if busy is None:
        return requested
    cores = cores or num_workers()
    return max(1, min(requested, int(cores - busy + 0.5)))


# -- files --------------------------------------------------------------------------------
#: temporaries of :func:`atomic_file` (``.NAME.RANDOM.tmpSUFFIX``) and of other atomic
#: writers (``.NAME.RANDOM.tmp``): what an interrupted write (kill -9, power cut) leaves
TEMPORARY_RE = re.compile(r"^\..+\.tmp(\.[A-Za-z0-9]{1,8})?$")
DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def is_temporary(name: str) -> bool:
    """True for the name of a temporary file left by an interrupted atomic write."""
    return bool(TEMPORARY_RE.match(name))


def remove_temporaries(directory: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Delete the temporaries of interrupted atomic writes in ``directory``; returns them.
    Only call this when no writer can be active there (a resume, a finished run)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [p for p in (d.rglob(".*") if recursive else d.glob(".*"))
             if is_temporary(p.name) and p.is_file() and not p.is_symlink()]
    for p in found:
        p.unlink(missing_ok=True)
    return found


def current_umask() -> int:
    """The process umask, without changing it (Linux: /proc; elsewhere set-and-restore)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # pragma: no cover - non-Linux
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


class DiskFullError(OSError):
    """Writing ``filename`` failed because the disk (or quota) is full."""

    def __str__(self) -> str:
        return f"{self.filename}: disk full ({self.strerror}); free some space and rerun to continue"


@contextmanager
def disk_full_names(path: str | os.PathLike) -> Iterator[None]:
    """Turn ENOSPC / EDQUOT inside the block into a :class:`DiskFullError` naming ``path``."""
    try:
        yield
    except DiskFullError:
        raise
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            raise DiskFullError(exc.errno, os.strerror(exc.errno), str(path)) from None
        raise


def check_output_dir(path: str | os.PathLike) -> Path:
    """Refuse an output folder that cannot be created: ``path`` or one of its parents is
    a regular file (ValueError naming it). Creates nothing."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                what = "is" if p == path else f"cannot be created: {p} is"
                raise ValueError(f"{path}: {what} a file, not a folder")
            break
    return path


def check_device(device: str) -> str:
    """Refuse a CUDA device this machine does not have (ValueError), before any work."""
    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: no CUDA GPU is available to this torch ({torch.__version__}); "
                             "use --device cpu or auto")
        index = str(device).partition(":")[2]
        if index.isdigit() and int(index) >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: only {torch.cuda.device_count()} CUDA GPU(s) are available")
    return device


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    A reader never sees a half-written file, and an interruption leaves the old file (or none).
    The temporary name keeps ``path``'s suffix, so writers that infer the format still work.
    The file gets the mode a plain ``open`` would give (0666 less the umask), not
    mkstemp's 0600: colleagues in the group must be able to verify and train on it.
    A full disk raises :class:`DiskFullError` naming ``path``.
    """
    path = Path(path)
    with disk_full_names(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
        try:
            yield Path(tmp)
            if os.path.exists(tmp):
                os.chmod(tmp, 0o666 & ~current_umask())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
