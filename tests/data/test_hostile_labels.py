"""One bad label row never stops the ingest (issue 20 section 5): huge numbers, fields over
the csv limit, deeply nested VinDr categories, Latin-1/BOM/binary label files."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mammosynth.data.adapters.mias import synthetic_film, write_mias_like
from mammosynth.data.adapters.vindr import parse_categories
from mammosynth.data.ingest import IngestConfig, ingest
from mammosynth.data.prepared import PreparedDataset
from mammosynth.data.preprocess import PreprocessConfig

FAST = IngestConfig(workers=1, preprocess=PreprocessConfig(size=(64, 40), work_size=32))


def reasons_of(res):
    return {r["source_file"]: r["reason"] for r in res.rejects}


def test_mias_huge_numbers_rejected_run_goes_on(tmp_path):
    src = write_mias_like(tmp_path / "mias", n=4, size=128)
    with open(src / "Info.txt", "a") as f:
        f.write("mdb" + "7" * 5000 + " G NORM\n")
        f.write("mdb" + "7" * 4000 + " G NORM\n")
        f.write("mdb009 G CIRC B " + "9" * 4000 + " 50 10\n")
    res = ingest(src, "mias", tmp_path / "out", FAST)
    reasons = reasons_of(res)
    assert res.added == 4
    assert "line over 4,096 characters" in reasons["Info.txt:5"]
    assert "is not mdbNNN" in reasons["Info.txt:6"] and len(reasons["Info.txt:6"]) < 300
    assert "too long" in reasons["Info.txt:7"] and len(reasons["Info.txt:7"]) < 300


def folder_source(tmp_path, n=2):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(n):
        Image.fromarray(synthetic_film(128, "left", seed=i)).save(src / f"f{i}.png")
    return src


def test_labels_field_over_csv_limit_rejected(tmp_path):
    src = folder_source(tmp_path)
    (src / "labels.csv").write_text("file,patient_id\nf0.png,p0\nf1.png," + "x" * 200_000 + "\n")
    res = ingest(src, "folder", tmp_path / "out", FAST)
    reasons = reasons_of(res)
    assert "field larger than" in reasons["labels.csv:3"] and len(reasons["labels.csv:3"]) < 300
    assert res.added == 1


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8-sig", "utf-8"])
def test_label_file_encodings(tmp_path, encoding):
    src = folder_source(tmp_path)
    (src / "labels.csv").write_bytes("file,patient_id\nf0.png,José\nf1.png,Zoë\n".encode(encoding))
    res = ingest(src, "folder", tmp_path / "out", FAST)
    assert res.added == 2 and res.rejected == 0, res.rejects


def test_binary_label_rows_named_by_file_and_line(tmp_path):
    src = folder_source(tmp_path)
    (src / "labels.csv").write_bytes(b"file,patient_id\nf0.png,p0\nf1.png,\x00\xff\xfe\x00junk\n")
    res = ingest(src, "folder", tmp_path / "out", FAST)
    assert "binary data" in reasons_of(res)["labels.csv:3"]
    assert res.added == 1


def test_binary_label_file_is_one_clear_error(tmp_path):
    src = folder_source(tmp_path)
    (src / "labels.csv").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match=r"labels\.csv"):
        ingest(src, "folder", tmp_path / "out", FAST)


def test_vindr_categories_bounded_parser():
    assert parse_categories("['Mass', \"Suspicious Calcification\"]") == ["Mass", "Suspicious Calcification"]
    assert parse_categories("No Finding") == ["No Finding"]
    assert parse_categories("[]") == []
    for bad in ("[" * 200_000 + "]" * 200_000, "[['Mass']]", "[__import__('os').system('true')]",
                "['Mass'] + ['x']", "['a'" + ", 'a'" * 10_000 + "]"):
        with pytest.raises(ValueError):
            parse_categories(bad)


def test_vindr_nested_categories_row_rejected(tmp_path):
    from test_adapters import film12, write_dicom

    src = tmp_path / "vindr"
    write_dicom(src / "images/st1/im1.dicom", film12("left"), laterality="R")
    write_dicom(src / "images/st2/im2.dicom", film12("left", seed=2), laterality="R")
    hdr = "study_id,image_id,laterality,view_position,breast_density,finding_categories,xmin,ymin,xmax,ymax\n"
    (src / "finding_annotations.csv").write_text(
        hdr + "st1,im1,R,MLO,DENSITY B,\"" + "[" * 60_000 + "]" * 60_000 + "\",,,,\n"
        "st2,im2,R,MLO,DENSITY B,['No Finding'],,,,\n")
    res = ingest(src, "vindr", tmp_path / "out", FAST)
    assert "finding_categories" in reasons_of(res)["finding_annotations.csv:2"]
    assert res.added == 1 and len(PreparedDataset(tmp_path / "out")) == 1
