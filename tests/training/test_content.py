"""Content width: networks built for the columns the films' breasts occupy, output padded
to the frame (ModelConfig.content_width, TrainConfig.content)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mammosynth.models import ModelConfig, build_discriminator, build_generator
from mammosynth.models.inference import prepare_for_inference
from mammosynth.training import TrainConfig, train
from mammosynth.training.data import content_extents, content_width_for, fit_content


def frames(extents: list[int], h: int = 32, w: int = 64) -> torch.Tensor:
    """Images in [-1, 1]: background -1, a breast of 0.2 from column 0 to each extent."""
    x = torch.full((len(extents), 1, h, w), -1.0)
    for i, e in enumerate(extents):
        x[i, :, 4:h - 4, :e] = 0.2
    return x


def test_extents_and_width_rule():
    x = frames([20, 23, 30, 0])
    assert content_extents(x).tolist() == [20, 23, 30, 0]
    # 95 % of [20, 21, ..., 39] reach 38 at most: the next multiple of H/8 = 4 is 40
    assert content_width_for(frames(list(range(20, 40)))) == 40
    # never below half the height or 16 columns; 0 when the rule gives the whole width
    assert content_width_for(frames([3, 4, 5])) == 16
    assert content_width_for(frames([60, 62, 63])) == 0
    noisy = frames([20, 21]) + 0.01 * torch.rand(2, 1, 32, 64)  # a background that is not empty
    assert content_width_for(noisy) == 0


def test_fit_content_crops_and_scales_the_widest():
    x = frames([20, 48])
    out = fit_content(x, 32)
    assert out.shape == (2, 1, 32, 32)
    assert torch.equal(out[0], x[0, :, :, :32])  # within the width: cropped, exact
    # wider: scaled by 32/48 into the frame, chest wall left, centred vertically, still reaching its right edge
    wide = out[1, 0] > -0.999
    assert wide[:, -1].any() and int(content_extents(out[1:]).item()) == 32
    rows = torch.nonzero(wide.any(dim=1)).flatten()
    assert rows.min() > 4 and rows.max() < 27  # 24 breast rows x 2/3 = 16, centred


def test_model_config_content_width():
    cfg = ModelConfig.for_family("fastgan", resolution=(32, 64), content_width=40)
    assert cfg.content_resolution == (32, 40) and cfg.base_size == (8, 10)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    legacy = cfg.to_dict()
    del legacy["content_width"]  # runs saved before the field: the whole width
    assert ModelConfig.from_dict(legacy).content_width == 0
    assert ModelConfig.for_family("fastgan", resolution=(32, 64), content_width=64).content_width == 0
    assert ModelConfig.for_family("dcgan", resolution=(32, 64), content_width=40).content_width == 0
    for bad in (42, 72, -4):
        with pytest.raises(ValueError, match="content_width"):
            ModelConfig.for_family("fastgan", resolution=(32, 64), content_width=bad)


def test_generator_pads_the_frame_and_inference_form_agrees():
    torch.manual_seed(0)
    cfg = ModelConfig.for_family("fastgan", resolution=(32, 64), content_width=24, g_channels=4, d_channels=4,
                                 max_channels=16, z_dim=16)
    G = build_generator(cfg)
    z = torch.randn(3, 16)
    G.train()
    G(z)  # running statistics
    G.eval()
    with torch.no_grad():
        full, content = G(z), G(z, frame=False)
        folded = prepare_for_inference(G)(z)
    assert full.shape == (3, 1, 32, 64) and content.shape == (3, 1, 32, 24)
    assert torch.equal(full[..., :24], content) and bool((full[..., 24:] == -1).all())
    assert torch.allclose(folded, full, atol=1e-4)
    D = build_discriminator(cfg)
    logits, _ = D(torch.cat([content, content]))
    assert logits.shape == (6,)


@pytest.mark.parametrize("content", ["auto", "full"])
def test_training_chooses_content_width_and_samples_fill_the_frame(tiny_dataset_factory, tmp_path, content,
                                                                   one_torch_thread):
    from mammosynth.sampling import GanPipeline

    # 64x32 films in a 32x32 frame: the breasts fill the left 16 columns
    data = tiny_dataset_factory(size=(64, 32))
    model = ModelConfig.for_family("fastgan", resolution=(32, 32), g_channels=4, d_channels=4, max_channels=16,
                                   z_dim=16)
    cfg = TrainConfig(model=model, minutes=None, kimg=0.008, batch=4, quality_n=8, grid_cols=4, content=content)
    run = train(str(data), tmp_path / "runs", cfg)
    saved = json.loads((run / "config.json").read_text())
    width = 16 if content == "auto" else 0
    assert saved["model"]["content_width"] == width
    assert saved["r1_gamma"] == pytest.approx(0.0002 * 32 * (width or 32) / 4)
    images = GanPipeline.from_pretrained(run)(4, seed=1, remove_background=False).images
    assert images.shape == (4, 32, 32)
    if width:
        assert (images[:, :, width:] == 0).all()  # the padding is background
    assert np.ptp(images[:, :, :16]) > 0


def test_cli_dry_run_shows_the_content_width_and_full_keeps_the_frame(tiny_dataset_factory, tmp_path, capsys):
    from mammosynth.cli import main

    data = tiny_dataset_factory(size=(64, 32))
    out = {}
    for mode in ("auto", "full"):
        assert main(["train", str(data), "--out", str(tmp_path / "runs"), "--resolution", "32", "32",
                     "--content", mode, "--dry-run"]) == 0
        captured = capsys.readouterr()
        out[mode] = (json.loads(captured.out), captured.err)
    auto, full = out["auto"], out["full"]
    assert auto[0]["config"]["model"]["content_width"] == 16 and full[0]["config"]["model"]["content_width"] == 0
    assert "fastgan 32x32 (networks at 32x16, the films' content" in auto[1]
    assert "networks at" not in full[1]
    # the cost is counted for what the networks draw: half the columns, about half the work
    assert auto[0]["cost"]["train_gflop"] < 0.7 * full[0]["cost"]["train_gflop"]
    assert not (tmp_path / "runs").exists()
