"""Loading pipelines from training runs and checkpoints (mammosynth.training.checkpoint format)."""
from __future__ import annotations

import numpy as np
import pytest
from sampling_helpers import FREQ, tiny_generator, tiny_model_config

from mammosynth.cli import main
from mammosynth.data.prepared import PreparedDataset, sha256_file
from mammosynth.models import ModelConfig
from mammosynth.sampling import GanPipeline, GenerateConfig, generate
from mammosynth.training.checkpoint import checkpoint_name, save_checkpoint
from mammosynth.training.config import TrainConfig


# tiny test images are below the watermark's minimum size; provenance says so once per image
pytestmark = pytest.mark.filterwarnings("ignore:images smaller than")

def write_run(runs, name="00003-tiny", kimgs=(0.5, 1.0), best=0.5):
    """A run directory with periodic checkpoints and best.pt; each kimg has its own weights."""
    run = runs / name
    train_cfg = TrainConfig(model=ModelConfig.from_dict(tiny_model_config()), kimg=1.0).to_dict()
    paths = {}
    for k, kimg in enumerate(kimgs):
        state = {"config": train_cfg, "G": {}, "D": {}, "G_ema": tiny_generator(seed=k).state_dict(),
                 "step": 10 * (k + 1), "kimg": kimg, "nimg": int(kimg * 1000),
                 "label_axes": {a: list(c) for a, c in ModelConfig.from_dict(tiny_model_config()).label_axes.items()},
                 "label_freq": FREQ, "dataset": {"path": "prepared:train", "content_hash": "c" * 64,
                                                 "manifest_sha256": "m" * 64}}
        paths[kimg] = save_checkpoint(run / "checkpoints" / checkpoint_name(state["nimg"]), state)
        if kimg == best:
            paths["best"] = save_checkpoint(run / "checkpoints" / "best.pt", state)
    return run, paths


def test_from_run_dir_best_latest_and_path(tmp_path):
    run, paths = write_run(tmp_path / "runs")
    best = GanPipeline.from_pretrained(run)  # checkpoint="best"
    latest = GanPipeline.from_pretrained(run, checkpoint="latest")
    by_path = GanPipeline.from_pretrained(run, checkpoint=str(paths[1.0]))
    assert best.provenance["checkpoint_sha256"] == sha256_file(paths["best"])
    assert best.provenance["kimg"] == 0.5 and latest.provenance["kimg"] == 1.0
    assert best.provenance["run"] == "00003-tiny"
    assert best.provenance["dataset"]["content_hash"] == "c" * 64
    assert best.label_freq == FREQ and best.resolution == (16, 16)
    ref = GanPipeline(tiny_generator(seed=1), label_freq=FREQ)(n=3, seed=0, mix={"density": "A:1"})
    assert np.array_equal(latest(n=3, seed=0, density="A").images, ref.images)
    assert np.array_equal(by_path(n=3, seed=0, density="A").images, ref.images)
    assert not np.array_equal(best(n=3, seed=0, density="A").images, ref.images)


def test_round_trip_from_a_run(tmp_path):
    run, _ = write_run(tmp_path / "runs")
    pipe = GanPipeline.from_pretrained(run, checkpoint="latest")
    saved = GanPipeline.from_pretrained(pipe.save_pretrained(tmp_path / "pre"))
    assert saved.provenance["checkpoint_sha256"] == pipe.provenance["checkpoint_sha256"]
    assert saved.provenance["train_config"]["model"]["z_dim"] == 8
    assert np.array_equal(saved(n=4, seed=5).images, pipe(n=4, seed=5).images)


def test_generate_from_a_run_records_the_model(tmp_path):
    run, paths = write_run(tmp_path / "runs")
    out = generate(run, 4, tmp_path / "syn", GenerateConfig(checkpoint="latest"))
    ds = PreparedDataset(out)
    digest = sha256_file(paths[1.0])
    assert {r.generation["checkpoint_sha256"] for r in ds} == {digest}
    assert ds.info["settings"]["generator"]["checkpoint_sha256"] == digest
    src = ds.info["source"]["provenance"]
    assert src["dataset"]["content_hash"] == "c" * 64 and src["train_config"]["kimg"] == 1.0


def test_missing_and_corrupt_checkpoints_name_the_file(tmp_path, capsys):
    empty = tmp_path / "runs" / "00001-empty"
    (empty / "checkpoints").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="00001-empty"):
        GanPipeline.from_pretrained(empty)
    run, paths = write_run(tmp_path / "runs", kimgs=(1.0,), best=1.0)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        GanPipeline.from_pretrained(run, checkpoint=str(tmp_path / "nope.pt"))
    data = paths[1.0].read_bytes()
    paths[1.0].write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=paths[1.0].name):
        GanPipeline.from_pretrained(paths[1.0])
    rc = main(["generate", str(paths[1.0]), "--n", "1", "--out", str(tmp_path / "o")])
    assert rc == 1 and paths[1.0].name in capsys.readouterr().err
    # best.pt still loads; with every checkpoint corrupt the run has none
    assert GanPipeline.from_pretrained(run).provenance["kimg"] == 1.0
    paths["best"].write_bytes(b"garbage")
    with pytest.raises(FileNotFoundError, match="no valid checkpoint"):
        GanPipeline.from_pretrained(run)
