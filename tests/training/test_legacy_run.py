"""A run written before the multi-family trainer (tests/fixtures/legacy-fastgan, made by
tests/fixtures/make_legacy_gan.py at commit 7a215d8) still loads, generates the images it
generated then, and resumes. "The same images": no pixel more than one grey level of 65535
away, and fewer than 1 % of them moved at all (the upsample-conv kernels have since been summed
in another order, which can move a rounding)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from mammosynth.sampling import GanPipeline
from mammosynth.training import TrainConfig, train
from mammosynth.training.checkpoint import find_checkpoint, load_checkpoint

LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy-fastgan"


def _expected():
    meta = json.loads((LEGACY / "expected.json").read_text())
    return np.load(LEGACY / "expected.npz")["images"], meta


def test_legacy_run_generates_identical_images():
    images, meta = _expected()
    pipe = GanPipeline.from_pretrained(LEGACY, checkpoint="latest")
    out = pipe(n=meta["n"], seed=meta["seed"], batch_size=meta["batch_size"], workers=1, **meta["fixed"])
    assert out.labels == meta["labels"]
    diff = np.abs(out.images.astype(np.int64) - images.astype(np.int64))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_legacy_run_resumes(tiny_dataset, tmp_path):
    run = tmp_path / "runs" / "00000-legacy"
    shutil.copytree(LEGACY, run)
    config = TrainConfig(minutes=None, kimg=0.012)  # the run's own config is used, with this budget
    assert train(str(tiny_dataset), tmp_path / "runs", config, resume="latest") == run
    ck = load_checkpoint(find_checkpoint(run, "latest"))
    assert ck["step"] == 3 and ck["kimg"] == 0.012
