"""Resampled copies of the training films (training.resample) and their way through training."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mammosynth.cli import main
from mammosynth.data.outline import ShapeReference
from mammosynth.training import TrainConfig, train
from mammosynth.training.checkpoint import find_checkpoint, load_checkpoint
from mammosynth.training.data import fit_unit, load_training_data
from mammosynth.training.resample import (ResampleConfig, can_resample, copy_generator, resample_line,
                                         resampled_copies, warp)

from test_train import tiny_config  # tests/training is on sys.path


def textured_film(h: int = 256, w: int = 160, seed: int = 0) -> torch.Tensor:
    """A half-ellipse breast against the chest wall (left edge) with a fine random texture."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    inside = ((yy - h / 2) / (0.45 * h)) ** 2 + (xx / (0.8 * w)) ** 2 < 1
    grain = F.avg_pool2d(torch.rand(1, 1, h, w, generator=g), 3, 1, 1)[0, 0]  # detail a few pixels wide
    return torch.where(inside, 0.35 + 0.4 * grain, torch.zeros(()))


def highpass(x: torch.Tensor) -> float:
    """Laplacian energy per pixel inside the breast, away from its edge."""
    k = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=torch.float32)[None, None]
    inside = -F.max_pool2d(-(x > -0.99).float(), 7, 1, 3)
    lap = F.conv2d(x, k, padding=1)
    return float((lap ** 2 * inside).sum() / inside.sum())


def test_copies_are_reproducible_and_differ_from_each_other_and_the_film():
    film, cfg = textured_film(), ResampleConfig(copies=3)
    a = resampled_copies(film, (64, 40), cfg, copy_generator(0, 5))
    b = resampled_copies(film, (64, 40), cfg, copy_generator(0, 5))
    assert len(a) == 3 and all(torch.equal(x, y) for x, y in zip(a, b))
    other = resampled_copies(film, (64, 40), cfg, copy_generator(1, 5))  # another run's seed
    fitted = fit_unit(film, (64, 40))
    for i, c in enumerate(a):
        assert c.shape == (1, 64, 40) and c.min() >= -1 and c.max() <= 1
        assert (c - fitted).abs().mean() > 1e-3 and (c - other[i]).abs().mean() > 1e-3
    assert (a[0] - a[1]).abs().mean() > 1e-3


def test_the_warp_keeps_the_chest_wall_edges_and_an_empty_background():
    film = textured_film()
    out = warp(film, ResampleConfig(displacement=0.05), torch.Generator().manual_seed(3))
    h = film.shape[0]
    rows = slice(int(0.15 * h), int(0.85 * h))  # the displacement fades to 0 at the top and bottom rows
    assert bool((out[rows, 0] > 0).all()), "the breast left the chest wall"
    assert bool((out[:, -5:] == 0).all()), "the background is not exactly empty"
    assert bool((film[0] == 0).all() == (out[0] == 0).all())


def test_copies_keep_the_films_fine_detail():
    """A copy warped at four times the training size is about as sharp as the film fitted to
    it; the warp at the training size itself is refused (it would blur)."""
    films = [textured_film(seed=s) for s in range(4)]
    cfg = ResampleConfig(copies=2)
    fitted = torch.stack([fit_unit(f, (64, 40)) for f in films])
    copies = torch.stack([c for i, f in enumerate(films) for c in resampled_copies(f, (64, 40), cfg, copy_generator(0, i))])
    assert 0.85 < highpass(copies) / highpass(fitted) < 1.15
    blurred = torch.stack([fit_unit(warp(fit_unit(f, (64, 40))[0] * 0.5 + 0.5, cfg, torch.Generator().manual_seed(0)),
                                    (64, 40)) for f in films])
    assert highpass(blurred) / highpass(fitted) < 0.8  # what copies at 1x would have been
    assert not can_resample((64, 40), (64, 40)) and not can_resample((127, 80), (64, 40))
    assert can_resample((128, 80), (64, 40))
    assert resampled_copies(fitted[0, 0] * 0.5 + 0.5, (64, 40), cfg, copy_generator(0, 0)) == []


def test_a_wider_copy_of_a_film_that_fills_the_frames_height_still_fills_it():
    """A film fitted by its height (a square frame, the breast in its left half): its copies
    are cropped to the breast before the fit, so a wider one is a wider breast, not the same
    frame shrunk with empty rows above and below."""
    h = w = 256
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    film = torch.where(((yy + 0.5 - h / 2) / (h / 2)) ** 2 + (xx / (0.5 * w)) ** 2 < 1, 0.6, 0.0)
    copies = resampled_copies(film, (64, 64), ResampleConfig(copies=6, width=0.3), copy_generator(0, 0))
    widths = []
    for c in copies:
        rows = (c[0] > -1).any(dim=1)
        assert bool(rows[0]) and bool(rows[-1])
        widths.append(int((c[0] > -1).any(dim=0).sum()))
    assert max(widths) > 34 > 30 > min(widths)  # the film's breast is 32 columns wide here


@pytest.mark.parametrize("bad", [dict(copies=-1), dict(displacement=0.5), dict(width=0.6), dict(grid=(1, 4))])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        ResampleConfig(**bad)


def test_the_loader_appends_copies_after_the_films(tiny_dataset_factory):
    big = tiny_dataset_factory(n=6, size=(64, 40))
    cfg = ResampleConfig(copies=2)
    plain = load_training_data(str(big), (32, 20), ("density",), show_progress=False)
    data = load_training_data(str(big), (32, 20), ("density",), show_progress=False, resample=cfg, seed=0)
    n = len(plain)
    assert len(data) == 3 * n and data.films.shape[0] == n and torch.equal(data.films, plain.images)
    assert torch.equal(data.labels["density"][n:], plain.labels["density"].repeat_interleave(2))
    assert data.info["resample"] == {"copies": 2 * n, "per_film": 2, "films_copied": n, "films_too_small": 0}
    small = load_training_data(str(big), (64, 40), (), show_progress=False, resample=cfg, seed=0)
    assert len(small) == n and small.info["resample"]["films_too_small"] == n
    assert "none" in resample_line(small.info["resample"], (64, 40)) and "--size 128 80" in resample_line(
        small.info["resample"], (64, 40))  # the log says what to ingest at


def test_a_run_trains_on_the_copies_and_keeps_the_films_for_the_shape_gate(tiny_dataset, tmp_path, capsys):
    cfg = tiny_config(kimg=0.008, resample_copies=2)
    run = train(str(tiny_dataset), tmp_path / "runs", cfg)
    assert "resampled copies:" in capsys.readouterr().err
    ck = load_checkpoint(find_checkpoint(run, "latest"))
    assert ck["config"]["resample_copies"] == 2
    films = json.loads((run / "config.json").read_text())["run"]["dataset"]
    assert films["resample"]["copies"] == 2 * films["films"]
    reference = ShapeReference.from_dict(ck["shape_reference"])
    assert reference.profiles.shape[0] == films["films"]  # the films' outlines, not their copies'



def test_family_defaults_old_runs_and_the_cli(tiny_dataset, tmp_path, capsys):
    assert TrainConfig().resolved().resample_copies == 4
    old = tiny_config().to_dict()
    old.pop("resample_copies")
    assert TrainConfig.from_dict(old).resample_copies == 0  # runs from before the copies trained without them
    rc = main(["train", str(tiny_dataset), "--out", str(tmp_path / "runs"), "--resolution", "16", "16",
               "--resample-copies", "0", "--resample-width", "0.05", "--dry-run"])
    assert rc == 0
    cfg = json.loads(capsys.readouterr().out)["config"]
    assert cfg["resample_copies"] == 0 and cfg["resample_width"] == 0.05
    rc = main(["train", str(tiny_dataset), "--out", str(tmp_path / "runs"), "--resample-copies", "-2"])
    assert rc != 0 and "copies must be >= 0" in capsys.readouterr().err
