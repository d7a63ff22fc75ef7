"""Checkpoints after kill -9 and corruption (issue 20): stale temporaries, best.pt fallback,
clear messages for files that are not checkpoints, one-line CLI errors."""
from __future__ import annotations

import os

import pytest

from mammosynth.cli import main
from mammosynth.training import train
from mammosynth.training.checkpoint import find_checkpoint, list_checkpoints, load_checkpoint

from test_train import tiny_config


def _corrupt(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_resume_cleans_stale_temporaries(tiny_dataset, tmp_path, capsys):
    runs = tmp_path / "runs"
    run = train(str(tiny_dataset), runs, tiny_config(kimg=0.008))
    ckdir = run / "checkpoints"
    # what kill -9 during a checkpoint write leaves: zero-byte and partial temporaries
    stale = [ckdir / ".ckpt-000000.012.pt.a1b2c3.tmp.pt", ckdir / ".best.pt.x9y8z7.tmp.pt"]
    stale[0].write_bytes(b"")
    stale[1].write_bytes(b"PK\x03\x04 half a checkpoint")
    train(str(tiny_dataset), runs, tiny_config(kimg=0.012), resume="latest")
    assert not any(p.exists() for p in stale)
    assert "temporar" in capsys.readouterr().err
    assert not [p for p in ckdir.iterdir() if p.name.startswith(".")]


def test_resume_falls_back_to_a_valid_best(tiny_dataset, tmp_path, capsys):
    runs = tmp_path / "runs"
    run = train(str(tiny_dataset), runs, tiny_config(kimg=0.008))
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    for p in list_checkpoints(run):
        _corrupt(p)
    assert find_checkpoint(run, "latest") == run / "checkpoints" / "best.pt"
    assert "best.pt" in capsys.readouterr().err
    resumed = train(str(tiny_dataset), runs, tiny_config(kimg=0.012), resume="latest")
    assert resumed == run
    newest = load_checkpoint(find_checkpoint(run, "latest"))
    assert newest["step"] > best["step"]


def test_nothing_valid_is_still_an_error(tiny_dataset, tmp_path):
    runs = tmp_path / "runs"
    run = train(str(tiny_dataset), runs, tiny_config(kimg=0.004))
    for p in [*list_checkpoints(run), run / "checkpoints" / "best.pt"]:
        _corrupt(p)
    with pytest.raises(FileNotFoundError, match="no valid checkpoint|no run with a valid checkpoint"):
        train(str(tiny_dataset), runs, tiny_config(kimg=0.008), resume="latest")


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"hello, this is a text file\n", "not a checkpoint"),
    (b"\x89PNG\r\n\x1a\n0000", "not a checkpoint"),
])
def test_files_that_are_not_checkpoints_are_named(tmp_path, content, message):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as exc:
        load_checkpoint(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_train_out_under_a_regular_file_is_one_line(tiny_dataset, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    rc = main(["train", str(tiny_dataset), "--out", str(tmp_path / "afile" / "runs"), "--kimg", "0.004"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "afile" in err and "not a folder" in err


def test_checkpoints_honour_the_umask(tiny_dataset, tmp_path):
    old = os.umask(0o022)
    try:
        run = train(str(tiny_dataset), tmp_path / "runs", tiny_config(kimg=0.004))
    finally:
        os.umask(old)
    mode = (run / "checkpoints" / "best.pt").stat().st_mode & 0o777
    assert mode == 0o644, oct(mode)
