"""Shared helpers (issue 20): progress output in logs, atomic files and the umask."""
from __future__ import annotations

import io
import os
import stat

import pytest

from mammosynth import utils


class _Log(io.StringIO):
    def isatty(self):
        return False


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_off_a_terminal_prints_plain_lines(monkeypatch):
    log = _Log()
    monkeypatch.setattr("sys.stderr", log)
    monkeypatch.delenv("MAMMOSYNTH_NO_PROGRESS", raising=False)
    clock = iter(range(0, 10_000, 2))  # every item takes 2 s
    monkeypatch.setattr(utils.time, "monotonic", lambda: next(clock))
    assert list(utils.progress(range(20), total=20, desc="generate x")) == list(range(20))
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert 5 <= len(lines) <= 12  # one line every ~5 s of 40 s, plus the last one
    assert lines[-1].startswith("generate x: 20/20 img (100 %)")


def test_progress_bar_api_off_a_terminal(monkeypatch):
    log = _Log()
    monkeypatch.setattr("sys.stderr", log)
    monkeypatch.delenv("MAMMOSYNTH_NO_PROGRESS", raising=False)
    bar = utils.progress_bar(total=100, desc="train", unit="img", initial=10, unit_scale=True)
    bar.update(50)
    bar.set_postfix(p="0.10", D="1.2")
    bar.close()
    assert log.getvalue().splitlines()[-1].startswith("train: 60/100 img (60 %)")
    assert "p=0.10" in log.getvalue() and "\r" not in log.getvalue()


def test_progress_on_a_terminal_is_a_tqdm_bar(monkeypatch):
    monkeypatch.setattr("sys.stderr", _Terminal())
    from tqdm.auto import tqdm

    assert isinstance(utils.progress_bar(total=3, disable=False), tqdm)


def test_progress_is_silent_when_disabled(monkeypatch):
    log = _Log()
    monkeypatch.setattr("sys.stderr", log)
    monkeypatch.setenv("MAMMOSYNTH_NO_PROGRESS", "1")
    list(utils.progress(range(5), total=5))
    assert log.getvalue() == ""


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_files_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        with utils.atomic_file(tmp_path / "a.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == mode


def test_temporary_names():
    assert utils.is_temporary(".ckpt-000001.000.pt.a1b2c3.tmp.pt")
    assert utils.is_temporary(".model.safetensors.x8y7.tmp")
    assert not utils.is_temporary("ckpt-000001.000.pt") and not utils.is_temporary(".hidden.png")


def test_disk_full_names_the_path(tmp_path):
    import errno

    with pytest.raises(utils.DiskFullError, match=r"out/x\.png: disk full"):
        with utils.disk_full_names(tmp_path / "out" / "x.png"):
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(PermissionError):  # other errors pass unchanged
        with utils.disk_full_names(tmp_path):
            raise PermissionError(errno.EACCES, "denied")


def test_progress_iterates_numpy_arrays_off_a_terminal(monkeypatch):
    import numpy as np

    monkeypatch.setattr("sys.stderr", _Log())
    assert list(utils.progress(np.arange(3), total=3)) == [0, 1, 2]
