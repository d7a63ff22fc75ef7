"""The training loop: one function, :func:`train`, for every family, device and world size.

Per step the loop draws this rank's batch of reals and the step's random generator (both
pure functions of ``(seed, step, rank)``), lets the family step its networks
(:meth:`~mammosynth.training.family.Family.train_step`: the GAN's D step, R1 and G step, the
diffusion's noise-predict-loss), counts the images and moves the EMA copies. All state is
one :class:`~mammosynth.training.state.TrainerState`, which the checkpoint saves and the
resume restores.

Rank 0 writes stats.jsonl, TensorBoard, sample grids and checkpoints every
``snapshot_minutes`` and at the end. Ctrl-C / SIGTERM finish the step, write a
checkpoint at once (no samples: they can take minutes) and raise KeyboardInterrupt.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..models.cost import diffusion_cost, diffusion_train_memory, model_cost, train_memory
from ..utils import atomic_file
from . import distributed as D_
from .checkpoint import (checkpoint_name, find_checkpoint, list_checkpoints, load_checkpoint, prune_checkpoints,
                         remove_stale_temporaries, save_checkpoint)
from .config import TrainConfig
from .data import (TrainingData, content_width_for, load_training_data, open_training_set, shape_reference,
                   step_generator)
from .family import (StepContext, d_loss_fn, family_for, g_loss_fn, generate_batches,  # noqa: F401 (re-exported)
                     recalibrate_bn)
from .quality import QualityScore, replaces_best
from .resample import resample_line
from .state import TrainerState

RUN_RE = re.compile(r"^(\d{5})-(.+)$")


# -- run directories --------------------------------------------------------------------
def default_name(cfg: TrainConfig) -> str:
    h, w = cfg.model.resolution
    cond = "-" + "+".join(cfg.model.condition) if cfg.model.condition else ""
    return f"{cfg.model.family}-{h}x{w}{cond}"


def next_run_dir(runs_dir: str | os.PathLike, name: str) -> Path:
    """``RUNS/<n+1>-<name>`` where n is the highest existing run number (not created)."""
    if not re.fullmatch(r"[A-Za-z0-9._+=-]+", name):
        raise ValueError(f"run name {name!r}: use letters, digits and . _ + = - only")
    runs = Path(runs_dir)
    nums = [int(m.group(1)) for p in (runs.iterdir() if runs.is_dir() else []) if (m := RUN_RE.match(p.name))]
    return runs / f"{max(nums, default=-1) + 1:05d}-{name}"


def find_resume_checkpoint(runs_dir: str | os.PathLike, resume: str | os.PathLike, name: str | None = None) -> Path:
    """``latest``: the newest valid checkpoint of the highest-numbered run (named ``name``
    when given) under ``runs_dir``; otherwise a run directory or a checkpoint file."""
    if str(resume) != "latest":
        return find_checkpoint(resume, "latest")
    runs = Path(runs_dir)
    dirs = sorted((p for p in (runs.iterdir() if runs.is_dir() else []) if (m := RUN_RE.match(p.name))
                   and (name is None or m.group(2) == name) and list_checkpoints(p)), reverse=True)
    for d in dirs:
        try:
            return find_checkpoint(d, "latest")
        except FileNotFoundError:
            continue
    raise FileNotFoundError(f"{runs}: no run with a valid checkpoint to resume" + (f" (name {name!r})" if name else ""))


# -- helpers ----------------------------------------------------------------------------
class _StopRequest:
    """Turns the first Ctrl-C / SIGTERM into a flag checked between steps."""

    def __init__(self) -> None:
        self.requested = False
        self._prev: dict[int, Any] = {}

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._prev[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        for sig, prev in self._prev.items():
            signal.signal(sig, prev)


def _ema_update(ema: torch.nn.Module, net: torch.nn.Module, nimg: int, batch: int, ema_kimg: float) -> None:
    """``ema`` moves toward ``net`` with a half-life of ``ema_kimg`` thousand images
    (StyleGAN's 5 % ramp-up: early on, the half-life is 5 % of the images seen)."""
    with torch.no_grad():
        if ema_kimg > 0:
            ema_nimg = min(ema_kimg * 1000.0, max(nimg * 0.05, 1e-8))
            beta = 0.5 ** (batch / ema_nimg)
        else:
            beta = 0.0
        for pe, p in zip(ema.parameters(), net.parameters()):
            pe.copy_(p.detach().lerp(pe, beta))
        for be, b in zip(ema.buffers(), net.buffers()):
            be.copy_(b)


def grid_inputs(data: TrainingData, cols: int, seed: int) -> tuple[list[int], dict[str, torch.Tensor], list[str]]:
    """Per-image seeds and labels for the sample grid: one row per class of each conditioned
    axis (other axes fixed), the same ``cols`` seeds in every row; 4 rows if unconditioned."""
    g = torch.Generator().manual_seed(seed + 1_000_003)
    seeds = [seed * 1_000_003 + 17 + k for k in range(cols)]
    if not data.label_axes:
        return [seed * 1_000_003 + 17 + k for k in range(4 * cols)], {}, ["row"] * 4
    base = data.sample_labels(cols, g)
    all_seeds, labs, names = [], {a: [] for a in data.label_axes}, []
    for axis, classes in data.label_axes.items():
        for k, c in enumerate(classes):
            all_seeds += seeds
            for a in data.label_axes:
                labs[a].append(torch.full((cols,), k) if a == axis else base[a])
            names.append(f"{axis}={c}")
    return all_seeds, {a: torch.cat(v) for a, v in labs.items()}, names


def save_grid(path: Path, images: torch.Tensor, cols: int) -> None:
    """Tile [N, 1, H, W] images in [-1, 1] into an 8-bit PNG (2-px gray gutters)."""
    from PIL import Image

    n, _, h, w = images.shape
    rows = math.ceil(n / cols)
    canvas = torch.full((rows * (h + 2), cols * (w + 2)), 0.5)
    for i in range(n):
        r, c = divmod(i, cols)
        canvas[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = (images[i, 0] + 1) / 2
    arr = (canvas.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    with atomic_file(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def _tensorboard(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("note: tensorboard is not installed; TensorBoard logs skipped (pip install tensorboard)", file=sys.stderr)
        return None
    return SummaryWriter(str(run_dir / "tb"))


# -- planning (also used by --dry-run) --------------------------------------------------
def needs_content_width(config: TrainConfig) -> bool:
    """Whether training chooses the model's content width from the films (TrainConfig.content)."""
    return config.content == "auto" and config.model.family == "fastgan" and not config.model.content_width


def resolve_content_width(config: TrainConfig, data: TrainingData) -> TrainConfig:
    """``config`` resolved, its model built for the films' content width
    (:func:`~mammosynth.training.data.content_width_for`) when that is narrower than the frame;
    resolved after it, so that R1's default weight counts the pixels D sees."""
    width = content_width_for(data.films)
    if width:
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, content_width=width))
    return config.resolved()


def plan(prepared: str | os.PathLike, runs_dir: str | os.PathLike, config: TrainConfig,
         resume: str | os.PathLike | None = None) -> dict[str, Any]:
    """Resolve everything a run would use, creating nothing: config, run dir, dataset
    label counts, parameters, GFLOP per image and estimated training memory
    (:mod:`mammosynth.models.cost`)."""
    ckpt_path = None
    if resume is not None:
        ckpt_path = find_resume_checkpoint(runs_dir, resume, config.name)
        ck = load_checkpoint(ckpt_path)
        cfg = TrainConfig.from_dict(ck["config"]).with_budget(config.minutes, config.kimg)
        run_dir = ckpt_path.parent.parent
    else:
        cfg = config.resolved()
        run_dir = next_run_dir(runs_dir, cfg.name or default_name(cfg))
        if needs_content_width(config):  # the films themselves say how wide
            cfg = resolve_content_width(config, load_training_data(str(prepared), cfg.model.resolution, ()))
    ds = open_training_set(str(prepared))
    from ..data.schema import condition_value

    counts = {a: {} for a in cfg.model.condition}
    for r in ds.records:
        for a in cfg.model.condition:
            v = condition_value(r, a) or "unknown"
            counts[a][v] = counts[a].get(v, 0) + 1
    for a in cfg.model.condition:
        if set(counts[a]) == {"unknown"}:
            raise ValueError(f"{ds.root}: cannot condition on {a!r}: no training image has a known {a} label")
    info: dict[str, Any] = {
        "config": cfg.to_dict(), "run_dir": str(run_dir), "resume_from": str(ckpt_path) if ckpt_path else None,
        "dataset": {"path": str(ds.root), "split": ds.split, "images": len(ds), "labels": counts},
        "preset": cfg.preset,
    }
    # amp_setting's "on", without asking a GPU about bf16 (a dry run may plan for one it lacks)
    amp_on = amp_enabled(cfg.amp, "cuda" if D_.uses_cuda(cfg.device) else "cpu")
    if cfg.model.family == "diffusion":
        dcost = diffusion_cost(cfg.model)
        memory = diffusion_train_memory(cfg.model, cfg.batch, amp=amp_on, accumulate=cfg.accumulate)
        return {**info, "parameters": {"unet": dcost.params}, "cost": dcost.to_dict(), "memory": memory.to_dict()}
    cost = model_cost(cfg.model, cfg.d_batch)
    memory = train_memory(cfg.model, cfg.batch, amp=amp_on, recon=cfg.recon_weight > 0, r1=cfg.r1_gamma > 0,
                          d_batch=cfg.d_batch)
    return {**info, "parameters": {"G": cost.g_params, "D": cost.d_params}, "cost": cost.to_dict(),
            "memory": memory.to_dict()}


# -- training ---------------------------------------------------------------------------
def training_memory_format(cfg: TrainConfig, device: torch.device) -> torch.memory_format:
    """Channels-last on CUDA, and for the GANs on a CPU too, where oneDNN's NHWC kernels
    run their few-channel convolutions faster (benchmarks/train_layout.py). The diffusion
    UNet keeps the default layout on a CPU, where it has not been measured."""
    if device.type == "cuda" or cfg.model.family != "diffusion":
        return torch.channels_last
    return torch.contiguous_format


@functools.lru_cache(maxsize=None)
def cpu_has_bf16_units() -> bool:
    """Whether this CPU has bf16 matrix units (Intel AMX-BF16: ``amx_bf16`` among the
    kernel's CPU flags; elsewhere torch's own probe, when it has one)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        pass
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe is not None and probe())


def amp_enabled(mode: str, device_type: str) -> bool:
    """Whether a :attr:`TrainConfig.amp` mode autocasts on a ``device_type`` ("cuda" or
    "cpu"). ``auto``: always on CUDA; on a CPU only with bf16 matrix units
    (:func:`cpu_has_bf16_units`: there autocast trained ~1.5x the images per CPU-minute at
    equal realism, README "Realism")."""
    if mode == "auto":
        return device_type == "cuda" or (device_type == "cpu" and cpu_has_bf16_units())
    return mode in ("bf16", "fp16")


def amp_setting(mode: str, device: torch.device) -> tuple[bool, torch.dtype]:
    """``(autocast on, its dtype)`` for a :attr:`TrainConfig.amp` mode on ``device``:
    ``auto`` is bf16 (fp16 with a gradient scaler on GPUs without bf16) where
    :func:`amp_enabled`, else full precision."""
    if not amp_enabled(mode, device.type):
        return False, torch.float32
    if mode == "auto" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return True, torch.float16
    return True, torch.float16 if mode == "fp16" else torch.bfloat16


def train(prepared: str | os.PathLike, runs_dir: str | os.PathLike, config: TrainConfig,
          resume: str | os.PathLike | None = None) -> Path:
    """Train a generator (GAN or diffusion) on ``prepared`` (``PATH[:split]``) and return
    the run directory.

    ``resume``: ``"latest"`` (newest run under ``runs_dir``), a run directory or a
    checkpoint file; the run's own config is used, with this call's ``minutes``/``kimg``
    budget (``kimg`` is the total, ``minutes`` counts this session only).
    """
    info = D_.init(config.device)
    try:
        return _train(info, prepared, runs_dir, config, resume)
    finally:
        D_.shutdown(info)


def _train(info: D_.DistInfo, prepared: str | os.PathLike, runs_dir: str | os.PathLike, config: TrainConfig,
           resume: str | os.PathLike | None) -> Path:
    ckpt: dict[str, Any] | None = None
    if resume is not None:
        path = find_resume_checkpoint(runs_dir, resume, config.name)
        ckpt = load_checkpoint(path)
        cfg = TrainConfig.from_dict(ckpt["config"]).with_budget(config.minutes, config.kimg)
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "device": config.device, "amp": config.amp})
        run_dir = path.parent.parent
        if info.is_main:
            remove_stale_temporaries(run_dir)  # what a kill -9 during a checkpoint write left
    else:
        cfg = config.resolved()
        run_dir = D_.broadcast_object(next_run_dir(runs_dir, cfg.name or default_name(cfg)) if info.is_main else None, info)
    if cfg.batch % info.world:
        raise ValueError(f"batch {cfg.batch} is not divisible by the {info.world} processes")
    per_rank = cfg.batch // info.world
    # diffusion learns the images' values themselves: keep the 16-bit data's precision
    # (float16 holds 11 bits); the GANs keep float16 (their runs resume bit-identically)
    dtype = torch.float32 if cfg.model.family == "diffusion" else torch.float16
    data = load_training_data(str(prepared), cfg.model.resolution, cfg.model.condition, show_progress=info.is_main,
                              dtype=dtype, resample=cfg.resample_config(), seed=cfg.seed)
    if info.is_main and "resample" in data.info:
        print(resample_line(data.info["resample"], cfg.model.resolution), file=sys.stderr)
    # the training films' outlines for the shape gate, from the full frame the pipeline draws
    shapes = shape_reference(data.films) if info.is_main else None
    if ckpt is None and needs_content_width(config):
        cfg = resolve_content_width(config, data)  # the same on every rank: a function of the data
    data = data.with_content_width(getattr(cfg.model, "content_width", 0))
    if ckpt is not None and ckpt["dataset"].get("content_hash") != data.info["content_hash"]:
        raise ValueError(f"{prepared}: differs from the dataset run {run_dir} was trained on "
                         f"({ckpt['dataset'].get('path')}); resume needs the same data")
    dev = info.device
    if dev.type == "cuda":
        # fixed shapes every step: let cuDNN time its convolution algorithms once and keep
        # the fastest (GPU runs are not bit-reproducible anyway: atomics in the backward)
        torch.backends.cudnn.benchmark = True
    use_amp, amp_dtype = amp_setting(cfg.amp, dev)
    mem = training_memory_format(cfg, dev)
    ctx = StepContext(info=info, device=dev, memory_format=mem,
                      autocast=(lambda: torch.autocast(dev.type, dtype=amp_dtype)) if use_amp else contextlib.nullcontext,
                      scaler=torch.amp.GradScaler(dev.type, enabled=use_amp and amp_dtype == torch.float16))
    family = family_for(cfg)(cfg, data, ctx)
    torch.manual_seed(cfg.seed)
    state: TrainerState = family.build()
    if ckpt is not None:
        state.load_state_dict(ckpt, info.rank, info.world)
    else:
        for m in state.modules():
            D_.broadcast_module(m, info)
        torch.manual_seed(cfg.seed + 1000 * info.rank + 1)

    # fixed inputs for grids and the quality score (rank 0)
    grid_seeds, grid_labels, _ = grid_inputs(data, cfg.grid_cols, cfg.seed)
    qn = min(cfg.quality_n, len(data.films))  # the films themselves, not their resampled copies
    qg = torch.Generator().manual_seed(cfg.seed + 2_000_003)
    q_idx = torch.randperm(len(data.films), generator=qg)[:qn]
    q_seeds = [cfg.seed * 2_000_003 + 29 + k for k in range(qn)]
    q_labels = data.sample_labels(qn, qg)
    for a, y in data.labels.items():
        q_labels[a] = torch.where(y[q_idx] >= 0, y[q_idx], q_labels[a])
    quality = QualityScore(data.images[q_idx].float()) if info.is_main else None

    tb = None
    if info.is_main:
        if ckpt is None:
            run_dir.mkdir(parents=True, exist_ok=False)
            (run_dir / "config.json").write_text(json.dumps(
                {**cfg.to_dict(), "run": {"dataset": data.info, "world": info.world, "device": str(dev),
                                          "mammosynth_version": __version__, "amp": str(amp_dtype) if use_amp else None}},
                indent=2) + "\n")
            save_grid(run_dir / "samples" / "reals.png", data.images[q_idx[:cfg.grid_cols * 4]].float(), cfg.grid_cols)
        tb = _tensorboard(run_dir)
    stats_f = open(run_dir / "stats.jsonl", "a", encoding="utf-8") if info.is_main else None

    def log(entry: dict[str, Any]) -> None:
        if stats_f is None:
            return
        stats_f.write(json.dumps(entry) + "\n")
        stats_f.flush()
        if tb is not None:
            for k, v in entry.items():
                if isinstance(v, (int, float)) and k not in ("step", "kimg"):
                    tb.add_scalar(f"{entry['event']}/{k}", v, state.nimg)

    def snapshot(quality_score: float | None) -> None:
        meta = {
            "config": cfg.to_dict(), "world": info.world,
            "label_axes": {a: list(c) for a, c in data.label_axes.items()}, "label_freq": data.label_freq,
            "dataset": {k: data.info[k] for k in ("path", "split", "content_hash", "manifest_sha256")},
            "quality": quality_score, "mammosynth_version": __version__,
            **({"shape_reference": shapes} if shapes is not None else {}),
        }
        improved = replaces_best(quality_score, state.best_quality)
        if improved:
            state.best_quality = min(state.best_quality, quality_score)
        ck = {**meta, **state.state_dict(), "elapsed_s": elapsed0_ + (time.time() - t_start)}
        save_checkpoint(run_dir / "checkpoints" / checkpoint_name(state.nimg), ck)
        prune_checkpoints(run_dir, cfg.keep)
        if improved:
            save_checkpoint(run_dir / "checkpoints" / "best.pt", ck)

    def do_snapshot(score: bool = True) -> None:
        state.gather_rng(info)
        family.before_snapshot(state)
        if not info.is_main:
            return
        if not score:
            # a stop request: the checkpoint at once, no quality score or grid. Those sample
            # images, minutes for a diffusion model at 256x160, and a scheduler's SIGKILL
            # after its grace period would otherwise take everything since the last snapshot.
            snapshot(None)
            log({"event": "checkpoint", "step": state.step, "kimg": state.nimg / 1000,
                 "time_s": round(elapsed0_ + time.time() - t_start, 2)})
            return
        q = quality(family.render(state, q_seeds, q_labels))
        grid = family.render(state, grid_seeds, grid_labels)
        save_grid(run_dir / "samples" / f"grid-{state.nimg / 1000:010.3f}.png", grid, cfg.grid_cols)
        if tb is not None:
            tb.add_image("samples", (grid[:cfg.grid_cols * 4].clamp(-1, 1) + 1) / 2, state.nimg, dataformats="NCHW")
        snapshot(q)
        log({"event": "snapshot", "step": state.step, "kimg": state.nimg / 1000, "quality": q,
             **family.progress(state), "time_s": round(elapsed0_ + time.time() - t_start, 2)})

    elapsed0_ = state.elapsed_s
    t_start = time.time()
    last_log = t_start
    clock = time.process_time if cfg.budget_clock == "cpu" else time.time  # what the budget counts
    c_start = clock()
    last_snap = c_start
    cpu0 = time.process_time()
    log({"event": "start" if ckpt is None else "resume", "step": state.step, "kimg": state.nimg / 1000,
         "world": info.world, "device": str(dev)})
    target = cfg.kimg * 1000 if cfg.kimg is not None else None
    bar = None
    if info.is_main:
        from ..utils import progress_bar  # tqdm on a terminal, a plain line every few seconds in a log

        bar = progress_bar(total=int(target) if target else None,
                           initial=min(state.nimg, int(target)) if target else state.nimg,
                           unit="img", unit_scale=True, desc="train")
    acc = dict.fromkeys(family.loss_names, 0.0)
    steps_since, img_since, interrupted = 0, 0, False
    with _StopRequest() as stop_req:
        while True:
            now = clock()
            stop = (target is not None and state.nimg >= target) or \
                   (cfg.minutes is not None and now - c_start >= cfg.minutes * 60)
            flags = D_.all_sum([float(stop), float(stop_req.requested),
                                float(info.is_main and now - last_snap >= cfg.snapshot_minutes * 60)], info)
            if flags[0] or flags[1]:
                interrupted = bool(flags[1]) and not flags[0]
                break
            if flags[2]:
                do_snapshot()
                last_snap = clock()
            # ---- one step ----
            gen = step_generator(cfg.seed, state.step, info.rank)
            idx = data.batch_indices(cfg.seed, state.step, info.rank, info.world, per_rank)
            real, real_labels = data.batch(idx)
            losses = family.train_step(state, gen, real.to(dev, memory_format=mem, non_blocking=True), real_labels)
            state.nimg += cfg.batch
            state.step += 1
            for ema_key, key in state.ema.items():
                _ema_update(state.nets[ema_key], state.nets[key], state.nimg, cfg.batch, cfg.ema_kimg)
            family.after_step(state)
            # ---- logging (rank 0) ----
            for k, v in losses.items():
                acc[k] += v
            steps_since += 1
            img_since += cfg.batch
            now = time.time()
            fam = family.progress(state)
            if bar is not None:
                bar.update(cfg.batch)
                if cfg.minutes is not None:  # time budget: show the time left as the ETA
                    left = max(0, int(cfg.minutes * 60 - (clock() - c_start)))
                    bar.set_postfix_str(" ".join(f"{k}={v:.2f}" for k, v in fam.items())
                                        + f" left={left // 60:02d}:{left % 60:02d}", refresh=False)
            if info.is_main and now - last_log >= 10:
                entry = {"event": "train", "step": state.step, "kimg": state.nimg / 1000,
                         "img_s": round(img_since / (now - last_log), 2), **{k: round(v, 4) for k, v in fam.items()},
                         **{k: round(v / steps_since, 5) for k, v in acc.items()},
                         "time_s": round(elapsed0_ + now - t_start, 2),
                         "cpu_s": round(time.process_time() - cpu0, 2)}
                log(entry)
                if bar is not None and cfg.minutes is None:
                    bar.set_postfix({k: f"{entry[k]:.2f}" for k in (*fam, *family.loss_names[:2])})
                acc = dict.fromkeys(family.loss_names, 0.0)
                steps_since, img_since, last_log = 0, 0, now
        do_snapshot(score=not interrupted)
    if bar is not None:
        bar.close()
    same = D_.replicas_identical(state.modules(), info) if info.enabled else True
    log({"event": "interrupted" if interrupted else "end", "step": state.step, "kimg": state.nimg / 1000,
         "time_s": round(elapsed0_ + time.time() - t_start, 2), "cpu_s": round(time.process_time() - cpu0, 2),
         "world": info.world, "replicas_identical": same})
    if stats_f is not None:
        stats_f.close()
    if tb is not None:
        tb.close()
    D_.barrier(info)
    if interrupted:
        if info.is_main:
            print(f"interrupted at {state.nimg / 1000:.3f} kimg; checkpoint written to {run_dir / 'checkpoints'}; "
                  f"continue with --resume latest", file=sys.stderr)
        raise KeyboardInterrupt
    return run_dir
