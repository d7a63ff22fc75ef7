"""Training: one step per family, bit-identical resume, checkpoint validation, interrupts."""
from __future__ import annotations

import json
import signal
import os

import pytest
import torch

from mammosynth.models import ModelConfig
from mammosynth.training import TrainConfig, train
from mammosynth.training import loop as loop_mod
from mammosynth.training.loop import amp_setting
from mammosynth.training.checkpoint import find_checkpoint, list_checkpoints, load_checkpoint


def tiny_config(family="fastgan", kimg=0.016, condition=("density", "view"), **kw):
    model = ModelConfig.for_family(family, resolution=(16, 16), condition=condition, g_channels=4, d_channels=4,
                                   max_channels=16, z_dim=16)
    return TrainConfig(model=model, minutes=None, kimg=kimg, batch=4, quality_n=8, grid_cols=4, **kw)


@pytest.mark.parametrize("family", ["fastgan", "dcgan"])
def test_one_step_run_layout(tiny_dataset, tmp_path, family):
    run = train(str(tiny_dataset), tmp_path / "runs", tiny_config(family, kimg=0.004))
    assert run.parent == tmp_path / "runs" and run.name.startswith("00000-")
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["family"] == family and cfg["batch"] == 4 and cfg["loss"] in ("hinge", "bce")
    stats = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["event"] == "end" and stats[-1]["step"] == 1
    assert list((run / "samples").glob("grid-*.png")) and (run / "tb").is_dir()
    path = find_checkpoint(run, "best")
    # plain torch.load with weights_only works (no pickled classes)
    torch.load(path, weights_only=True)
    ck = load_checkpoint(path)
    assert ck["step"] == 1 and ck["kimg"] == pytest.approx(0.004)
    assert ck["config"]["model"]["condition"] == ["density", "view"]
    assert ck["label_axes"] == {"density": ["A", "B", "C", "D"], "view": ["CC", "MLO"]}
    assert set(ck["dataset"]) >= {"path", "content_hash", "manifest_sha256"}
    assert abs(sum(ck["label_freq"]["view"].values()) - 1) < 1e-9
    assert set(ck["label_freq"]) == {"density", "finding", "view"}  # all axes, conditioned or not
    assert {"G", "D", "G_ema", "opt_G", "opt_D", "rng", "ada_p"} <= set(ck)
    # the training films' outlines, at the model's resolution, for the shape gate at sampling
    assert ck["shape_reference"]["size"] == [16, 16] and 5 <= len(ck["shape_reference"]["loo"]) <= 12
    from mammosynth.sampling import load_pipeline

    assert load_pipeline(run).shape_reference.size == (16, 16)
    if family == "dcgan":  # the next run is numbered after it
        run2 = train(str(tiny_dataset), tmp_path / "runs", tiny_config(family, kimg=0.004, name="again"))
        assert run2.name == "00001-again"


def test_best_checkpoint_is_the_latest_unless_its_quality_score_collapsed(tiny_dataset, tmp_path, monkeypatch):
    from mammosynth.training.quality import BEST_SLACK, replaces_best

    scores = iter([1.0, 0.5, 1.2, 1.6])  # then 2.0: a snapshot after every step

    class FakeScore:
        def __init__(self, reals):
            pass

        def __call__(self, fakes):
            return next(scores, 2.0)

    monkeypatch.setattr(loop_mod, "QualityScore", FakeScore)
    run = train(str(tiny_dataset), tmp_path / "runs", tiny_config(kimg=0.024, snapshot_minutes=1e-9))
    best = load_checkpoint(find_checkpoint(run, "best"))
    # 1.2 is worse than 0.5 yet within 3x of it: the later snapshot wins; 1.6 and 2.0 are
    # not (a collapse), and the reference stays the lowest score, 0.5
    assert BEST_SLACK == 3.0 and best["quality"] == 1.2 and best["best_quality"] == 0.5
    assert replaces_best(0.3, float("inf")) and not replaces_best(None, 1.0) and not replaces_best(float("nan"), 1.0)


def _weights(ck):
    return {f"{m}.{k}": v for m in ("G", "D", "G_ema") for k, v in ck[m].items()}


def test_resume_is_bit_identical(tiny_dataset, tmp_path):
    straight = train(str(tiny_dataset), tmp_path / "a", tiny_config(kimg=0.024))  # 6 steps (R1 at step 0)
    half = train(str(tiny_dataset), tmp_path / "b", tiny_config(kimg=0.012))
    resumed = train(str(tiny_dataset), tmp_path / "b", tiny_config(kimg=0.024), resume="latest")
    assert resumed == half
    a = load_checkpoint(find_checkpoint(straight, "latest"))
    b = load_checkpoint(find_checkpoint(resumed, "latest"))
    assert a["step"] == b["step"] == 6 and a["ada_p"] == b["ada_p"]
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    for k, v in a["opt_G"]["state"].items():
        assert torch.equal(v["exp_avg"], b["opt_G"]["state"][k]["exp_avg"])


def test_corrupt_checkpoint_refused_and_previous_used(tiny_dataset, tmp_path, capsys):
    runs = tmp_path / "runs"
    run = train(str(tiny_dataset), runs, tiny_config(kimg=0.008))
    train(str(tiny_dataset), runs, tiny_config(kimg=0.016), resume=run)
    newest, previous = list_checkpoints(run)[:2]
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ValueError, match=newest.name):
        load_checkpoint(newest)
    assert find_checkpoint(run, "latest") == previous
    assert "skipping" in capsys.readouterr().err
    # a flipped byte inside the payload is caught by the SHA-256
    data = bytearray(previous.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the payload tensor
    previous.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=previous.name):
        load_checkpoint(previous)
    # every periodic checkpoint is corrupt: the valid best.pt is the fallback (warned)
    assert find_checkpoint(run, "latest") == run / "checkpoints" / "best.pt"
    assert "every periodic checkpoint" in capsys.readouterr().err


def test_sigterm_writes_checkpoint(tiny_dataset, tmp_path, monkeypatch):
    real = loop_mod.step_generator

    def gen(seed, step, rank, stream=0):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # handled: sets the stop flag
        return real(seed, step, rank, stream)

    monkeypatch.setattr(loop_mod, "step_generator", gen)
    grids = []
    monkeypatch.setattr(loop_mod, "save_grid", lambda path, *a, **k: grids.append(path.name))
    with pytest.raises(KeyboardInterrupt):
        train(str(tiny_dataset), tmp_path / "runs", tiny_config(kimg=1.0))
    run = next((tmp_path / "runs").iterdir())
    ck = load_checkpoint(find_checkpoint(run, "latest"))
    assert ck["step"] == 4  # the step in flight finished, then the checkpoint
    stats = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    assert [s["event"] for s in stats[-2:]] == ["checkpoint", "interrupted"]
    # nothing sampled after the stop request (no quality score, no grid): only the reals
    # sheet written at the start
    assert grids == ["reals.png"] and ck["quality"] is None


def test_resume_refuses_other_dataset(tiny_dataset_factory, tmp_path):
    a, b = tiny_dataset_factory(seed=1), tiny_dataset_factory(seed=2)
    train(str(a), tmp_path / "runs", tiny_config(kimg=0.004))
    with pytest.raises(ValueError, match="differs from the dataset"):
        train(str(b), tmp_path / "runs", tiny_config(kimg=0.008), resume="latest")


def test_unknown_labels_masked_and_sampled(tiny_dataset):
    from mammosynth.training.data import load_training_data

    data = load_training_data(str(tiny_dataset), (16, 16), ("density", "finding"), show_progress=False)
    assert data.images.shape[1:] == (1, 16, 16) and data.images.dtype == torch.float16
    assert float(data.images.min()) >= -1 and float(data.images.max()) <= 1
    data.labels["density"][:3] = -1  # unknown
    lab = data.sample_labels(64, torch.Generator().manual_seed(0))
    assert int(lab["density"].min()) >= 0 and int(lab["finding"].max()) < 5
    # the batch order is a function of (seed, step): same indices every time
    assert torch.equal(data.batch_indices(0, 5, 0, 1, 4), data.batch_indices(0, 5, 0, 1, 4))


def test_recalibrate_bn_fits_eval_mode_to_the_weights(tiny_dataset):
    """G_ema's BatchNorm running statistics are re-estimated from its own activations
    (eval output then matches the train-mode output in scale), deterministically, without
    touching the global RNG stream (bit-identical resume depends on it)."""
    from mammosynth.models import build_generator
    from mammosynth.training.data import load_training_data
    from mammosynth.training.loop import recalibrate_bn

    data = load_training_data(str(tiny_dataset), (16, 16), ("density", "view"), show_progress=False)
    cfg = tiny_config().model
    torch.manual_seed(0)
    G = build_generator(cfg)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for name, b in G.named_buffers():  # stale statistics that do not fit the weights
            if name.endswith("running_mean"):
                b.fill_(5.0)
            elif name.endswith("running_var"):
                b.fill_(100.0)
    z = torch.randn(64, cfg.z_dim)
    labels = data.sample_labels(64, torch.Generator().manual_seed(1))
    with torch.no_grad():
        G.train()
        momenta = [m.momentum for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for m in G.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 0.0
        train_std = float(G(z, labels).std())
        for m, mom in zip([m for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)], momenta):
            m.momentum = mom
        G.eval()
        stale_std = float(G(z, labels).std())
        rng = torch.get_rng_state()
        recalibrate_bn(G, data, torch.device("cpu"), seed=0)
        assert torch.equal(rng, torch.get_rng_state())
        assert not G.training
        fitted_std = float(G(z, labels).std())
        snapshot = {k: v.clone() for k, v in G.state_dict().items()}
        recalibrate_bn(G, data, torch.device("cpu"), seed=0)
        assert all(torch.equal(v, G.state_dict()[k]) for k, v in snapshot.items())
    assert abs(fitted_std - train_std) < 0.25 * train_std
    assert abs(stale_std - train_std) > abs(fitted_std - train_std)


def test_fp16_mixed_precision_on_cpu_resumes_losslessly(tiny_dataset, tmp_path):
    """The GPU's fp16 path (autocast + gradient scaler) run on CPU: the scaler's state is in
    the checkpoint and a resumed run equals a straight one."""
    straight = train(str(tiny_dataset), tmp_path / "a", tiny_config(kimg=0.024, amp="fp16"))
    train(str(tiny_dataset), tmp_path / "b", tiny_config(kimg=0.012, amp="fp16"))
    resumed = train(str(tiny_dataset), tmp_path / "b", tiny_config(kimg=0.024, amp="fp16"), resume="latest")
    a = load_checkpoint(find_checkpoint(straight, "latest"))
    b = load_checkpoint(find_checkpoint(resumed, "latest"))
    assert a["scaler"] and a["scaler"] == b["scaler"] and a["scaler"]["scale"] > 0
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert all(torch.isfinite(v).all() for v in wa.values() if v.is_floating_point())
    plain = load_checkpoint(find_checkpoint(train(str(tiny_dataset), tmp_path / "c", tiny_config(kimg=0.024)),
                                            "latest"))
    assert plain["scaler"] == {}  # auto on CPU: full precision, no scaler
    assert not all(torch.equal(wa[k], v) for k, v in _weights(plain).items())  # fp16 really ran


def test_amp_modes_and_runs_written_with_a_bool():
    assert tiny_config().amp == "auto"
    with pytest.raises(ValueError, match="amp must be one of"):
        tiny_config(amp="fp8")
    d = tiny_config().to_dict()
    assert TrainConfig.from_dict({**d, "amp": False}).amp == "off"
    assert TrainConfig.from_dict({**d, "amp": True}).amp == "auto"
    assert amp_setting("bf16", torch.device("cpu")) == (True, torch.bfloat16)
    assert amp_setting("off", torch.device("cuda")) == (False, torch.float32)


@pytest.mark.parametrize("units", [False, True])
def test_amp_auto_on_cpu_follows_its_bf16_units(tiny_dataset, tmp_path, monkeypatch, units):
    """auto: bf16 autocast on a CPU with bf16 matrix units (AMX), full precision on others;
    the run records what it used and a dry run plans memory for it."""
    monkeypatch.setattr(loop_mod, "cpu_has_bf16_units", lambda: units)
    expected = (True, torch.bfloat16) if units else (False, torch.float32)
    assert amp_setting("auto", torch.device("cpu")) == expected
    assert amp_setting("off", torch.device("cpu")) == (False, torch.float32)
    cfg = tiny_config(kimg=0.004, device="cpu")
    assert loop_mod.plan(str(tiny_dataset), tmp_path / "runs", cfg)["memory"]["amp"] is units
    run = train(str(tiny_dataset), tmp_path / "runs", cfg)
    assert json.loads((run / "config.json").read_text())["run"]["amp"] == ("torch.bfloat16" if units else None)


def test_cpu_bf16_units_probe_reads_the_cpu_flags():
    loop_mod.cpu_has_bf16_units.cache_clear()
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    assert loop_mod.cpu_has_bf16_units() == (" amx_bf16" in flags.replace("\t", " ").replace("\n", " "))


@pytest.mark.parametrize("clock", ["cpu", "wall"])
def test_minutes_budget_counts_the_chosen_clock(tiny_dataset, tmp_path, monkeypatch, clock):
    """A budget on the CPU clock ends when this process's CPU time (not the wall clock) has
    passed: a fake CPU clock racing ahead stops the run after a few steps; a wall budget
    ignores it."""
    ticks = iter(range(0, 10**9, 20))  # every reading 20 s later
    monkeypatch.setattr(loop_mod.time, "process_time", lambda: float(next(ticks)))
    import dataclasses

    cfg = dataclasses.replace(tiny_config(kimg=0.02), minutes=1.0, budget_clock=clock, snapshot_minutes=60)
    if clock == "cpu":
        cfg = dataclasses.replace(cfg, kimg=None)
    run = train(str(tiny_dataset), tmp_path / "runs", cfg)
    end = json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
    assert end["event"] == "end" and end["cpu_s"] > 0
    if clock == "wall":
        assert end["step"] == 5  # the kimg budget: the fake CPU clock does not stop it
    else:
        assert 1 <= end["step"] <= 2  # 60 s of the fake clock = three readings


def test_budget_clock_is_checked():
    with pytest.raises(ValueError, match="budget_clock"):
        TrainConfig(budget_clock="sundial")


@pytest.mark.parametrize("view", ["augmented", "exact"])
def test_texture_head_view(tiny_dataset, tmp_path, monkeypatch, view):
    """With texture_view="exact" the texture head judges the images before augmentation
    (ADA p pinned at 1, so every image is zoomed and shifted); "augmented" gives it the
    main path's input."""
    import dataclasses

    from mammosynth.models.fastgan import TextureHead
    from mammosynth.training.data import load_training_data

    seen = []
    orig = TextureHead.forward
    monkeypatch.setattr(TextureHead, "forward", lambda self, x: (seen.append(x.detach().clone()), orig(self, x))[1])
    cfg = dataclasses.replace(tiny_config(kimg=0.004, condition=()), ada_p0=1.0, ada_target=0.0, texture_view=view,
                              resample_copies=1)
    train(str(tiny_dataset), tmp_path / "runs", cfg)
    reals = load_training_data(str(tiny_dataset), (16, 16), (), show_progress=False, dtype=torch.float32,
                               resample=cfg.resample_config(), seed=cfg.seed).images  # films and their copies
    first = seen[0][:4]  # the reals of the D step's pass (reals first, then fakes when mixed)
    exact = all(any(torch.allclose(img, r, atol=1e-3) for r in reals) for img in first)
    assert exact == (view == "exact")


def test_g_step_reuses_the_d_steps_fakes(tiny_dataset, tmp_path, monkeypatch):
    """One G forward per step: the fakes D was trained on in the D step are the ones the G
    step backpropagates through (the texture head's exact view shows both passes)."""
    import dataclasses

    from mammosynth.models.fastgan import TextureHead

    seen = []
    orig = TextureHead.forward
    monkeypatch.setattr(TextureHead, "forward", lambda self, x: (seen.append(x.detach().clone()), orig(self, x))[1])
    cfg = dataclasses.replace(tiny_config(kimg=0.004, condition=()), texture_view="exact", d_batch="split")
    train(str(tiny_dataset), tmp_path / "runs", cfg)
    # one step: D on reals, D on fakes, R1 on reals (step 0), G step on fakes
    assert len(seen) == 4
    assert torch.equal(seen[1], seen[3]) and not torch.equal(seen[0], seen[1])


def test_mixed_d_batch_sends_reals_and_fakes_through_d_together(tiny_dataset, tmp_path, monkeypatch):
    """fastgan's default d_batch: one D pass of reals and fakes in the D step and again in
    the G step (the same fakes, reals first), so D's BatchNorm normalises both steps alike."""
    import dataclasses

    from mammosynth.models.fastgan import TextureHead

    assert tiny_config().resolved().d_batch == "mixed" and tiny_config("dcgan").resolved().d_batch == "split"
    seen = []
    orig = TextureHead.forward
    monkeypatch.setattr(TextureHead, "forward", lambda self, x: (seen.append(x.detach().clone()), orig(self, x))[1])
    cfg = dataclasses.replace(tiny_config(kimg=0.004, condition=()), texture_view="exact")
    train(str(tiny_dataset), tmp_path / "runs", cfg)
    # one step: D on reals + fakes, R1 on reals (step 0), G step on reals + the same fakes
    assert [x.shape[0] for x in seen] == [8, 4, 8]
    d_step, r1, g_step = seen
    assert torch.equal(d_step, g_step) and torch.equal(d_step[:4], r1)
    assert not torch.equal(d_step[:4], d_step[4:])


def test_d_batch_of_old_runs_and_bad_values():
    d = tiny_config().to_dict()
    d.pop("d_batch")
    assert TrainConfig.from_dict(d).d_batch == "split"  # runs written before d_batch trained split
    with pytest.raises(ValueError, match="d_batch"):
        tiny_config(d_batch="both")


def test_gans_train_channels_last_on_a_cpu_and_diffusion_does_not(tiny_dataset, tmp_path, monkeypatch):
    """The GAN step runs in channels-last on a CPU (its few-channel convolutions are faster in
    NHWC there): the batch and D's weights arrive in that layout. The diffusion UNet keeps
    the default layout on a CPU; on CUDA everything is channels-last."""
    from mammosynth.models.diffusion import DiffusionConfig
    from mammosynth.training.family import GanFamily

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for fam in ("fastgan", "dcgan"):
        assert loop_mod.training_memory_format(tiny_config(family=fam), cpu) == torch.channels_last
        assert loop_mod.training_memory_format(tiny_config(family=fam), cuda) == torch.channels_last
    diff = TrainConfig(model=DiffusionConfig(resolution=(32, 20), channels=(8,), norm_groups=4), kimg=0.01)
    assert loop_mod.training_memory_format(diff, cpu) == torch.contiguous_format
    assert loop_mod.training_memory_format(diff, cuda) == torch.channels_last
    seen, step = [], GanFamily.train_step

    def spy(self, state, gen, real, labels):
        conv = next(p for p in state.nets["D"].parameters() if p.dim() == 4 and p.shape[1] > 1)
        seen.append((real.is_contiguous(memory_format=torch.channels_last),
                     conv.is_contiguous(memory_format=torch.channels_last)))
        return step(self, state, gen, real, labels)

    monkeypatch.setattr(GanFamily, "train_step", spy)
    train(str(tiny_dataset), tmp_path / "runs", tiny_config(kimg=0.008, device="cpu"))
    assert seen and all(s == (True, True) for s in seen)
