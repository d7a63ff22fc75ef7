"""Spectral matching loss (training.spectral): what it rewards and what it punishes."""
from __future__ import annotations

import json

import pytest
import torch

from mammosynth.training.spectral import SpectralMatch, interior_patches, patch_size


def power_law_breasts(n: int, beta: float = 3.0, size: int = 128, seed: int = 0) -> torch.Tensor:
    """``n`` images in [-1, 1]: a half-disc "breast" on the left filled with isotropic
    f^-beta noise (mammographic parenchyma's second-order model), background -1."""
    g = torch.Generator().manual_seed(seed)
    fy = torch.fft.fftfreq(size)[:, None]
    fx = torch.fft.rfftfreq(size)[None, :]
    f = (fy ** 2 + fx ** 2).sqrt().clamp(min=1.0 / size)
    amp = f ** (-beta / 2)
    spec = torch.complex(torch.randn(n, size, size // 2 + 1, generator=g), torch.randn(n, size, size // 2 + 1, generator=g))
    tex = torch.fft.irfft2(spec * amp, s=(size, size))
    tex = tex / tex.std(dim=(1, 2), keepdim=True) * 0.15
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    breast = ((yy - size / 2) ** 2 + xx ** 2) < (0.45 * size * 2) ** 2 / 1.2
    return torch.where(breast, 0.2 + tex, torch.tensor(-1.0))[:, None]


def test_matching_texture_scores_low_and_wrong_texture_high():
    ref = SpectralMatch.from_images(power_law_breasts(16, seed=0))
    same = float(ref.loss(power_law_breasts(8, seed=1)))
    smooth = float(ref.loss(power_law_breasts(8, beta=5.0, seed=1)))
    x = power_law_breasts(8, seed=1)
    yy = torch.arange(128, dtype=torch.float32)[:, None]
    hatched = torch.where(x > -1, x + 0.03 * torch.sin(2 * torch.pi * (yy + yy.T) / 3.0), x)  # period-3 hatching
    assert same < 0.1
    assert smooth > 10 * same
    assert float(ref.loss(hatched)) > 5 * same


def test_gradient_reaches_the_pixels_and_background_is_ignored():
    ref = SpectralMatch.from_images(power_law_breasts(8))
    x = power_law_breasts(2, beta=5.0, seed=3).requires_grad_(True)
    ref.loss(x).backward()
    inside = (x.detach() > -1)
    assert x.grad[inside].abs().sum() > 0
    # no patch reaching into the background is used, so far-away background gets no gradient
    assert x.grad[:, :, :, -8:].abs().sum() == 0


def test_patch_size_follows_the_image_and_a_breastless_set_is_refused():
    assert patch_size((128, 80)) == 16 and patch_size((256, 160)) == 32 and patch_size((16, 16)) == 8
    assert interior_patches(torch.full((2, 1, 64, 64), -1.0), 16).shape[0] == 0
    with pytest.raises(ValueError, match="no 32-px patch"):
        SpectralMatch.from_images(torch.full((2, 1, 128, 128), -1.0))
    ref = SpectralMatch.from_images(power_law_breasts(4))
    empty = torch.full((2, 1, 128, 128), -1.0, requires_grad=True)
    assert float(ref.loss(empty).detach()) == 0.0  # no interior patch yet: no loss, but a graph
    ref.loss(empty).backward()


def test_training_logs_the_loss_and_old_runs_keep_it_off(tiny_dataset, tmp_path):
    from mammosynth.training import TrainConfig, train
    from mammosynth.models import ModelConfig

    assert TrainConfig().resolved().spectral_weight > 0  # fastgan default
    legacy = TrainConfig().to_dict()
    legacy.pop("spectral_weight")
    assert TrainConfig.from_dict(legacy).spectral_weight == 0.0
    model = ModelConfig.for_family("fastgan", resolution=(16, 16), g_channels=4, d_channels=4, max_channels=16, z_dim=16)
    run = train(str(tiny_dataset), tmp_path / "runs",
                TrainConfig(model=model, minutes=None, kimg=0.008, batch=4, quality_n=8, grid_cols=4,
                            spectral_weight=0.5))
    assert json.loads((run / "config.json").read_text())["spectral_weight"] == 0.5
