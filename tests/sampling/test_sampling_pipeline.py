"""GanPipeline: index reproducibility, labels, save/load round trip, errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

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


class _DiscGenerator(torch.nn.Module):
    """Models-contract stub: a bright half-disc on the left over a near-black noisy
    background (what a tanh generator gives), or only a 2x2 speck when ``speck_only``."""

    z_dim, resolution, label_axes = 4, (32, 24), {"density": ("A", "B", "C", "D")}

    def __init__(self, speck_only: bool = False):
        super().__init__()
        self.speck_only = speck_only
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, z, labels):
        b, (h, w) = z.shape[0], self.resolution
        g = torch.Generator().manual_seed(0)
        if self.speck_only:
            x = -torch.ones(b, 1, h, w)
            x[:, :, 10:12, 10:12] = 0.5
            return self.scale * x
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        disc = ((yy - h / 2) ** 2 + xx ** 2 < (0.4 * h) ** 2).float()
        background = -1 + 0.01 * torch.rand(b, 1, h, w, generator=g)
        return self.scale * (disc * 0.4 + (1 - disc) * background)


def test_background_outside_the_breast_is_exactly_zero():
    pipe = GanPipeline(_DiscGenerator())
    clean = pipe(n=3, seed=0).images
    raw = pipe(n=3, seed=0, remove_background=False).images
    assert (raw[:, :, -1] > 0).any()  # the raw background is not flat
    assert (clean[:, :, -1] == 0).all() and (clean[:, 0, :] == 0).all()
    assert pipe(n=3, seed=0).background_removed == [True] * 3
    assert pipe(n=3, seed=0, remove_background=False).background_removed == [False] * 3
    inside = raw > 30000
    assert np.array_equal(clean[inside], raw[inside])  # the breast is untouched


def test_image_without_a_breast_is_left_as_generated():
    pipe = GanPipeline(_DiscGenerator(speck_only=True))
    out = pipe(n=2, seed=0).images
    assert np.array_equal(out, pipe(n=2, seed=0, remove_background=False).images)
    assert (out[:, 10:12, 10:12] > 0).all()
    assert pipe(n=2, seed=0).background_removed == [False, False]


def test_batches_side_by_side_give_the_same_images_and_restore_threads(tiny_pipe):
    threads = torch.get_num_threads()
    serial = tiny_pipe(n=10, seed=5, batch_size=3, workers=1)
    parallel = tiny_pipe(n=10, seed=5, batch_size=3, workers=3)
    assert torch.get_num_threads() == threads
    assert parallel.labels == serial.labels and parallel.indices == serial.indices
    assert parallel.background_removed == serial.background_removed
    assert_close_u16(parallel.images, serial.images)  # 1 vs N intra-op threads: float rounding at most
    assert np.array_equal(tiny_pipe(n=10, seed=5, batch_size=3, workers=3).images, parallel.images)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        tiny_pipe(n=2, workers=0)


def test_a_failing_batch_in_a_worker_raises_and_restores_threads(tiny_pipe, monkeypatch):
    threads = torch.get_num_threads()

    def broken(z, labels):
        raise RuntimeError("out of memory in batch")

    monkeypatch.setattr(tiny_pipe.inference_generator, "forward", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        tiny_pipe(n=6, batch_size=2, workers=2)
    assert torch.get_num_threads() == threads
