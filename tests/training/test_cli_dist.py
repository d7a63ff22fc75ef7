"""`mammosynth train` CLI: dry run, argument errors, and 2-process gloo runs under torchrun and
`accelerate launch`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mammosynth.cli import main


def test_dry_run_creates_nothing(tiny_dataset, tmp_path, capsys):
    before = sorted(p.name for p in tiny_dataset.rglob("*"))
    runs = tmp_path / "runs"
    rc = main(["train", f"{tiny_dataset}", "--out", str(runs), "--resolution", "32", "20",
               "--condition", "density,finding", "--dry-run"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run_dir"].endswith("00000-fastgan-32x20-density+finding")
    assert out["dataset"]["split"] == "train" and out["dataset"]["images"] > 0
    assert out["parameters"]["G"] > 0 and out["config"]["batch"] == 8
    assert not runs.exists()
    assert sorted(p.name for p in tiny_dataset.rglob("*")) == before


@pytest.mark.parametrize("argv,msg", [
    (["--resolution", "48", "30"], "power of two"),
    (["--resolution", "64", "36"], "multiple of height/8"),
    (["--condition", "density,birads"], "unknown condition axis 'birads'"),
    (["--resume", "latest"], "no run with a valid checkpoint"),
])
def test_bad_arguments(tiny_dataset, tmp_path, capsys, argv, msg):
    rc = main(["train", str(tiny_dataset), "--out", str(tmp_path / "runs"), "--dry-run", *argv])
    assert rc == 1
    assert msg in capsys.readouterr().err


def test_unknown_model_is_usage_error(tiny_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", str(tiny_dataset), "--out", str(tmp_path), "--model", "stylegan9"])
    assert exc.value.code == 2
    assert "invalid choice: 'stylegan9'" in capsys.readouterr().err


# Two launched processes each import torch and join a gloo group: 10–13 s on an idle host, but one run
# took over 120 s on a 2-core host whose cores were busy with other jobs.
LAUNCH_TIMEOUT_S = 600

LAUNCHERS = {
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
    # accelerate's multi-process launcher (torch elastic underneath); our code picks gloo on CPU
    "accelerate": [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"],
}


def launch_failure(proc: subprocess.CompletedProcess, runs: Path) -> str:
    """The assertion message for a failed launch: the stderr tail and the run's last
    stats.jsonl event, so that an abort at interpreter exit after a finished run ("end"
    logged; seen twice in CI, torchrun and accelerate) is told from a crash in training."""
    last = "no stats.jsonl"
    for f in sorted(runs.glob("*/stats.jsonl")):
        lines = f.read_text().splitlines()
        last = f"last stats event: {lines[-1] if lines else 'none'}"
    return f"rc {proc.returncode}; {last}\n{proc.stderr[-3000:]}"


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_processes_keep_replicas_identical(launcher, tiny_dataset, tmp_path):
    if launcher == "accelerate":
        pytest.importorskip("accelerate")
    runs = tmp_path / "runs"
    env = {**os.environ, "MAMMOSYNTH_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    cmd = LAUNCHERS[launcher] + ["-m", "mammosynth", "train", str(tiny_dataset), "--out", str(runs), "--resolution", "16", "16",
           "--kimg", "0.024", "--batch", "4", "--condition", "view", "--device", "cpu", "--name", "ddp"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)
    assert proc.returncode == 0, launch_failure(proc, runs)
    runs_made = list(runs.iterdir())
    assert [p.name for p in runs_made] == ["00000-ddp"]  # only rank 0 writes
    stats = [json.loads(x) for x in (runs_made[0] / "stats.jsonl").read_text().splitlines()]
    end = stats[-1]
    assert end["event"] == "end" and end["world"] == 2 and end["step"] == 6
    assert end["replicas_identical"] is True


def test_diffusion_under_torchrun_keeps_replicas_identical(tiny_dataset, tmp_path):
    """The diffusion family goes through the same distributed code: gradients averaged,
    replicas identical at the end."""
    pytest.importorskip("diffusers")
    runs = tmp_path / "runs"
    env = {**os.environ, "MAMMOSYNTH_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    cmd = LAUNCHERS["torchrun"] + ["-m", "mammosynth", "train", str(tiny_dataset), "--out", str(runs), "--model",
                                   "diffusion", "--channels", "8,16,16", "--resolution", "32", "20", "--kimg", "0.016",
                                   "--batch", "4", "--condition", "view", "--device", "cpu", "--name", "ddp"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)
    assert proc.returncode == 0, launch_failure(proc, runs)
    end = [json.loads(x) for x in (runs / "00000-ddp" / "stats.jsonl").read_text().splitlines()][-1]
    assert end["event"] == "end" and end["world"] == 2 and end["step"] == 4 and end["replicas_identical"] is True


def test_model_options_reach_the_model_config(tiny_dataset, tmp_path, capsys):
    assert main(["train", str(tiny_dataset), "--out", str(tmp_path), "--resolution", "16", "16", "--dry-run"]) == 0
    default = json.loads(capsys.readouterr().out)["config"]["model"]
    assert (default["upsample"], default["noise_blocks"], default["texture_channels"], default["output_grain"],
            default["strands"], default["recon_rows"]) == ("bilinear", 3, 16, True, 8, 32)
    assert main(["train", str(tiny_dataset), "--out", str(tmp_path), "--resolution", "16", "16",
                 "--upsample", "nearest", "--noise-blocks", "0", "--texture-channels", "8", "--output-grain", "off",
                 "--strands", "0", "--recon-rows", "64", "--dry-run"]) == 0
    model = json.loads(capsys.readouterr().out)["config"]["model"]
    assert (model["upsample"], model["noise_blocks"], model["texture_channels"], model["output_grain"],
            model["strands"], model["recon_rows"]) == ("nearest", 0, 8, False, 0, 64)


def test_amp_option_reaches_the_train_config(tiny_dataset, tmp_path, capsys):
    assert main(["train", str(tiny_dataset), "--out", str(tmp_path), "--resolution", "16", "16",
                 "--amp", "bf16", "--dry-run"]) == 0
    assert '"amp": "bf16"' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", str(tiny_dataset), "--out", str(tmp_path), "--amp", "fp8", "--dry-run"])


def test_width_options_reach_the_model_config(tiny_dataset, tmp_path, capsys):
    assert main(["train", str(tiny_dataset), "--out", str(tmp_path), "--resolution", "16", "16",
                 "--g-channels", "16", "--d-channels", "8", "--max-channels", "128", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"g_channels": 16' in out and '"d_channels": 8' in out and '"max_channels": 128' in out
    assert main(["train", str(tiny_dataset), "--out", str(tmp_path), "--g-channels", "0", "--dry-run"]) != 0
    assert "g_channels must be >= 1, got 0" in capsys.readouterr().err


def test_d_batch_option_reaches_the_train_config_and_its_cost(tiny_dataset, tmp_path, capsys):
    plans = {}
    for flag in ([], ["--d-batch", "split"], ["--model", "dcgan"]):
        assert main(["train", str(tiny_dataset), "--out", str(tmp_path), "--resolution", "16", "16", "--dry-run",
                     *flag]) == 0
        plans[" ".join(flag)] = json.loads(capsys.readouterr().out)
    assert plans[""]["config"]["d_batch"] == "mixed"
    assert plans["--d-batch split"]["config"]["d_batch"] == "split"
    assert plans["--model dcgan"]["config"]["d_batch"] == "split"
    # the G step's D pass carries the reals too when mixed
    assert plans[""]["cost"]["train_gflop"] > plans["--d-batch split"]["cost"]["train_gflop"]


def test_a_launched_run_leaves_with_its_output_flushed(tmp_path):
    """leave_without_finalization (a launched run's exit, skipping finalization) keeps the
    exit code and what was printed but not yet flushed, and runs no atexit handler."""
    code = ("import atexit, sys\n"
            "from mammosynth.cli.train import leave_without_finalization\n"
            f"atexit.register(lambda: open({str(tmp_path / 'atexit')!r}, 'w').close())\n"
            "print('runs/00000-x', end='')\n"
            "sys.stderr.write('note')\n"
            "leave_without_finalization(3)\n"
            "print('not reached')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "runs/00000-x", "note")
    assert not (tmp_path / "atexit").exists()
