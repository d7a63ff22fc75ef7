"""The demo on a tiny configuration: every stage, rerun reuse, training resume, evaluation hook."""
from __future__ import annotations

import json
import shutil

import pytest

import mammosynth.demo as demo
from mammosynth.cli import main
from mammosynth.data.prepared import PreparedDataset

# tiny test images are below the watermark's minimum size; provenance says so once per image
pytestmark = pytest.mark.filterwarnings("ignore:images smaller than")

TINY = dict(phantom_n=16, phantom_size=(64, 40), train_size=(16, 16), kimg=0.032, n=8, sheet_n=4, grid_per_class=1,
            workers=1, evaluate=False, model_overrides=dict(z_dim=8, g_channels=4, d_channels=4, max_channels=16,
                                                            embed_dim=4),
            train_overrides=dict(batch=4, quality_n=4, device="cpu"))


@pytest.fixture(autouse=True)
def _keys_in_tmp(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MAMMOSYNTH_HOME", str(tmp_path_factory.getbasetemp() / "mammosynth-home"))


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    """One tiny demo run (a few seconds), shared; tests that change it work on a copy."""
    logs: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MAMMOSYNTH_HOME", str(tmp_path_factory.getbasetemp() / "mammosynth-home"))
        res = demo.run_demo(tmp_path_factory.mktemp("demo") / "d", log=logs.append, **TINY)
    return res, logs


def copy_demo(res, dest):
    shutil.copytree(res.out, dest)
    return dest


def test_tiny_demo_runs_every_stage_and_reuses_them(tiny_demo, tmp_path):
    res, logs = tiny_demo
    assert set(res.stages) == {"phantom", "prepare", "train", "generate", "sheets"}
    assert all(v.startswith("done") for v in res.stages.values()), res.stages
    for name, path in res.artefacts.items():
        assert path.exists(), (name, path)
    syn = PreparedDataset(res.artefacts["synthetic dataset"])
    assert syn.kind == "synthetic" and len(syn) == 8
    assert all(r.synthetic and r.height == 16 for r in syn)
    assert set(syn.info["settings"]["generator"]["label_axes"]) == {"density", "finding", "view"}
    assert len(PreparedDataset(res.artefacts["prepared dataset"])) == 16
    assert (res.artefacts["real vs synthetic grid"]).stat().st_size > 0
    assert "signed provenance" in res.artefacts
    assert str(res.artefacts["synthetic contact sheet"]) in logs[-1]  # the final summary lists the artefacts

    out = copy_demo(res, tmp_path / "d")
    again = demo.run_demo(out, log=logs.append, **TINY)
    assert {k: v for k, v in again.stages.items() if k != "sheets"} == {
        k: "reused (already finished)" for k in ("phantom", "prepare", "train", "generate")}
    assert len(list((out / "runs").iterdir())) == 1


def test_interrupted_training_is_resumed(tiny_demo, tmp_path):
    out = copy_demo(tiny_demo[0], tmp_path / "d")
    run = out / "runs" / tiny_demo[0].artefacts["training run"].name
    stats = run / "stats.jsonl"
    lines = stats.read_text().splitlines()
    assert json.loads(lines[-1])["event"] == "end"
    stats.write_text("\n".join(lines[:-1]) + "\n")  # as if the process had been killed
    assert not demo.run_finished(run)
    again = demo.run_demo(out, **TINY, log=lambda s: None)
    assert again.stages["train"].startswith("resumed")
    assert again.artefacts["training run"] == run and demo.run_finished(run)


def test_evaluation_stage_calls_report_evaluate_with_the_demo_settings(tiny_demo, tmp_path, monkeypatch):
    calls = []

    def fake_evaluate(real, synthetic, out, config):
        calls.append((real, synthetic, config))
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.html").write_text("<html></html>")
        (out / "metrics.json").write_text("{}")

    monkeypatch.setattr("mammosynth.report.evaluate", fake_evaluate)
    out = copy_demo(tiny_demo[0], tmp_path / "d")
    res = demo.run_demo(out, **{**TINY, "evaluate": True}, log=lambda s: None)
    assert res.artefacts["evaluation report"].is_file()
    (real, synthetic, config), = calls
    assert real == res.artefacts["prepared dataset"] and synthetic == res.artefacts["synthetic dataset"]
    assert (config.seeds, config.n_boot, config.max_images) == (1, 200, 200)
    res = demo.run_demo(out, **{**TINY, "evaluate": True}, log=lambda s: None)  # a rerun reuses the report
    assert res.stages["evaluate"].startswith(demo.REUSED) and len(calls) == 1


def test_cli_demo_passes_options(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(demo, "run_demo", lambda out, config: seen.update(out=out, config=config))
    assert main(["demo", "--out", str(tmp_path / "x"), "--minutes", "2", "--n", "50", "--no-evaluate"]) == 0
    assert seen["out"] == str(tmp_path / "x")
    assert (seen["config"].minutes, seen["config"].n, seen["config"].evaluate) == (2.0, 50, False)
    assert seen["config"].phantom_n == demo.DemoConfig().phantom_n


def test_bad_demo_config():
    with pytest.raises(ValueError, match="n must be >= 1"):
        demo.DemoConfig(n=0)


def test_threads_beside_load_leave_the_busy_cores_alone():
    from mammosynth.utils import busy_cores, threads_beside_load

    assert threads_beside_load(2, 0.2, cores=2) == 2
    assert threads_beside_load(2, 1.0, cores=2) == 1
    assert threads_beside_load(2, 1.9, cores=2) == 1  # never below one
    assert threads_beside_load(4, 1.0, cores=16) == 4
    assert threads_beside_load(3, None, cores=2) == 3  # unknown load: as asked
    busy = busy_cores(0.05)
    assert busy is None or 0.0 <= busy <= (__import__("os").cpu_count() or 1) + 1e-9
    assert busy_cores(0.0, stat_path="/nonexistent/stat") is None


def test_demo_trains_with_the_free_cores_beside_busy_work(tiny_demo, tmp_path, monkeypatch):
    import torch

    import mammosynth.training
    import mammosynth.utils

    res, _ = tiny_demo
    seen, logs = [], []

    def fake_train(prepared, runs, config, resume=None):
        seen.append(torch.get_num_threads())
        return runs / "00000-demo"

    monkeypatch.setattr(mammosynth.training, "train", fake_train)
    monkeypatch.setattr(mammosynth.utils, "busy_cores", lambda seconds=0.5: 1.2)
    monkeypatch.setattr(mammosynth.utils, "num_workers", lambda requested=None: 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cfg = demo.DemoConfig(**TINY)
        demo.train_model(res.artefacts["prepared dataset"], tmp_path / "runs", cfg, log=logs.append)
        assert seen == [1] and torch.get_num_threads() == 2  # restored after training
        assert "1.2 of" in logs[0] and "OMP_NUM_THREADS" in logs[0]
        monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's choice wins
        demo.train_model(res.artefacts["prepared dataset"], tmp_path / "runs2", cfg, log=logs.append)
        assert seen == [1, 2] and len(logs) == 1
    finally:
        torch.set_num_threads(threads)
