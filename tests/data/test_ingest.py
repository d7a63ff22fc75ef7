"""End-to-end ingest: MIAS-style source, bad input, exit codes, reruns, splits, prepared layout, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mammosynth.cli import main
from mammosynth.data.adapters.mias import synthetic_film, write_mias_like
from mammosynth.data.ingest import IngestConfig, ingest
from mammosynth.data.prepared import DatasetWriter, PreparedDataset
from mammosynth.data.preprocess import PreprocessConfig
from mammosynth.data.schema import Finding, ImageRecord

FAST = IngestConfig(workers=1, preprocess=PreprocessConfig(size=(64, 40), work_size=32))


@pytest.fixture
def mias(tmp_path):
    return write_mias_like(tmp_path / "mias", n=6, size=128)


def test_mias_like_full_success(mias, tmp_path):
    res = ingest(mias, "auto", tmp_path / "out", FAST)
    assert res.layout == "mias" and res.added == 6 and res.rejected == 0 and res.exit_code == 0
    ds = PreparedDataset(tmp_path / "out")
    by = {r.image_id: r for r in ds}
    assert len(ds) == 6 and all(ds.image(i).shape == (64, 40) for i in range(6))
    # odd films have the chest wall on the right: flipped, laterality inferred L
    assert by["mdb001"].preprocessing["flipped"] and by["mdb001"].laterality == "L"
    assert not by["mdb002"].preprocessing["flipped"] and by["mdb002"].laterality == "R"
    for i in range(len(ds)):  # every chest wall on the left edge
        cols = (ds.image(i) > 0).mean(axis=0)
        assert cols[:2].mean() > cols[-8:].mean()
    # labels as in Info.txt
    f = by["mdb001"].findings[0]
    assert (f.kind, f.pathology, f.source_codes["class"]) == ("mass", "benign", "CIRC")
    assert by["mdb002"].findings == () and by["mdb002"].density in "ABC"
    # mdb(2k-1), mdb(2k): one woman, one split; ids are hashes
    assert by["mdb001"].patient_id == by["mdb002"].patient_id != by["mdb003"].patient_id
    assert by["mdb001"].split == by["mdb002"].split
    assert "mias" not in by["mdb001"].patient_id and len(by["mdb001"].patient_id) == 16
    info = json.loads((tmp_path / "out/dataset.json").read_text())
    assert info["schema_version"] == 1 and info["settings"]["preprocess"]["size"] == [64, 40]
    assert len(info["files"]) == 6 and info["source"]["layout"] == "mias"
    assert by["mdb001"].pixel_spacing_mm[0] == pytest.approx(0.2 * by["mdb001"].preprocessing["transforms"][2]["from"][0] / by["mdb001"].preprocessing["transforms"][2]["to"][0])


def test_bad_inputs_rejected_not_fatal(mias, tmp_path):
    (mias / "mdb002.pgm").write_bytes((mias / "mdb002.pgm").read_bytes()[:300])  # truncated
    (mias / "mdb003.pgm").write_text("this is not an image")
    Image.fromarray(np.zeros((128, 128), bool)).save(mias / "mdb004.png")  # 1-bit, wrong depth
    (mias / "mdb004.pgm").unlink()
    Image.fromarray(synthetic_film(128, "left", seed=9)).save(mias / "mdb099.pgm")  # no label row
    (mias / "mdb006.pgm").unlink()  # row points to a missing file
    with open(mias / "Info.txt", "a") as f:
        f.write("mdb007 G CIRC Q 1 2 3\n")
    res = ingest(mias, "mias", tmp_path / "out", FAST)
    reasons = {r["source_file"]: r["reason"] for r in res.rejects}
    assert reasons["mdb002.pgm"].startswith("unreadable image")
    assert reasons["mdb003.pgm"].startswith("unreadable image")
    assert "wrong bit depth" in reasons["mdb004.png"] or "1-bit" in reasons["mdb004.png"]
    assert "unlabelled" in reasons["mdb099.pgm"]
    assert "missing file" in reasons["mdb006.pgm"]
    assert "unknown severity code 'Q'" in reasons["Info.txt:7"]
    assert res.added == 2 and res.exit_code == 3
    lines = (tmp_path / "out/rejects.jsonl").read_text().splitlines()
    assert len(lines) == len(res.rejects)
    assert "rejected" in res.summary()


def test_rerun_is_idempotent_and_settings_guarded(mias, tmp_path):
    out = tmp_path / "out"
    first = ingest(mias, "mias", out, IngestConfig(workers=1, limit=3, preprocess=FAST.preprocess))
    assert first.added == 3
    before = {p.name: p.stat().st_mtime_ns for p in (out / "images").iterdir()}
    second = ingest(mias, "mias", out, FAST)
    assert second.skipped == 3 and second.added == 3 and second.total == 6
    after = {p.name: p.stat().st_mtime_ns for p in (out / "images").iterdir()}
    assert all(after[k] == v for k, v in before.items())  # nothing overwritten
    third = ingest(mias, "mias", out, FAST)
    assert third.added == 0 and third.skipped == 6 and third.exit_code == 0
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 6
    with pytest.raises(ValueError, match="other settings"):
        ingest(mias, "mias", out, IngestConfig(workers=1, preprocess=PreprocessConfig(size=(32, 20), work_size=32)))


def test_output_inside_source_refused(mias):
    with pytest.raises(ValueError, match="outside the source"):
        ingest(mias, "mias", mias / "prepared", FAST)


def test_nothing_ingested_exit_1(tmp_path):
    src = tmp_path / "empty"
    src.mkdir()
    (src / "Info.txt").write_text("mdb001 G NORM \n")
    res = ingest(src, "mias", tmp_path / "out", FAST)
    assert res.added == 0 and res.exit_code == 1


def test_process_pool_matches_serial(mias, tmp_path):
    a = ingest(mias, "mias", tmp_path / "a", FAST)
    b = ingest(mias, "mias", tmp_path / "b", IngestConfig(workers=2, preprocess=FAST.preprocess))
    assert a.added == b.added == 6
    ra = {r.image_id: r.sha256 for r in PreparedDataset(tmp_path / "a")}
    rb = {r.image_id: r.sha256 for r in PreparedDataset(tmp_path / "b")}
    assert ra == rb


def _raw_orientation_dataset(root):
    """A phantom-like prepared set: L breasts with the chest wall on the right, boxes and masks."""
    with DatasetWriter(root, kind="phantom", source={"name": "fake-phantom"}) as wr:
        for i in range(4):
            lat = "LR"[i % 2]
            film = synthetic_film(96, "right" if lat == "L" else "left", (60 if lat == "L" else 36, 40, 5), seed=i)
            x = 60 if lat == "L" else 36
            mask = np.zeros((96, 96), bool)
            mask[35:45, x - 5:x + 5] = True
            rec = ImageRecord(image_id=f"ph{i}", patient_id=f"hash{i // 2}", laterality=lat, view="CC",
                              density="B", findings=(Finding("mass", "benign", box=(x - 5, 35, x + 5, 45)),),
                              split="train", source_dataset="phantom")
            wr.add(rec, film.astype(np.uint16) * 257, masks={0: mask})
    return root


def test_prepared_layout_reprepares_phantom(tmp_path):
    src = _raw_orientation_dataset(tmp_path / "phantom")
    res = ingest(src, "auto", tmp_path / "out", FAST)
    assert res.layout == "prepared" and res.added == 4 and res.exit_code == 0
    ds = PreparedDataset(tmp_path / "out")
    assert ds.kind == "phantom"
    for i, r in enumerate(ds):
        assert r.preprocessing["flipped"] == (r.laterality == "L")
        assert r.patient_id == f"hash{int(r.image_id[2:]) // 2}" and r.split == "train"
        m = ds.mask(i, 0)
        ys, xs = np.nonzero(m)
        x0, y0, x1, y1 = r.findings[0].box
        assert x0 - 1 <= xs.min() and xs.max() < x1 + 1 and y0 - 1 <= ys.min() and ys.max() < y1 + 1
        img = ds.image(i).astype(float)
        assert img[int(y0):int(y1), int(x0):int(x1)].mean() > img[img > 0].mean()


def test_cli_ingest_and_show(mias, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["ingest", str(mias), "--layout", "mias", "--out", str(out), "--size", "64", "40", "--workers", "1"])
    assert rc == 0
    assert "6 added" in capsys.readouterr().out
    assert PreparedDataset(out)[0].height == 64
    rc = main(["show", str(out), "--n", "4", "--out", str(tmp_path / "s.png")])
    assert rc == 0 and (tmp_path / "s.png").is_file()
    (mias / "mdb005.pgm").write_text("garbage")
    rc = main(["ingest", str(mias), "--layout", "mias", "--out", str(tmp_path / "cli2"), "--size", "64", "40",
               "--workers", "1", "--no-crop"])
    assert rc == 3
    assert main(["ingest", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 1


@pytest.mark.parametrize("layout", ["mias", "folder"])
def test_relative_source_through_parent_folder(tmp_path, monkeypatch, layout):
    """``mammosynth ingest ../data/mias`` from a sibling folder: adapters name files as
    SOURCE/..., which must not be confined a second time under SOURCE (it once refused
    every film as 'outside the source')."""
    src = write_mias_like(tmp_path / "data" / "mias", n=4, size=128)
    if layout == "folder":
        src = tmp_path / "data" / "folder"
        src.mkdir()
        for i in range(3):
            Image.fromarray(synthetic_film(128, seed=i)).save(src / f"f{i}.png")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rel = "../data/" + src.name
    res = ingest(rel, layout, "out", FAST)
    assert res.rejected == 0 and res.added == (4 if layout == "mias" else 3)
    # the CLI takes the same relative path
    assert main(["ingest", rel, "--layout", layout, "--out", "out2", "--size", "64", "40", "--workers", "1"]) == 0
