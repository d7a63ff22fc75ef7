"""The diffusion family: a tiny UNet (32x20) trains, resumes bit-identically, samples with
guidance, saves and loads in diffusers' layout, and generates sets from the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mammosynth.cli import main
from mammosynth.models.diffusion import DiffusionConfig, class_index, null_class
from mammosynth.sampling import DiffusionPipeline, GanPipeline, load_pipeline
from mammosynth.training import TrainConfig, plan, preset_config, train
from mammosynth.training.checkpoint import find_checkpoint, load_checkpoint
from mammosynth.training.loop import cpu_has_bf16_units

pytest.importorskip("diffusers")


def tiny_diffusion(kimg=0.016, condition=("density", "view"), **kw) -> TrainConfig:
    model = DiffusionConfig(resolution=(32, 20), condition=condition, channels=(8, 16, 16), norm_groups=4,
                            **kw.pop("model", {}))
    return TrainConfig(model=model, minutes=None, kimg=kimg, batch=4, quality_n=4, grid_cols=2, **kw)


@pytest.fixture(scope="module")
def data(module_tiny_dataset):
    return module_tiny_dataset


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    # through the cpu preset, as the CLI builds it: the tiny widths given win over it
    tiny = tiny_diffusion().to_dict()
    cfg = preset_config("cpu", model=tiny.pop("model"), **{k: v for k, v in tiny.items() if k != "preset"})
    assert cfg.model == tiny_diffusion().model and cfg.preset == "cpu"
    return train(str(data), tmp_path_factory.mktemp("runs"), cfg)


@pytest.fixture(autouse=True)
def _keys_in_tmp(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MAMMOSYNTH_HOME", str(tmp_path_factory.getbasetemp() / "mammosynth-home"))


def test_run_layout_and_checkpoint(run):
    assert run.name == "00000-diffusion-32x20-density+view"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["family"] == "diffusion" and cfg["lr"] == 2e-4 and cfg["label_dropout"] == 0.1
    assert cfg["lr_g"] is None  # GAN settings do not act on a diffusion run
    assert cfg["preset"] == "cpu"
    stats = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["event"] == "end" and stats[-1]["step"] == 4
    assert list((run / "samples").glob("grid-*.png")) and (run / "tb").is_dir()
    ck = load_checkpoint(find_checkpoint(run, "latest"))
    assert {"unet", "unet_ema", "opt", "rng", "step"} <= set(ck) and "G" not in ck and ck["config"]["preset"] == "cpu"
    assert ck["label_axes"] == {"density": ["A", "B", "C", "D"], "view": ["CC", "MLO"]}
    # the EMA moved away from the initial weights and from the trained ones
    assert any(not torch.equal(ck["unet"][k], ck["unet_ema"][k]) for k in ck["unet"])


def test_resume_is_bit_identical(data, tmp_path):
    straight = train(str(data), tmp_path / "a", tiny_diffusion(kimg=0.024))
    train(str(data), tmp_path / "b", tiny_diffusion(kimg=0.012))
    resumed = train(str(data), tmp_path / "b", tiny_diffusion(kimg=0.024), resume="latest")
    a = load_checkpoint(find_checkpoint(straight, "latest"))
    b = load_checkpoint(find_checkpoint(resumed, "latest"))
    assert a["step"] == b["step"] == 6
    for net in ("unet", "unet_ema"):
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), f"{net}.{k}"
    for k, v in a["opt"]["state"].items():
        assert torch.equal(v["exp_avg_sq"], b["opt"]["state"][k]["exp_avg_sq"])


def test_accumulation_gives_the_same_step_in_micro_batches(data, tmp_path):
    # full precision: the accumulation's arithmetic, not bf16 rounding (auto's choice on AMX CPUs)
    one = load_checkpoint(find_checkpoint(train(str(data), tmp_path / "a", tiny_diffusion(kimg=0.004, amp="off")),
                                          "latest"))
    two = load_checkpoint(find_checkpoint(
        train(str(data), tmp_path / "b", tiny_diffusion(kimg=0.004, accumulate=2, amp="off")), "latest"))
    for k, v in one["unet"].items():
        torch.testing.assert_close(v, two["unet"][k], rtol=1e-4, atol=1e-5)
    assert one["step"] == two["step"] == 1


def test_sampling_is_per_index_and_guidance_changes_it(run):
    pipe = load_pipeline(run, checkpoint="latest", steps=3)
    assert isinstance(pipe, DiffusionPipeline) and pipe.resolution == (32, 20)
    out = pipe(n=4, seed=1, batch_size=4, workers=1, remove_background=False, density="D", view="CC")
    assert out.images.shape == (4, 32, 20) and out.images.dtype == np.uint16
    assert out.images.std() > 0 and not np.array_equal(out.images[0], out.images[1])
    # image 2 alone (batch of 1) is image 2 of the batch, up to float rounding
    one = pipe(n=1, seed=1, start=2, batch_size=1, workers=1, remove_background=False, density="D", view="CC")
    assert np.abs(one.images[0].astype(int) - out.images[2].astype(int)).max() <= 64
    again = pipe(n=4, seed=1, batch_size=4, workers=1, remove_background=False, density="D", view="CC")
    assert np.array_equal(out.images, again.images)
    pipe.guidance = 4.0
    guided = pipe(n=4, seed=1, batch_size=4, workers=1, remove_background=False, density="D", view="CC")
    assert np.abs(guided.images.astype(int) - out.images.astype(int)).max() > 100
    pipe.guidance, pipe.sampler = 1.5, "ddim"
    ddim = pipe(n=4, seed=1, batch_size=4, workers=1, remove_background=False, density="D", view="CC")
    assert not np.array_equal(ddim.images, out.images)


def test_save_pretrained_round_trip_in_diffusers_layout(run, tmp_path):
    from diffusers import UNet2DModel

    pipe = load_pipeline(run, checkpoint="latest", steps=2, sampler="ddim", guidance=2.0)
    saved = pipe.save_pretrained(tmp_path / "p")
    index = json.loads((saved / "model_index.json").read_text())
    assert index["unet"] == ["diffusers", "UNet2DModel"] and index["scheduler"] == ["diffusers", "DDIMScheduler"]
    assert (saved / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert (saved / "scheduler" / "scheduler_config.json").is_file()
    assert UNet2DModel.from_pretrained(str(saved), subfolder="unet").config.num_class_embeds == 15
    back = load_pipeline(saved)
    assert isinstance(back, DiffusionPipeline) and back.sampling_settings() == pipe.sampling_settings()
    assert back.checkpoint_sha256 == pipe.checkpoint_sha256 and back.label_freq == pipe.label_freq
    a = pipe(n=2, seed=0, workers=1, remove_background=False)
    b = back(n=2, seed=0, workers=1, remove_background=False)
    assert np.array_equal(a.images, b.images) and a.labels == b.labels
    with pytest.raises(ValueError, match="diffusion run"):
        GanPipeline.from_pretrained(run, checkpoint="latest")


def test_generate_cli_writes_and_resumes_a_diffusion_set(run, tmp_path, capsys):
    out = tmp_path / "syn"
    args = ["generate", str(run), "--n", "3", "--out", str(out), "--checkpoint", "latest", "--steps", "2",
            "--mix", "density=A:0.5,D:0.5", "--batch", "2"]
    assert main(args) == 0
    info = json.loads((out / "dataset.json").read_text())
    assert info["complete"] is True and info["settings"]["sampling"] == {"sampler": "dpm++", "steps": 2,
                                                                         "guidance": 1.5}
    rec = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    assert rec["generation"]["steps"] == 2 and rec["synthetic"] is True
    assert main(args) == 0  # a finished set: nothing to do
    capsys.readouterr()
    assert main(args[:-6] + ["--steps", "3", "--batch", "2"]) != 0  # other sampling settings: refused
    assert "other settings" in capsys.readouterr().err


def test_train_cli_dry_run_plans_a_diffusion_run(data, tmp_path, capsys):
    assert main(["train", str(data), "--out", str(tmp_path), "--model", "diffusion", "--resolution", "32", "20",
                 "--channels", "8,16,16", "--prediction", "epsilon", "--condition", "finding", "--batch", "8",
                 "--accumulate", "2", "--dry-run"]) == 0
    out = capsys.readouterr()
    info = json.loads(out.out)
    assert info["config"]["model"]["prediction"] == "epsilon" and info["config"]["model"]["channels"] == [8, 16, 16]
    cost, mem = info["cost"], info["memory"]
    assert info["parameters"]["unet"] == cost["params"] > 0
    # backward ~ 2x forward; guided sampling (conditioned): two passes per step, 25 steps
    assert cost["train_gflop"] == pytest.approx(3 * cost["unet_gflop"], rel=0.05)
    assert cost["passes_per_step"] == 2 and cost["sample_step_gflop"] == pytest.approx(2 * cost["unet_gflop"])
    assert cost["steps"] == 25 and cost["sample_gflop"] == pytest.approx(25 * cost["sample_step_gflop"])
    n = cost["params"]
    assert mem["batch"] == 8 and mem["weights"] == 8 * n and mem["optimizer"] == 12 * n
    assert mem["amp"] is cpu_has_bf16_units()  # auto: bf16 only on a CPU with AMX-BF16 units
    assert mem["activations"] > 0 and "4 images" in mem["peak_phase"]  # one of 2 micro-batches
    for line in ("preset cpu: diffusion 32x20, UNet channels [8, 16, 16], 1 layer(s) per block",
                 "parameters: UNet ", "per sampler step (guided: 2 UNet passes)", "per generated image (25 steps)",
                 "training memory: ~"):
        assert line in out.err
    assert not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match="multiples of 4"):
        DiffusionConfig(resolution=(32, 18), channels=(8, 16, 16), norm_groups=4)


def test_epsilon_prediction_trains(data, tmp_path):
    run = train(str(data), tmp_path, tiny_diffusion(kimg=0.008, condition=(), model={"prediction": "epsilon"}))
    pipe = load_pipeline(run, steps=2)
    assert pipe.label_axes == {} and pipe(n=1, workers=1).images.shape == (1, 32, 20)


def test_class_index_unknown_and_dropped_labels_are_null():
    axes = DiffusionConfig(resolution=(32, 20), condition=("density", "view"), channels=(8,), norm_groups=4).label_axes
    labels = {"density": torch.tensor([0, 3, -1, 2]), "view": torch.tensor([1, -1, 0, 1])}
    idx = class_index(labels, axes)
    assert idx.tolist() == [0 + 1 * 5, 3 + 2 * 5, 4 + 0 * 5, 2 + 1 * 5]
    dropped = class_index(labels, axes, drop=torch.tensor([False, True, False, True]))
    null = null_class(axes, 1).item()
    assert null == 4 + 2 * 5 and dropped.tolist() == [5, null, 4, null]
    assert class_index({}, {}) is None


# -- presets and cost ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cpu", "gpu", "gpu-large"])
def test_each_preset_sizes_a_unet_that_builds(name):
    from mammosynth.models.diffusion import build_unet
    from mammosynth.training.presets import PRESETS

    p = PRESETS[name]
    cfg = preset_config(name, model={"family": "diffusion", "resolution": (256, 160), "condition": "density"},
                        kimg=1).resolved()
    assert cfg.preset == name and cfg.amp == "auto" and cfg.lr == 2e-4  # the recipe stays the family's
    if name != "cpu":
        assert cfg.model.channels == p.unet_channels and cfg.model.layers_per_block == p.unet_layers
        assert cfg.model.attention_levels == p.unet_attention and cfg.batch == p.unet_batch
    with torch.device("meta"):
        unet = build_unet(cfg.model)
    assert unet.config.block_out_channels == cfg.model.channels
    assert unet.config.layers_per_block == cfg.model.layers_per_block


def test_cpu_preset_is_the_diffusion_defaults_and_auto_picks_it_without_cuda(monkeypatch):
    from mammosynth.models.config import config_for_family

    by_preset = preset_config("cpu", model={"family": "diffusion"}, kimg=1).resolved()
    by_hand = TrainConfig(model=config_for_family("diffusion"), kimg=1).resolved()
    assert by_preset.to_dict() == {**by_hand.to_dict(), "preset": "cpu"}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert preset_config(model={"family": "diffusion"}, kimg=1).to_dict() == preset_config(
        "cpu", model={"family": "diffusion"}, kimg=1).to_dict()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    gpu = preset_config(model={"family": "diffusion"}, kimg=1)
    assert gpu.preset == "gpu" and gpu.model.channels == (64, 128, 256, 256)


def test_cli_flags_win_over_the_diffusion_preset(data, tmp_path, capsys):
    assert main(["train", str(data), "--out", str(tmp_path), "--model", "diffusion", "--resolution", "32", "20",
                 "--preset", "gpu", "--channels", "8,16,16", "--layers-per-block", "1", "--amp", "off",
                 "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)["config"]
    m = cfg["model"]
    assert m["channels"] == [8, 16, 16] and m["layers_per_block"] == 1 and m["attention_levels"] == 1
    assert cfg["batch"] == 16 and cfg["amp"] == "off" and cfg["preset"] == "gpu"


def test_diffusion_memory_estimate_scales_with_micro_batch_and_precision():
    from mammosynth.models.cost import diffusion_train_memory

    cfg = DiffusionConfig(resolution=(64, 40), condition=("density",), channels=(8, 16, 16), norm_groups=4)
    m8, m16, half = (diffusion_train_memory(cfg, 8), diffusion_train_memory(cfg, 16),
                     diffusion_train_memory(cfg, 16, amp=True))
    assert m8.weights == m16.weights and m8.optimizer == m16.optimizer
    assert m16.activations == pytest.approx(2 * m8.activations, rel=0.02)
    assert diffusion_train_memory(cfg, 16, accumulate=2).activations == m8.activations
    assert half.activations == pytest.approx(m16.activations / 2, rel=0.05)


def test_memory_estimate_counts_fused_attention_not_the_weights_matrix():
    """Attention at 32x20 tokens: the math fallback on the meta device would save the
    640 x 640 weights per head and image; fused kernels (CPU and CUDA) do not."""
    from mammosynth.models import cost

    cfg = DiffusionConfig(resolution=(64, 40), channels=(8, 16), norm_groups=4, attention_levels=1)
    fused = cost.diffusion_train_memory(cfg, 4).activations
    unet, args, kw = cost._meta_unet(cfg, 4)
    math = cost._saved_bytes(lambda: unet(*args, **kw), {p.untyped_storage()._cdata for p in unet.parameters()},
                             False)
    assert math - fused >= 4 * 640 * 640 * 4  # at least one image-batch of attention weights in fp32
