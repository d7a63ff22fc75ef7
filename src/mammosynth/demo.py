"""``mammosynth demo`` (``make demo``): the whole pipeline on a phantom repository.

Stages, each in its own folder of ``OUT`` and each reused when a rerun finds it finished:

1. ``phantom/``   a labelled phantom repository (:func:`mammosynth.phantom.make_phantom_dataset`);
2. ``prepared/``  re-prepared at the training resolution (``ingest --layout prepared``);
3. ``runs/``      the default model trained for ``minutes`` on the prepared ``train`` split;
4. ``synthetic/`` ``n`` labelled synthetic images (:func:`mammosynth.sampling.generate`);
5. ``sheets/``    contact sheets of real and synthetic images and a real-vs-synthetic grid
   per density class;
6. ``report/``    the evaluation report (:func:`mammosynth.report.evaluate`; off with ``evaluate=False``).

>>> from mammosynth.demo import run_demo                     # doctest: +SKIP
>>> result = run_demo("demo_out", minutes=5)                 # doctest: +SKIP
>>> print(result.summary())                                  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .data.prepared import DATASET_JSON, PreparedDataset

CLASS_AXIS = "density"  # the axis of the real-vs-synthetic grid
DONE, REUSED, RESUMED = "done", "reused", "resumed"  # what a stage did
#: Evaluation settings of the demo (time budget): one classifier seed, fewer bootstrap
#: resamples, at most 200 images per set (FRD radiomics dominate the cost).
DEMO_EVALUATE: dict[str, Any] = {"seeds": 1, "n_boot": 200, "max_images": 200}


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and budgets of the demo (``mammosynth demo`` reuses these defaults)."""

    minutes: float = 5.0  # training budget (wall clock)
    n: int = 200  # synthetic images
    phantom_n: int = 400  # phantom repository size
    phantom_size: tuple[int, int] = (256, 160)  # phantom images (H, W)
    train_size: tuple[int, int] = (128, 80)  # prepared/training resolution (H, W)
    kimg: float | None = None  # training length in thousands of images (overrides minutes when set)
    seed: int = 0
    batch: int = 16  # generation batch
    sheet_n: int = 24  # images per contact sheet
    grid_per_class: int = 4  # real and synthetic tiles per class in the comparison grid
    workers: int | None = None  # phantom/ingest worker processes (None: all cores)
    evaluate: bool = True  # run the evaluation report (stage 6)
    train_overrides: dict[str, Any] = field(default_factory=dict)  # extra TrainConfig fields (tests)
    model_overrides: dict[str, Any] = field(default_factory=dict)  # extra ModelConfig fields (tests)
    evaluate_overrides: dict[str, Any] = field(default_factory=dict)  # extra EvaluateConfig fields

    def __post_init__(self) -> None:
        for name in ("n", "phantom_n", "batch", "sheet_n", "grid_per_class"):
            if getattr(self, name) < 1:
                raise ValueError(f"demo {name} must be >= 1, got {getattr(self, name)}")
        if self.minutes <= 0 and self.kimg is None:
            raise ValueError(f"demo minutes must be > 0, got {self.minutes}")


@dataclass
class DemoResult:
    """Where the demo put everything, and what each stage did."""

    out: Path
    artefacts: dict[str, Path] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)  # stage -> "done in 12 s" / "reused" / ...
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"mammosynth demo finished in {self.seconds:.0f} s; everything is in {self.out}"]
        lines += [f"  {stage:<10} {what}" for stage, what in self.stages.items()]
        lines.append("artefacts:")
        lines += [f"  {name:<24} {path}" for name, path in self.artefacts.items()]
        return "\n".join(lines)


def _finished(path: Path, n: int | None = None, count_rejects: bool = False) -> bool:
    """True when ``path`` is a finished prepared dataset with at least ``n`` images
    (or images plus rejected inputs, with ``count_rejects``)."""
    if not (path / DATASET_JSON).is_file():
        return False
    try:
        info = json.loads((path / DATASET_JSON).read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    if info.get("complete") is False:
        return False
    total = (info.get("counts") or {}).get("images", {}).get("total", 0)
    if count_rejects:
        total += int(info.get("rejects") or 0)
    return n is None or total >= n


# -- stages (small on purpose: each wraps one public function) -------------------------------
def make_phantoms(out: Path, cfg: DemoConfig) -> tuple[Path, str]:
    """Stage 1: the phantom repository. Returns (path, reused)."""
    from .phantom import PhantomConfig, make_phantom_dataset

    if _finished(out, cfg.phantom_n):
        return out, REUSED
    pcfg = PhantomConfig(size=tuple(cfg.phantom_size), seed=cfg.seed)
    return Path(make_phantom_dataset(out, cfg.phantom_n, config=pcfg, workers=cfg.workers)), DONE


def prepare(phantoms: Path, out: Path, cfg: DemoConfig) -> tuple[Path, str]:
    """Stage 2: re-prepare the phantom set at the training resolution (chest wall left)."""
    from .data.ingest import IngestConfig, ingest
    from .data.preprocess import PreprocessConfig

    n = len(PreparedDataset(phantoms))
    if _finished(out, n, count_rejects=True):
        return out, REUSED
    config = IngestConfig(preprocess=PreprocessConfig(size=tuple(cfg.train_size)), workers=cfg.workers)
    ingest(phantoms, layout="prepared", out=out, config=config)
    return out, DONE


def find_run(runs: Path) -> Path | None:
    """The newest run in ``runs`` with a usable checkpoint, or None."""
    from .training.checkpoint import find_checkpoint

    if not runs.is_dir():
        return None
    for run in sorted((p for p in runs.iterdir() if p.is_dir()), reverse=True):
        try:
            find_checkpoint(run, which="latest")
        except (FileNotFoundError, ValueError):
            continue
        return run
    return None


def run_finished(run: Path) -> bool:
    """True when the run's last logged event is ``end`` (its budget was used up)."""
    stats = run / "stats.jsonl"
    if not stats.is_file():
        return False
    lines = [x for x in stats.read_text(encoding="utf-8").splitlines() if x.strip()]
    try:
        return bool(lines) and json.loads(lines[-1]).get("event") == "end"
    except json.JSONDecodeError:
        return False


def train_model(prepared: Path, runs: Path, cfg: DemoConfig, log: Callable[[str], None] = print) -> tuple[Path, str]:
    """Stage 3: train the default model (conditioned on density, finding and view) on the
    prepared train split; reuse a finished run, resume an interrupted one. Beside other busy
    work (``make test`` started next to ``make demo``) it trains with the threads the free
    cores allow, unless ``OMP_NUM_THREADS`` says how many (:func:`~mammosynth.utils.threads_beside_load`)."""
    import torch

    from .utils import busy_cores, threads_beside_load

    run = find_run(runs)
    if run is not None and run_finished(run):
        return run, REUSED
    threads = torch.get_num_threads()
    if "OMP_NUM_THREADS" not in os.environ:
        busy = busy_cores()
        fewer = threads_beside_load(threads, busy)
        if fewer < threads:
            log(f"[demo] train: other work keeps {busy:.1f} of {os.cpu_count()} CPU cores busy; training with "
                f"{fewer} torch thread(s) instead of {threads} (set OMP_NUM_THREADS to choose)")
            torch.set_num_threads(fewer)
    try:
        return _train_model(prepared, runs, cfg)
    finally:
        torch.set_num_threads(threads)


def _train_model(prepared: Path, runs: Path, cfg: DemoConfig) -> tuple[Path, str]:
    from .models import ModelConfig
    from .training import TrainConfig, train
    from .training.checkpoint import find_checkpoint, load_checkpoint

    model = ModelConfig.for_family("fastgan", resolution=tuple(cfg.train_size), condition=("density", "finding", "view"),
                                   **cfg.model_overrides)
    minutes = None if cfg.kimg is not None else cfg.minutes
    run = find_run(runs)
    if run is not None and run_finished(run):
        return run, REUSED
    if run is not None:
        elapsed = float(load_checkpoint(find_checkpoint(run, "latest")).get("elapsed_s") or 0.0)
        if minutes is not None:
            minutes = max(minutes - elapsed / 60.0, 0.1)
    tcfg = TrainConfig(model=model, minutes=minutes, kimg=cfg.kimg, seed=cfg.seed, name="demo", **cfg.train_overrides)
    if run is not None:
        train(f"{prepared}:train", runs, tcfg, resume=run)
        return run, RESUMED
    return Path(train(f"{prepared}:train", runs, tcfg)), DONE


def make_synthetic(run: Path, out: Path, cfg: DemoConfig) -> tuple[Path, str]:
    """Stage 4: generate ``n`` labelled images (generate resumes an interrupted set)."""
    from .sampling import GenerateConfig, generate

    if _finished(out, cfg.n):
        return out, REUSED
    return generate(run, cfg.n, out, GenerateConfig(seed=cfg.seed, batch=cfg.batch)), DONE


def make_sheets(prepared: Path, synthetic: Path, out: Path, cfg: DemoConfig) -> tuple[dict[str, Path], str]:
    """Stage 5: contact sheets and the real-vs-synthetic grid (always redrawn: seconds)."""
    from .data.contact_sheet import contact_sheet

    out.mkdir(parents=True, exist_ok=True)
    return {
        "real contact sheet": contact_sheet(prepared, out / "real.png", n=cfg.sheet_n, tile_height=128),
        "synthetic contact sheet": contact_sheet(synthetic, out / "synthetic.png", n=cfg.sheet_n, tile_height=128),
        "real vs synthetic grid": compare_grid(prepared, synthetic, out / "real_vs_synthetic.png",
                                               per_class=cfg.grid_per_class),
    }, DONE


def compare_grid(real: Path, synthetic: Path, out_png: Path, axis: str = CLASS_AXIS, per_class: int = 4,
                 tile_height: int = 128) -> Path:
    """One row per class of ``axis``: ``per_class`` real images | ``per_class`` synthetic ones."""
    from PIL import Image, ImageDraw

    from .data.schema import CONDITION_AXES, condition_value

    sets = {"real": PreparedDataset(real), "synthetic": PreparedDataset(synthetic)}
    first = sets["real"][0]
    tile_w = max(8, round(tile_height * (first.width or 80) / (first.height or 128)))
    pad, label_w, head_h = 4, 28, 16
    classes = CONDITION_AXES[axis]
    width = label_w + 2 * per_class * (tile_w + pad) + 3 * pad
    sheet = Image.new("RGB", (width, head_h + len(classes) * (tile_height + pad) + pad), (30, 30, 30))
    draw = ImageDraw.Draw(sheet)
    for side, (name, ds) in enumerate(sets.items()):
        draw.text((label_w + side * (per_class * (tile_w + pad) + pad) + pad, 2), name, fill=(230, 230, 230))
    for row, cls in enumerate(classes):
        y = head_h + row * (tile_height + pad)
        draw.text((4, y + tile_height // 2 - 6), cls, fill=(230, 230, 230))
        for side, ds in enumerate(sets.values()):
            picks = [i for i, r in enumerate(ds) if condition_value(r, axis) == cls][:per_class]
            for k, i in enumerate(picks):
                img = ds.image(i)
                tile = Image.fromarray(((img.astype(np.uint32) + 128) // 257).astype(np.uint8))
                tile = tile.resize((tile_w, tile_height), Image.Resampling.BILINEAR)
                x = label_w + side * (per_class * (tile_w + pad) + pad) + pad + k * (tile_w + pad)
                sheet.paste(tile.convert("RGB"), (x, y))
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_png, format="PNG")
    return out_png


def make_report(prepared: Path, synthetic: Path, out: Path, cfg: DemoConfig) -> tuple[Path, str]:
    """Stage 6: the evaluation report (:func:`mammosynth.report.evaluate`)."""
    from .report import EvaluateConfig, evaluate

    if (out / "report.html").is_file() and (out / "metrics.json").is_file():
        return out / "report.html", REUSED
    evaluate(prepared, synthetic, out, config=EvaluateConfig(**{**DEMO_EVALUATE, **cfg.evaluate_overrides}))
    return out / "report.html", DONE


# -- the whole demo --------------------------------------------------------------------------
def run_demo(out: str | Path = "demo_out", config: DemoConfig = DemoConfig(), log: Callable[[str], None] = print,
             **overrides: Any) -> DemoResult:
    """Run (or finish) the demo in ``out``; ``overrides`` replace :class:`DemoConfig` fields
    (``run_demo("demo_out", minutes=1, n=50)``). Returns a :class:`DemoResult`."""
    cfg = dataclasses.replace(config, **overrides) if overrides else config
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out=out)
    t_all = time.perf_counter()

    def stage(name: str, what: str, fn: Callable[[], tuple[Any, str]]) -> Any:
        log(f"[demo] {name}: {what} ...")
        t = time.perf_counter()
        value, status = fn()
        note = "reused (already finished)" if status == REUSED else f"{status} in {time.perf_counter() - t:.0f} s"
        result.stages[name] = note
        log(f"[demo] {name}: {note}")
        return value

    h, w = cfg.phantom_size
    phantoms = stage("phantom", f"{cfg.phantom_n} phantom mammograms at {h}x{w}",
                     lambda: make_phantoms(out / "phantom", cfg))
    result.artefacts["phantom repository"] = phantoms
    h, w = cfg.train_size
    prepared = stage("prepare", f"prepare at {h}x{w}", lambda: prepare(phantoms, out / "prepared", cfg))
    result.artefacts["prepared dataset"] = prepared
    budget = f"{cfg.kimg} kimg" if cfg.kimg is not None else f"{cfg.minutes:g} minutes"
    run = stage("train", f"train the default model for {budget}", lambda: train_model(prepared, out / "runs", cfg, log))
    result.artefacts["training run"] = run
    grids = sorted((run / "samples").glob("grid-*.png"))
    if grids:
        result.artefacts["training sample grid"] = grids[-1]
    synthetic = stage("generate", f"{cfg.n} labelled synthetic images",
                      lambda: make_synthetic(run, out / "synthetic", cfg))
    result.artefacts["synthetic dataset"] = synthetic
    if (synthetic / "provenance.json").is_file():
        result.artefacts["signed provenance"] = synthetic / "provenance.json"
    sheets = stage("sheets", "contact sheets", lambda: make_sheets(prepared, synthetic, out / "sheets", cfg))
    result.artefacts.update(sheets)
    if cfg.evaluate:
        report = stage("evaluate", "evaluation report", lambda: make_report(prepared, synthetic, out / "report", cfg))
        result.artefacts["evaluation report"] = report
    result.seconds = time.perf_counter() - t_all
    log(result.summary())
    return result
