"""Presets (cpu, gpu, gpu-large, auto), their record in runs, and --dry-run's cost lines."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from mammosynth.cli import main
from mammosynth.models import ModelConfig, build_discriminator, build_generator, count_parameters
from mammosynth.models.config import FAMILY_DEFAULTS
from mammosynth.models.cost import forward_gflop, model_cost, train_memory
from mammosynth.training import TRAIN_DEFAULTS, TrainConfig, train
from mammosynth.training.checkpoint import find_checkpoint, load_checkpoint
from mammosynth.training.presets import PRESETS, preset_config, resolve_preset

from test_train import tiny_config  # tests/training is on sys.path (pytest rootdir-less import)


def widths(cfg: TrainConfig) -> tuple[int, int, int]:
    return cfg.model.g_channels, cfg.model.d_channels, cfg.model.max_channels


def test_auto_is_gpu_with_cuda_else_cpu(monkeypatch):
    assert resolve_preset("auto").name == ("gpu" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_preset("auto").name == "cpu"
    assert resolve_preset("auto", "cuda").name == "gpu"  # asked for CUDA: planned for it
    assert preset_config(kimg=1).preset == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_preset("auto").name == "gpu"
    assert resolve_preset("auto", "cpu").name == "cpu"
    cfg = preset_config(kimg=1)
    assert cfg.preset == "gpu" and widths(cfg) == (32, 32, 256) and cfg.batch == 32


@pytest.mark.parametrize("family", ["fastgan", "dcgan"])
def test_cpu_preset_is_the_family_defaults(family):
    by_preset = preset_config("cpu", model={"family": family}, kimg=1).resolved()
    by_hand = TrainConfig(model=ModelConfig.for_family(family), kimg=1).resolved()
    assert by_preset.preset == "cpu"
    assert by_preset.to_dict() == {**by_hand.to_dict(), "preset": "cpu"}


def test_cpu_preset_follows_changed_defaults(monkeypatch):
    monkeypatch.setitem(FAMILY_DEFAULTS, "fastgan", {**FAMILY_DEFAULTS["fastgan"], "g_channels": 6, "max_channels": 96})
    monkeypatch.setitem(TRAIN_DEFAULTS, "fastgan", {**TRAIN_DEFAULTS["fastgan"], "batch": 12})
    cfg = preset_config("cpu", kimg=1).resolved()
    assert cfg.model.g_channels == 6 and cfg.model.max_channels == 96 and cfg.batch == 12


@pytest.mark.parametrize("name", ["gpu", "gpu-large"])
def test_gpu_presets_widen_fastgan(name):
    p = PRESETS[name]
    cfg = preset_config(name, model={"resolution": (512, 320)}, kimg=1).resolved()
    assert widths(cfg) == (p.g_channels, p.d_channels, p.max_channels) and cfg.batch == p.batch
    assert cfg.amp == p.amp == "auto" and cfg.preset == name
    assert cfg.model.g_channels > FAMILY_DEFAULTS["fastgan"]["g_channels"]
    assert cfg.lr_g == TRAIN_DEFAULTS["fastgan"]["lr_g"]  # the recipe is the family's


@pytest.mark.parametrize("name", ["cpu", "gpu", "gpu-large"])
def test_dcgan_keeps_its_recipe_under_every_preset(name):
    cfg = preset_config(name, model={"family": "dcgan", "resolution": (128, 128)}, kimg=1).resolved()
    d = FAMILY_DEFAULTS["dcgan"]
    assert widths(cfg) == (d["g_channels"], d["d_channels"], d["max_channels"])
    assert cfg.batch == TRAIN_DEFAULTS["dcgan"]["batch"] and cfg.preset == name


def test_explicit_values_win_over_the_preset():
    cfg = preset_config("gpu", model={"g_channels": 4, "max_channels": 128}, kimg=1, batch=6, amp="off")
    # g_channels 4 is also the cpu default: given explicitly, it still wins
    assert widths(cfg) == (4, PRESETS["gpu"].d_channels, 128) and cfg.batch == 6 and cfg.amp == "off"
    assert cfg.preset == "gpu"
    unset = preset_config("gpu", model={"g_channels": None}, kimg=1, batch=None, amp=None)
    assert unset.model.g_channels == 32 and unset.batch == 32 and unset.amp == "auto"


def test_cli_flags_win_over_the_preset(tiny_dataset, tmp_path, capsys):
    rc = main(["train", str(tiny_dataset), "--out", str(tmp_path / "runs"), "--resolution", "32", "20",
               "--preset", "gpu-large", "--d-channels", "8", "--batch", "6", "--amp", "bf16", "--dry-run"])
    assert rc == 0
    cfg = json.loads(capsys.readouterr().out)["config"]
    assert (cfg["model"]["g_channels"], cfg["model"]["d_channels"], cfg["model"]["max_channels"]) == (32, 8, 512)
    assert cfg["batch"] == 6 and cfg["amp"] == "bf16" and cfg["preset"] == "gpu-large"


def test_preset_recorded_in_config_json_and_checkpoints(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    tiny = tiny_config(kimg=0.004)
    cfg = preset_config("auto", model=tiny.model.to_dict(), minutes=None, kimg=0.004, batch=tiny.batch,
                        quality_n=tiny.quality_n, grid_cols=tiny.grid_cols)
    run = train(str(tiny_dataset), tmp_path / "runs", cfg)
    assert json.loads((run / "config.json").read_text())["preset"] == "cpu"
    assert load_checkpoint(find_checkpoint(run, "latest"))["config"]["preset"] == "cpu"


def test_configs_from_before_presets_load(tiny_dataset, tmp_path):
    old = tiny_config().to_dict()
    del old["preset"]
    cfg = TrainConfig.from_dict(old)
    assert cfg.preset is None and cfg == tiny_config()
    run = train(str(tiny_dataset), tmp_path / "runs", tiny_config(kimg=0.004))
    assert json.loads((run / "config.json").read_text())["preset"] is None  # built field by field


def test_unknown_preset_is_a_clear_error(tiny_dataset, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"unknown preset 'tpu'; expected one of auto, cpu, gpu, gpu-large"):
        preset_config("tpu", kimg=1)
    with pytest.raises(ValueError, match="preset must be one of"):
        TrainConfig(kimg=1, preset="auto")  # the record holds the resolved name
    with pytest.raises(SystemExit) as exc:
        main(["train", str(tiny_dataset), "--out", str(tmp_path), "--preset", "tpu", "--dry-run"])
    assert exc.value.code == 2 and "invalid choice: 'tpu'" in capsys.readouterr().err


def test_dry_run_prints_cost_and_memory_and_creates_nothing(tiny_dataset, tmp_path, capsys):
    before = sorted(p.name for p in tiny_dataset.rglob("*"))
    runs = tmp_path / "runs"
    rc = main(["train", str(tiny_dataset), "--out", str(runs), "--resolution", "64", "40", "--preset", "gpu",
               "--condition", "density", "--dry-run"])
    assert rc == 0
    captured = capsys.readouterr()
    info = json.loads(captured.out)
    assert info["preset"] == "gpu" and info["config"]["preset"] == "gpu"
    cost, mem = info["cost"], info["memory"]
    assert info["parameters"] == {"G": cost["g_params"], "D": cost["d_params"]}
    assert 0 < cost["g_gflop_inference"] < cost["train_gflop"]
    assert mem["batch"] == 32 and mem["total"] == mem["weights"] + mem["optimizer"] + mem["activations"]
    assert mem["activations"] > mem["weights"] > 0
    for line in ("preset gpu: fastgan 64x40, channels G 32 D 32 max 256, batch 32", "parameters: G ",
                 "GFLOP per image: ", "training memory: ~"):
        assert line in captured.err
    assert not runs.exists()
    assert sorted(p.name for p in tiny_dataset.rglob("*")) == before


def test_model_cost_counts_the_real_modules():
    cfg = ModelConfig.for_family("fastgan", resolution=(64, 40), condition=("density", "view"))
    c = model_cost(cfg)
    assert c.g_params == count_parameters(build_generator(cfg))
    assert c.d_params == count_parameters(build_discriminator(cfg))
    # one training image: one G forward (its graph serves both steps), D on a real and a
    # fake with backward, D in the G step, G's backward (none for the strand input's FFTs
    # of fixed noise)
    assert 0 < c.g_gflop_fft < c.g_gflop_train_graph
    g_backprop = c.g_gflop_train_graph - c.g_gflop_fft
    assert c.train_gflop == pytest.approx(g_backprop * 3 + c.g_gflop_fft + c.d_gflop * 9)
    assert model_cost(replace(cfg, strands=0)).g_gflop_fft == 0
    assert model_cost(cfg.to_dict()) == c
    # mixed D passes: the G step's D pass also carries the reals
    assert model_cost(cfg, "mixed").train_gflop == pytest.approx(c.train_gflop + c.d_gflop * 3)


def test_gflop_counts_ffts_and_so_the_strand_input():
    x = torch.randn(4, 1, 64, 32)
    # 4 real transforms of 2048 points (2.5 N log2 N each), then 4 complex ones (5 N log2 N)
    assert forward_gflop(lambda: torch.fft.rfft2(x)) == pytest.approx(4 * 2.5 * 2048 * 11 / 1e9)
    assert forward_gflop(lambda: torch.fft.fft2(x.to(torch.complex64))) == pytest.approx(4 * 5 * 2048 * 11 / 1e9)
    # the strand input's dashes are filtered by FFT: without the FFT formulas its cost was
    # only the gate and mix 1x1 convs
    plain = ModelConfig.for_family("fastgan", resolution=(64, 40), strands=0)
    dashes = model_cost(ModelConfig.for_family("fastgan", resolution=(64, 40), strands=8)).g_gflop_inference
    gate_mix = 2 * 2 * 8 * plain.g_channels * 64 * 40 / 1e9  # two 1x1 convs, C <-> 8
    assert dashes - model_cost(plain).g_gflop_inference > gate_mix * 1.5


def test_train_memory_scales_with_batch_precision_and_recipe():
    cfg = ModelConfig.for_family("fastgan", resolution=(128, 80), g_channels=16, d_channels=16, max_channels=128)
    m8, m16, half = train_memory(cfg, 8), train_memory(cfg, 16), train_memory(cfg, 16, amp=True)
    assert m8.weights == m16.weights and m8.optimizer == m16.optimizer
    n = count_parameters(build_generator(cfg)) + count_parameters(build_discriminator(cfg))
    assert m8.optimizer == 12 * n  # gradients + two Adam moments, fp32
    assert 1.6 < m16.activations / m8.activations < 2.1  # reconstruction stops growing at 8 images
    assert half.activations == pytest.approx(m16.activations / 2, rel=0.05)
    mixed = train_memory(cfg, 16, d_batch="mixed")
    assert mixed.activations > m16.activations  # one D pass of both batches also saves their concatenation
    lean = train_memory(cfg, 16, recon=False, r1=False)
    assert lean.activations <= m16.activations and lean.peak_phase in ("D step", "G step")
