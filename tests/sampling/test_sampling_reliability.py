"""generate under hostile conditions (issue 20): --overwrite never deletes foreign files,
disk full and torn manifest rows, arguments checked before any image, one-line errors."""
from __future__ import annotations

import errno
import json

import pytest

from mammosynth.cli import main
from mammosynth.data.prepared import MANIFEST, PreparedDataset
from mammosynth.sampling import GenerateConfig, generate

pytestmark = pytest.mark.filterwarnings("ignore:images smaller than")


def _one_line_error(err: str, *needles: str) -> None:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert "Traceback" not in err, err
    assert any(all(n in x for n in needles) for x in lines), err


# -- 1. --overwrite removes only what mammosynth wrote ----------------------------------
def test_overwrite_keeps_foreign_files_beside_a_manifest(tiny_pipe, tmp_path):
    """The probe's case: manifest.jsonl and no dataset.json, with a user's files around it."""
    out = tmp_path / "work"
    (out / "thesis").mkdir(parents=True)
    (out / "thesis" / "chapter1.tex").write_text("years of work")
    (out / "precious.txt").write_text("keep me")
    (out / MANIFEST).write_text("")
    with pytest.raises(ValueError, match="precious.txt") as exc:
        generate(None, 2, out, GenerateConfig(overwrite=True), pipe=tiny_pipe)
    assert "refusing" in str(exc.value)
    assert (out / "precious.txt").read_text() == "keep me"
    assert (out / "thesis" / "chapter1.tex").read_text() == "years of work"


def test_overwrite_keeps_foreign_files_inside_a_synthetic_set(tiny_pipe, tmp_path, capsys):
    out = generate(None, 3, tmp_path / "syn", GenerateConfig(), pipe=tiny_pipe)
    (out / "notes.md").write_text("my notes")
    (out / "images" / "extra.png").write_bytes(b"not ours")
    rc = main(["generate", str(tiny_pipe.save_pretrained(tmp_path / "pre")), "--n", "2", "--out", str(out),
               "--overwrite"])
    assert rc == 1
    _one_line_error(capsys.readouterr().err, "refusing", "notes.md")
    assert (out / "notes.md").is_file() and (out / "images" / "extra.png").is_file()
    assert len(PreparedDataset(out)) == 3  # the old set is untouched too


def test_overwrite_replaces_a_set_with_its_own_leftovers(tiny_pipe, tmp_path):
    """Files mammosynth writes and can name: listed images, provenance files, stored but
    uncommitted images and temporaries of an interrupted write."""
    out = generate(None, 4, tmp_path / "syn", GenerateConfig(), pipe=tiny_pipe)
    assert (out / "provenance.json").is_file()
    (out / "images" / "syn-0-000009.png").write_bytes(b"stored, never committed")
    (out / "images" / ".syn-0-000010.png.k2j3.tmp.png").write_bytes(b"")
    generate(None, 2, out, GenerateConfig(seed=5, overwrite=True), pipe=tiny_pipe)
    ds = PreparedDataset(out)
    assert sorted(r.image_id for r in ds) == ["syn-5-000000", "syn-5-000001"]
    assert sorted(p.name for p in (out / "images").iterdir()) == ["syn-5-000000.png", "syn-5-000001.png"]


# -- 2. disk full ----------------------------------------------------------------------------
def test_torn_last_manifest_row_is_repaired_on_resume(tiny_pipe, tmp_path, capsys):
    out = generate(None, 4, tmp_path / "syn", GenerateConfig(batch=2), pipe=tiny_pipe)
    manifest = out / MANIFEST
    lines = manifest.read_text().splitlines(keepends=True)
    # disk full while appending the last row: half of it reached the disk, no newline
    manifest.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    assert len(PreparedDataset(out)) == 3  # readers skip the torn row instead of failing
    assert "torn" in capsys.readouterr().err
    generate(None, 4, out, GenerateConfig(batch=2), pipe=tiny_pipe)
    assert "repaired" in capsys.readouterr().err
    ds = PreparedDataset(out)
    assert sorted(r.image_id for r in ds) == [f"syn-0-{i:06d}" for i in range(4)]
    assert all(json.loads(x) for x in manifest.read_text().splitlines())


def test_a_bad_row_in_the_middle_still_fails(tmp_path, tiny_pipe):
    out = generate(None, 3, tmp_path / "syn", GenerateConfig(), pipe=tiny_pipe)
    lines = (out / MANIFEST).read_text().splitlines(keepends=True)
    (out / MANIFEST).write_text(lines[0] + "{garbage\n" + "".join(lines[1:]))
    with pytest.raises(ValueError, match=r"manifest.jsonl:2: bad manifest row"):
        PreparedDataset(out)


def test_failed_row_append_leaves_no_torn_line(tiny_pipe, tmp_path, monkeypatch):
    import mammosynth.data.prepared as prepared

    real_write = prepared.os.write
    calls = {"n": 0}

    def write(fd, data):
        calls["n"] += 1
        if calls["n"] == 3:  # the third row: half of it, then the disk is full
            real_write(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(prepared.os, "write", write)
    out = tmp_path / "syn"
    with pytest.raises(OSError, match="disk full"):
        generate(None, 5, out, GenerateConfig(batch=1), pipe=tiny_pipe)
    monkeypatch.undo()
    text = (out / MANIFEST).read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 2
    generate(None, 5, out, GenerateConfig(batch=1), pipe=tiny_pipe)
    assert len(PreparedDataset(out)) == 5


def test_disk_full_in_generate_is_one_line_naming_the_path(tiny_pipe, tmp_path, monkeypatch, capsys):
    import mammosynth.data.prepared as prepared

    pre = tiny_pipe.save_pretrained(tmp_path / "pre")

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(prepared, "write_image", full)
    out = tmp_path / "syn"
    rc = main(["generate", str(pre), "--n", "3", "--out", str(out)])
    assert rc == 1
    _one_line_error(capsys.readouterr().err, "disk full", str(out / "images"))


def test_disk_full_in_ingest_is_one_line_naming_the_path(tmp_path, monkeypatch, capsys):
    import numpy as np

    import mammosynth.data.prepared as prepared
    from mammosynth.io.images import write_image

    src = tmp_path / "src"
    yy, xx = np.mgrid[0:64, 0:48]
    img = np.where(((yy - 32) / 32) ** 2 + (xx / 48) ** 2 < 1, 30000, 0).astype(np.uint16)
    for i in range(2):
        write_image(src / f"img{i}.png", img)

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(prepared, "write_image", full)
    out = tmp_path / "prep"
    rc = main(["ingest", str(src), "--layout", "folder", "--out", str(out), "--workers", "1"])
    assert rc == 1
    _one_line_error(capsys.readouterr().err, "disk full", str(out))


# -- 3. arguments checked before any image ------------------------------------------------
@pytest.mark.parametrize("key_kind", ["missing", "garbage"])
def test_bad_key_is_refused_before_any_image(tiny_pipe, tmp_path, key_kind):
    key = tmp_path / "key.pem"
    if key_kind == "garbage":
        key.write_text("not a key")
    made = []
    out = tmp_path / "syn"
    with pytest.raises((ValueError, FileNotFoundError), match="key.pem"):
        generate(None, 3, out, GenerateConfig(key=str(key)), pipe=tiny_pipe,
                 callback=lambda i, r: made.append(i))
    assert made == [] and not (out / "images").exists()


def test_bad_output_dir_is_refused_before_any_image(tiny_pipe, tmp_path, capsys):
    pre = tiny_pipe.save_pretrained(tmp_path / "pre")
    (tmp_path / "afile").write_text("x")
    rc = main(["generate", str(pre), "--n", "2", "--out", str(tmp_path / "afile" / "syn")])
    assert rc == 1
    _one_line_error(capsys.readouterr().err, "afile", "not a folder")


def test_cuda_without_a_gpu_is_one_line(tiny_pipe, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    pre = tiny_pipe.save_pretrained(tmp_path / "pre")
    rc = main(["generate", str(pre), "--n", "2", "--out", str(tmp_path / "syn"), "--device", "cuda"])
    assert rc == 1
    _one_line_error(capsys.readouterr().err, "cuda", "no CUDA GPU")
    assert not (tmp_path / "syn").exists()


# -- 7. clear messages for files that are not checkpoints or do not fit ---------------------
def test_not_a_checkpoint_is_named(tmp_path, capsys):
    bad = tmp_path / "notes.pt"
    bad.write_text("hello, I am a text file")
    rc = main(["generate", str(bad), "--n", "1", "--out", str(tmp_path / "o")])
    assert rc == 1
    _one_line_error(capsys.readouterr().err, str(bad), "not a checkpoint")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    rc = main(["generate", str(empty), "--n", "1", "--out", str(tmp_path / "o")])
    _one_line_error(capsys.readouterr().err, str(empty), "empty")


def test_config_and_weights_that_disagree_name_the_tensor(tiny_pipe, tmp_path, capsys):
    pre = tiny_pipe.save_pretrained(tmp_path / "pre")
    cfg = json.loads((pre / "config.json").read_text())
    cfg["model"]["g_channels"] = 8
    (pre / "config.json").write_text(json.dumps(cfg))
    rc = main(["generate", str(pre), "--n", "1", "--out", str(tmp_path / "o")])
    assert rc == 1
    err = capsys.readouterr().err
    _one_line_error(err, "weights do not fit", "shape")
    assert "size mismatch" not in err


def test_ingest_out_under_a_regular_file_is_one_line(tmp_path, capsys):
    from mammosynth.io.images import write_image
    import numpy as np

    write_image(tmp_path / "src" / "a.png", np.full((64, 48), 30000, np.uint16))
    (tmp_path / "afile").write_text("x")
    rc = main(["ingest", str(tmp_path / "src"), "--layout", "folder", "--out", str(tmp_path / "afile" / "prep")])
    assert rc == 1
    _one_line_error(capsys.readouterr().err, "afile", "not a folder")


def test_saved_pipeline_honours_the_umask(tiny_pipe, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        pre = tiny_pipe.save_pretrained(tmp_path / "pre")
        out = generate(None, 2, tmp_path / "syn", GenerateConfig(), pipe=tiny_pipe)
    finally:
        os.umask(old)
    for path in (pre / "model.safetensors", out / "images" / "syn-0-000000.png", out / MANIFEST):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path
