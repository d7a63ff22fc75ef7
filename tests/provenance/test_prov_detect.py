"""Screening: a mixed folder gives exactly the marked images; errors are reported clearly."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mammosynth.cli import main
from mammosynth.io.images import write_image
from mammosynth.provenance import detect_paths, mark_image, write_synthetic_dicom
from mammosynth.provenance.markings import read_markings

from prov_helpers import breast_image, synthetic_record


@pytest.fixture
def mixed_folder(tmp_path):
    """Marked: png16 (metadata + watermark), png8 with metadata stripped, JPEG q70, TIFF, DICOM.
    Unmarked: two PNGs, a JPEG, a TIFF; plus a note file that is not an image."""
    root = tmp_path / "screen"
    (root / "sub").mkdir(parents=True)
    marked = {}
    for i, name in enumerate(["m16.png", "sub/m8_stripped.png", "m.jpg", "m.tif", "sub/m.dcm"]):
        rec = synthetic_record(i)
        img, text = mark_image(breast_image(seed=20 + i), rec, rec.generation)
        path = root / name
        if name.endswith(".dcm"):
            write_synthetic_dicom(path, img, rec)
        elif name.endswith(".jpg"):
            Image.fromarray(((img.astype(np.uint32) + 128) // 257).astype(np.uint8)).save(path, quality=70)
        elif "m8_stripped" in name:
            write_image(path, img, fmt="png8")  # no text: only the watermark is left
        else:
            write_image(path, img, fmt="tiff" if name.endswith(".tif") else "png16", text=text)
        marked[str(path)] = i
    for i, name in enumerate(["u1.png", "sub/u2.png", "u.jpg", "u.tif"]):
        img = breast_image(seed=200 + i)
        path = root / name
        if name.endswith(".jpg"):
            Image.fromarray((img // 257).astype(np.uint8)).save(path, quality=90)
        else:
            write_image(path, img, fmt="tiff" if name.endswith(".tif") else "png16")
    (root / "notes.txt").write_text("not an image")
    return root, marked


def test_mixed_folder_finds_exactly_the_marked(mixed_folder):
    root, marked = mixed_folder
    results = detect_paths([root])
    assert len(results) == 9  # notes.txt is not scanned
    found = {r["path"] for r in results if r["synthetic"]}
    assert found == set(marked)
    by_path = {r["path"]: r for r in results}
    for path, index in marked.items():
        r = by_path[path]
        assert "watermark" in r["evidence"], path
        assert r["watermark"]["image32"] == index and r["watermark"]["p_value"] < 1e-5
    assert by_path[str(root / "m16.png")]["evidence"] == ["metadata", "watermark"]
    assert by_path[str(root / "m16.png")]["metadata"]["seed"] == 7
    assert by_path[str(root / "sub/m8_stripped.png")]["evidence"] == ["watermark"]
    assert by_path[str(root / "sub/m.dcm")]["evidence"] == ["dicom", "watermark"]
    assert "ConversionType SYN" in by_path[str(root / "sub/m.dcm")]["dicom"]
    assert by_path[str(root / "m.tif")]["metadata"]["labels"]["view"] == "CC"


def test_unreadable_and_missing_files_are_errors(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    notdcm = tmp_path / "x.dcm"
    notdcm.write_bytes(b"hello")
    results = detect_paths([bad, notdcm, tmp_path / "missing.png"])
    assert [("error" in r) for r in results] == [True, True, True]
    assert str(bad) in results[0]["error"] and "cannot decode" in results[0]["error"]
    assert "DICOM" in results[1]["error"]
    assert "file not found" in results[2]["error"]


def test_markings_read_back(tmp_path):
    rec = synthetic_record(1)
    img, text = mark_image(breast_image(), rec, rec.generation)
    write_image(tmp_path / "a.png", img, text=text)
    marks = read_markings(tmp_path / "a.png")
    assert marks and marks["provenance"]["labels"]["finding"] == "mass"
    write_image(tmp_path / "b.png", img)
    assert read_markings(tmp_path / "b.png") is None


def test_detect_cli_exit_codes(mixed_folder, tmp_path, capsys):
    root, marked = mixed_folder
    assert main(["detect", str(root), "--json"]) == 5
    out = json.loads(capsys.readouterr().out)
    assert sum(r["synthetic"] for r in out) == len(marked)
    assert main(["detect", str(root / "u1.png"), str(root / "sub" / "u2.png")]) == 0
    text = capsys.readouterr().out
    assert "clean" in text and "0 synthetic" in text
    assert main(["detect", str(root / "m16.png"), "--no-crop-search"]) == 5
    assert "SYNTHETIC" in capsys.readouterr().out
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"xx")
    assert main(["detect", str(bad)]) == 1
    assert "ERROR" in capsys.readouterr().out
