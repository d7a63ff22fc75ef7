"""Contact sheet: grid size, boxes drawn in the finding colour, errors."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mammosynth.data.contact_sheet import KIND_COLOURS, contact_sheet, select_indices
from mammosynth.data.prepared import PreparedDataset


def test_sheet_has_tiles_and_boxes(tiny_dataset, tmp_path):
    out = contact_sheet(tiny_dataset, tmp_path / "s.png", n=6, cols=3, tile_height=64)
    im = np.asarray(Image.open(out).convert("RGB"))
    assert im.shape[1] == 3 * (40 + 4) + 4
    assert (im.reshape(-1, 3) == KIND_COLOURS["mass"]).all(axis=1).any()  # a mass box is drawn


def test_split_and_selection(tiny_dataset, tmp_path):
    ds = PreparedDataset(f"{tiny_dataset}:train")
    assert contact_sheet(ds, tmp_path / "t.png", n=100).is_file()
    assert select_indices(10, 3) == [0, 4, 9] or select_indices(10, 3) == [0, 5, 9]
    assert select_indices(2, 5) == [0, 1]
    with pytest.raises(ValueError):
        select_indices(5, 0)
