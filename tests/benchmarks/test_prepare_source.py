"""benchmarks/train_gan.py trains on the films ingested at a larger size, holding back the
same films as its reference at the size itself."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import train_gan  # noqa: E402
from mammosynth.data.adapters.mias import write_mias_like  # noqa: E402
from mammosynth.data.prepared import PreparedDataset  # noqa: E402


def test_the_source_films_hold_back_the_reference_films(tmp_path):
    src = write_mias_like(tmp_path / "mias", n=6, size=128)
    split = train_gan.prepare(src, tmp_path / "work", (16, 16))
    big = train_gan.prepare_source(src, tmp_path / "work", (16, 16), split, scale=2)
    assert big.name == "split-32x32"
    for part in ("train", "test"):
        small_ds, big_ds = PreparedDataset(f"{split}:{part}"), PreparedDataset(f"{big}:{part}")
        assert [r.image_id for r in small_ds.records] == [r.image_id for r in big_ds.records]
    assert PreparedDataset(f"{big}:train").image(0).shape == (32, 32)
    other = train_gan.prepare(write_mias_like(tmp_path / "other", n=7, size=128), tmp_path / "work2", (16, 16))
    with pytest.raises(SystemExit, match="holds back other films"):
        train_gan.prepare_source(src, tmp_path / "work2", (16, 16), other, scale=2)
