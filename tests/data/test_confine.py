"""Paths from label files and manifests never reach outside their root (issue 20 section 2):
``../``, absolute paths, ids used as path parts and symlinks are rejected with the reason,
and nothing outside the source is opened."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from open_spy import watch_opens
from PIL import Image

from mammosynth.cli import main
from mammosynth.data.adapters.mias import synthetic_film
from mammosynth.data.ingest import IngestConfig, ingest
from mammosynth.data.prepared import PreparedDataset
from mammosynth.data.preprocess import PreprocessConfig
from mammosynth.io.paths import OutsideRootError, confine

FAST = IngestConfig(workers=1, preprocess=PreprocessConfig(size=(64, 40), work_size=32))


@pytest.fixture
def outside(tmp_path):
    """A folder beside the source with a valid film and a mask (the sentinel files)."""
    d = tmp_path / "outside"
    d.mkdir()
    Image.fromarray(synthetic_film(128, "left", seed=1)).save(d / "film.png")
    m = np.zeros((128, 128), np.uint8)
    m[50:60, 50:60] = 255
    Image.fromarray(m).save(d / "mask.png")
    (d / "labels.csv").write_text("file\nfilm.png\n")
    return d


def test_confine_unit(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.png").write_bytes(b"x")
    (tmp_path / "src" / "link").symlink_to(tmp_path)
    assert confine(tmp_path / "src", "a.png") == tmp_path / "src" / "a.png"
    for bad in ("../x.png", "/etc/passwd", "link/x.png", "a/../../x"):
        with pytest.raises(OutsideRootError, match="outside"):
            confine(tmp_path / "src", bad)


def test_folder_labels_traversal_absolute_symlink(tmp_path, outside):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(synthetic_film(128, "right", seed=2)).save(src / "good.png")
    (src / "in_link.png").symlink_to(outside / "film.png")
    (src / "etc_link.png").symlink_to("/etc/hostname")
    rows = ["file,finding,mask", "good.png,,", "../outside/film.png,,", f"{outside / 'film.png'},,",
            "in_link.png,,", "etc_link.png,,", "good.png,mass,../outside/mask.png", "/etc/passwd,,"]
    (src / "labels.csv").write_text("\n".join(rows) + "\n")
    with watch_opens(outside) as opened, watch_opens("/etc") as etc:
        res = ingest(src, "folder", tmp_path / "out", FAST)
    assert opened == [] and [p for p in etc if "passwd" in p or "hostname" in p] == []
    reasons = " | ".join(f"{r['source_file']}: {r['reason']}" for r in res.rejects)
    for line in (3, 4, 5, 6, 7, 8):
        assert f"labels.csv:{line}: bad label row: path outside the source" in reasons, reasons
    assert res.added == 0 and res.exit_code == 1  # good.png's labels are incomplete (row 7)


def test_folder_without_labels_symlinks_out_rejected(tmp_path, outside):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(synthetic_film(128, "right", seed=2)).save(src / "good.png")
    (src / "in_link.png").symlink_to(outside / "film.png")
    (src / "sub").symlink_to(outside, target_is_directory=True)  # a folder symlink is not walked
    with watch_opens(outside) as opened:
        res = ingest(src, "folder", tmp_path / "out", FAST)
    assert opened == [] and res.added == 1
    assert [r["source_file"] for r in res.rejects] == ["in_link.png"]
    assert res.rejects[0]["reason"].startswith("path outside the source")


def test_vindr_and_rsna_ids_cannot_walk_out(tmp_path, outside):
    src = tmp_path / "vindr"
    (src / "images" / "st1").mkdir(parents=True)
    (outside / "evil.png").write_bytes((outside / "film.png").read_bytes())
    (src / "breast-level_annotations.csv").write_text(
        "study_id,image_id,laterality,view_position,breast_density\n"
        "../../outside,evil,L,CC,DENSITY B\n/tmp/../" + str(outside)[1:] + ",evil,L,CC,DENSITY B\n")
    with watch_opens(outside) as opened:
        res = ingest(src, "vindr", tmp_path / "out", FAST)
    assert opened == [] and res.added == 0
    assert all("outside the source" in r["reason"] or "not a plain name" in r["reason"] for r in res.rejects), res.rejects
    assert len(res.rejects) == 2


def tiny_prepared(root, n=2):
    from mammosynth.data.prepared import DatasetWriter
    from mammosynth.data.schema import ImageRecord

    with DatasetWriter(root, kind="real", source={"name": "t"}) as wr:
        for i in range(n):
            img = (synthetic_film(128, "left", seed=i).astype(np.uint16) * 257)
            wr.add(ImageRecord(image_id=f"img{i}", patient_id=f"p{i}", laterality="R", view="CC", split="train"), img)
    return root


def crafted_prepared(tmp_path, outside):
    root = tiny_prepared(tmp_path / "prep")
    lines = (root / "manifest.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    rec["file"] = "../outside/film.png"
    lines[0] = json.dumps(rec)
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_prepared_reader_refuses_outside_paths(tmp_path, outside, capsys):
    root = crafted_prepared(tmp_path, outside)
    ds = PreparedDataset(root)
    with watch_opens(outside) as opened:
        with pytest.raises(ValueError, match="outside the dataset"):
            ds.image(0)
        assert main(["show", str(root), "--out", str(tmp_path / "sheet.png")]) == 1
        res = ingest(root, "prepared", tmp_path / "re", FAST)
    assert opened == []
    assert "outside" in capsys.readouterr().err
    assert res.added == 1 and "outside" in res.rejects[0]["reason"]


def test_symlinked_image_in_prepared_set_refused(tmp_path, outside):
    root = tiny_prepared(tmp_path / "prep")
    rec = PreparedDataset(root)[0]
    os.unlink(root / rec.file)
    (root / rec.file).symlink_to(outside / "film.png")
    with watch_opens(outside) as opened:
        with pytest.raises(ValueError, match="outside the dataset"):
            PreparedDataset(root).image(0)
    assert opened == []


def test_training_loader_refuses_outside_paths(tmp_path, outside):
    from mammosynth.training.data import load_training_data

    root = crafted_prepared(tmp_path, outside)
    with watch_opens(outside) as opened:
        with pytest.raises(ValueError, match="outside the dataset"):
            load_training_data(str(root), (32, 20), (), show_progress=False)
    assert opened == []


def test_label_file_symlinked_out_is_never_read(tmp_path, outside):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(synthetic_film(128, "right", seed=2)).save(src / "good.png")
    (src / "labels.csv").symlink_to(outside / "labels.csv")
    with watch_opens(outside) as opened:
        with pytest.raises(ValueError, match="symlink to outside"):
            ingest(src, "folder", tmp_path / "out", FAST)
    assert opened == []


def test_cbis_and_nbia_paths_cannot_walk_out(tmp_path, outside):
    """CBIS CSV paths (``..``, absolute) and NBIA ``File Location`` never list or open outside."""
    src = tmp_path / "cbis"
    src.mkdir()
    (outside / "1-1.dcm").write_bytes(b"not read")
    hdr = "patient_id,left or right breast,image view,abnormality type,pathology,image file path,ROI mask file path"
    (src / "mass_case_description_train_set.csv").write_text(
        hdr + "\nP_1,LEFT,CC,mass,BENIGN,../outside/1-1.dcm,\n"
        f"P_2,LEFT,CC,mass,BENIGN,{outside / '1-1.dcm'},\nP_3,LEFT,CC,mass,BENIGN,..,\n")
    (src / "metadata.csv").write_text(
        "Series UID,Subject ID,File Location,Series Description\n1.2.3,P_4,..\\..\\outside,full mammogram images\n")
    with watch_opens(outside) as opened:
        res = ingest(src, "cbis-ddsm", tmp_path / "out", FAST)
    assert opened == [] and res.added == 0
    outside_rows = [r for r in res.rejects if r["reason"].startswith("path outside the source")]
    assert len(outside_rows) == 3, res.rejects


def test_label_files_in_a_symlinked_folder_are_never_read(tmp_path, outside):
    """``source/sub -> outside``: the ``*/name`` patterns of VinDr, CBIS, NBIA and CMMD find
    label files one folder down; through a symlinked folder they lie outside and are skipped."""
    from mammosynth.data.adapters import cbis_ddsm, cmmd, nbia, vindr

    for name in ("breast-level_annotations.csv", "finding_annotations.csv", "metadata.csv",
                 "mass_case_description_train_set.csv", "CMMD_clinicaldata_revision.xlsx"):
        (outside / name).write_text("x\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "sub").symlink_to(outside, target_is_directory=True)
    with watch_opens(outside) as opened:
        assert cbis_ddsm.csv_files(src) == []
        assert nbia.find_metadata(src) is None
        assert vindr._find(src, "breast-level_annotations.csv") is None
        assert cmmd.clinical_file(src) is None
    assert opened == []
    (src / "real").mkdir()
    (src / "real" / "metadata.csv").write_text("x\n")
    assert [p.parent.name for p in cbis_ddsm.label_files(src, "*/metadata.csv")] == ["real"]
