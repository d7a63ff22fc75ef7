"""Synthetic images never re-enter as real (issue 20 section 3): ingest checks every input
for mammosynth's markings (text chunks, DICOM SYN/SYNTHETIC, the watermark) before
preprocessing; refuses them by default with a count in the summary; ``--allow-synthetic``
keeps them recorded as synthetic with their provenance."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "provenance"))
from prov_helpers import breast_image, synthetic_record  # noqa: E402

from mammosynth import provenance  # noqa: E402
from mammosynth.cli import main  # noqa: E402
from mammosynth.data.adapters.mias import synthetic_film  # noqa: E402
from mammosynth.data.ingest import IngestConfig, ingest  # noqa: E402
from mammosynth.data.prepared import PreparedDataset  # noqa: E402
from mammosynth.data.preprocess import PreprocessConfig  # noqa: E402
from mammosynth.io.images import write_image  # noqa: E402

FAST = IngestConfig(workers=1, preprocess=PreprocessConfig(size=(64, 40), work_size=32))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Two real films and four marked synthetics: text-marked PNG, TIFF, DICOM, and a PNG
    re-encoded without any text (only the watermark left)."""
    src = tmp_path_factory.mktemp("mixed")
    for i in range(2):
        Image.fromarray(synthetic_film(256, "left", seed=i)).save(src / f"real{i}.png")
    rec = synthetic_record(0)
    marked, text = provenance.mark_image(breast_image(256, 160, seed=3), rec, rec.generation)
    write_image(src / "syn_text.png", marked, text=text)
    write_image(src / "syn_tiff.tif", marked, fmt="tiff", text=text)
    provenance.write_synthetic_dicom(src / "syn.dcm", marked, rec)
    Image.fromarray(marked).save(src / "syn_stripped.png")  # re-encoded: no text chunk at all
    return src


def test_synthetic_refused_as_real_by_default(mixed, tmp_path, capsys):
    rc = main(["ingest", str(mixed), "--layout", "folder", "--out", str(tmp_path / "out"),
               "--size", "64", "40", "--workers", "1"])
    out = capsys.readouterr().out
    assert rc == 3
    assert "4 synthetic image(s) refused" in out, out
    reasons = {json.loads(x)["source_file"]: json.loads(x)["reason"]
               for x in (tmp_path / "out/rejects.jsonl").read_text().splitlines()}
    assert set(reasons) == {"syn_text.png", "syn_tiff.tif", "syn.dcm", "syn_stripped.png"}
    assert all(r.startswith("synthetic: mammosynth") for r in reasons.values())
    assert "watermark" in reasons["syn_stripped.png"] and "dicom" in reasons["syn.dcm"]
    ds = PreparedDataset(tmp_path / "out")
    assert len(ds) == 2 and not any(r.synthetic for r in ds)


def test_allow_synthetic_keeps_them_marked(mixed, tmp_path):
    res = ingest(mixed, "folder", tmp_path / "out", IngestConfig(**{**FAST.__dict__, "allow_synthetic": True}))
    assert res.added == 6 and res.rejected == 0, res.rejects
    by = {r.source_file: r for r in PreparedDataset(tmp_path / "out")}
    assert not by["real0.png"].synthetic and by["real0.png"].generation is None
    for name in ("syn_text.png", "syn_tiff.tif", "syn.dcm", "syn_stripped.png"):
        assert by[name].synthetic, name
        assert by[name].generation["detected_on_ingest"]
    assert by["syn_text.png"].generation["provenance"]["checkpoint_sha256"] == "ab" * 32
    assert by["syn_stripped.png"].generation["watermark"]["payload"]
    info = json.loads((tmp_path / "out/dataset.json").read_text())
    assert info["ingest"]["synthetic_kept"] == 4
    assert "4 synthetic image(s) kept" in res.summary()


def test_no_false_positive_on_real_films(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        Image.fromarray(synthetic_film(256, "left" if i % 2 else "right", seed=10 + i)).save(src / f"r{i}.png")
    res = ingest(src, "folder", tmp_path / "out", FAST)
    assert res.added == 6 and res.rejected == 0, res.rejects
