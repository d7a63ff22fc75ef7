"""GanPipeline: index reproducibility, labels, save/load round trip, errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mammosynth.sampling import GanPipeline

from sampling_helpers import assert_close_u16


def test_call_returns_uint16_images_and_fixed_labels(tiny_pipe):
    out = tiny_pipe(n=5, density="D", finding="mass", view="MLO", seed=0)
    assert out.images.shape == (5, 16, 16) and out.images.dtype == np.uint16
    assert out.labels == [{"density": "D", "finding": "mass", "view": "MLO", "laterality": "R"}] * 5
    assert out.indices == [0, 1, 2, 3, 4]
    assert len({im.tobytes() for im in out.images}) == 5  # different latents


def test_image_i_is_reproducible_on_its_own(tiny_pipe):
    full = tiny_pipe(n=16, seed=3, batch_size=16)
    one = tiny_pipe(n=1, seed=3, start=5, batch_size=1)
    assert one.labels[0] == full.labels[5]
    assert_close_u16(one.images[0], full.images[5])
    small_batches = tiny_pipe(n=16, seed=3, batch_size=3)
    assert small_batches.labels == full.labels
    assert_close_u16(small_batches.images, full.images)
    assert np.array_equal(tiny_pipe(n=16, seed=3, batch_size=16).images, full.images)
    other_seed = tiny_pipe(n=16, seed=4)
    assert not np.array_equal(other_seed.images, full.images)


def test_labels_change_the_image(tiny_pipe):
    a = tiny_pipe(n=2, seed=0, density="A").images
    d = tiny_pipe(n=2, seed=0, density="D").images
    assert not np.array_equal(a, d)


def test_mix_and_fixed_label_conflict(tiny_pipe):
    with pytest.raises(ValueError, match="both"):
        tiny_pipe(n=1, density="A", mix={"density": "A:1"})
    with pytest.raises(ValueError, match="unknown value 'E'"):
        tiny_pipe(n=1, density="E")


def test_save_load_round_trip_gives_identical_outputs(tiny_pipe, tmp_path):
    ref = tiny_pipe(n=6, seed=1, mix={"finding": "mass:0.5,none:0.5"})
    d = tiny_pipe.save_pretrained(tmp_path / "pretrained")
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["label_axes"]["density"] == ["A", "B", "C", "D"]
    assert cfg["label_freq"]["density"]["B"] == 0.4
    assert cfg["provenance"]["run"] == "00001-tiny"
    assert (d / "model.safetensors").is_file()
    loaded = GanPipeline.from_pretrained(d)
    assert loaded.checkpoint_sha256 == tiny_pipe.checkpoint_sha256
    again = loaded(n=6, seed=1, mix={"finding": "mass:0.5,none:0.5"})
    assert np.array_equal(again.images, ref.images)
    assert again.labels == ref.labels


def test_from_pretrained_errors_name_the_file(tiny_pipe, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        GanPipeline.from_pretrained(tmp_path / "nowhere")
    d = tiny_pipe.save_pretrained(tmp_path / "p")
    (d / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="model.safetensors"):
        GanPipeline.from_pretrained(d)
    d2 = tiny_pipe.save_pretrained(tmp_path / "p2")
    (d2 / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match="config.json"):
        GanPipeline.from_pretrained(d2)


def test_save_without_model_config_is_an_error(tiny_pipe, tmp_path):
    bare = GanPipeline(tiny_pipe.generator)
    with pytest.raises(ValueError, match="model config"):
        bare.save_pretrained(tmp_path / "x")
    assert len(bare.checkpoint_sha256) == 64  # falls back to a hash of the weights
