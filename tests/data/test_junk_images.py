"""Junk is not a mammogram (issue 20 section 5): tiny, degenerate and constant images are
rejected with a reason; the run goes on."""
from __future__ import annotations

import numpy as np
from PIL import Image

from mammosynth.data.adapters.mias import synthetic_film
from mammosynth.data.ingest import MIN_IMAGE_SIDE, IngestConfig, ingest
from mammosynth.data.preprocess import PreprocessConfig

FAST = IngestConfig(workers=1, preprocess=PreprocessConfig(size=(64, 40), work_size=32))


def test_junk_images_rejected(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(synthetic_film(128, "left")).save(src / "good.png")
    for name, shape in {"1x1": (1, 1), "2x2": (2, 2), "1x4000": (1, 4000), "4000x1": (4000, 1),
                        "small": (MIN_IMAGE_SIDE - 1, 200)}.items():
        Image.fromarray(np.full(shape, 200, np.uint8)).save(src / f"{name}.png")
    Image.fromarray(np.full((256, 160), 30000, np.uint16)).save(src / "constant.png")
    res = ingest(src, "folder", tmp_path / "out", FAST)
    reasons = {r["source_file"]: r["reason"] for r in res.rejects}
    for name in ("1x1", "2x2", "1x4000", "4000x1", "small"):
        assert f"smaller than the minimum of {MIN_IMAGE_SIDE} px" in reasons[f"{name}.png"], reasons
    assert "constant image" in reasons["constant.png"]
    assert res.added == 1 and res.exit_code == 3
