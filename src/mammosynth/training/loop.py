"""The training loop: one function, :func:`train`, for every family, device and world size.

Per step (``batch`` images per rank, all randomness from :func:`step_generator`):

1. D step: fakes from G (no grad), DiffAugment both sides with probability ``p``,
   one D pass on [reals, fakes]; hinge (fastgan) or BCE (dcgan) loss + FastGAN's
   reconstruction loss on reals.
2. Lazy R1 every ``r1_interval`` steps: ``gamma/2 * |grad_x D(x)|^2 * interval`` on reals.
3. ADA: accumulate ``sign(D(real))``; every ``ada_interval`` steps move ``p`` toward
   ``r_t = 0.6``.
4. G step: fresh latents and labels, non-saturating loss through the same augmentation.
5. EMA of G (half-life ``ema_kimg`` with StyleGAN's 5 % ramp-up).

Rank 0 writes stats.jsonl, TensorBoard, sample grids and checkpoints every
``snapshot_minutes`` and at the end. Ctrl-C / SIGTERM finish the step, write a
checkpoint and raise KeyboardInterrupt.
"""
from __future__ import annotations

import contextlib
import copy
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
import torch.nn.functional as F

from .. import __version__
from ..models import build_discriminator, build_generator
from ..models.augment import augment, parse_ops, update_p
from ..models.cost import model_cost, train_memory
from ..utils import atomic_file
from . import distributed as D_
from .checkpoint import (checkpoint_name, find_checkpoint, list_checkpoints, load_checkpoint, prune_checkpoints,
                         remove_stale_temporaries, rng_state, save_checkpoint, set_rng_state)
from .config import TrainConfig
from .data import TrainingData, load_training_data, open_training_set, step_generator
from .quality import QualityScore

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


def _ema_update(G_ema: torch.nn.Module, G: torch.nn.Module, nimg: int, batch: int, ema_kimg: float) -> None:
    with torch.no_grad():
        if ema_kimg > 0:
            ema_nimg = min(ema_kimg * 1000.0, max(nimg * 0.05, 1e-8))
            beta = 0.5 ** (batch / ema_nimg)
        else:
            beta = 0.0
        for pe, p in zip(G_ema.parameters(), G.parameters()):
            pe.copy_(p.detach().lerp(pe, beta))
        for be, b in zip(G_ema.buffers(), G.buffers()):
            be.copy_(b)


@torch.no_grad()
def recalibrate_bn(G: torch.nn.Module, data: TrainingData, device: torch.device, seed: int,
                   batches: int = 8, batch: int = 64) -> None:
    """Re-estimate the BatchNorm running statistics of ``G`` (in place) for eval-mode use.

    ``_ema_update`` copies G's running stats into G_ema, but those belong to G's weights,
    not to the averaged ones; eval-mode samples of G_ema then collapse to near-flat
    images. Here G runs in train mode with a cumulative average (``momentum=None``) over
    ``batches`` batches of latents and labels from a dedicated fixed-seed generator, so
    the global RNG stream (and bit-identical resume) is untouched. Leaves ``G`` in eval mode.
    """
    bns = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    g = torch.Generator().manual_seed(seed + 3_000_017)
    G.train()
    try:
        for _ in range(batches):
            z = torch.randn(batch, G.z_dim, generator=g)
            labels = data.sample_labels(batch, g)
            G(z.to(device), {a: y.to(device) for a, y in labels.items()})
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
        G.eval()


def d_loss_fn(loss: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if loss == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + \
        F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))


def g_loss_fn(loss: str, fake: torch.Tensor) -> torch.Tensor:
    if loss == "hinge":
        return -fake.mean()
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


@torch.no_grad()
def generate_batches(G: torch.nn.Module, z: torch.Tensor, labels: dict[str, torch.Tensor], device: torch.device,
                     chunk: int = 32) -> torch.Tensor:
    out = []
    for i in range(0, z.shape[0], chunk):
        out.append(G(z[i:i + chunk].to(device), {a: y[i:i + chunk].to(device) for a, y in labels.items()}).float().cpu())
    return torch.cat(out)


def grid_inputs(data: TrainingData, z_dim: int, cols: int, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[str]]:
    """Fixed latents and labels for the sample grid: one row per class of each conditioned
    axis (other axes fixed), the same ``cols`` latents in every row; 4 rows if unconditioned."""
    g = torch.Generator().manual_seed(seed + 1_000_003)
    z = torch.randn(cols, z_dim, generator=g)
    if not data.label_axes:
        z4 = torch.randn(4 * cols, z_dim, generator=g)
        return z4, {}, ["row"] * 4
    base = data.sample_labels(cols, g)
    zs, labs, names = [], {a: [] for a in data.label_axes}, []
    for axis, classes in data.label_axes.items():
        for k, c in enumerate(classes):
            zs.append(z)
            for a in data.label_axes:
                labs[a].append(torch.full((cols,), k) if a == axis else base[a])
            names.append(f"{axis}={c}")
    return torch.cat(zs), {a: torch.cat(v) for a, v in labs.items()}, names


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
    cost = model_cost(cfg.model)
    # amp_setting's "on", without asking a GPU about bf16 (a dry run may plan for one it lacks)
    amp_on = cfg.amp in ("bf16", "fp16") or (cfg.amp == "auto" and D_.uses_cuda(cfg.device))
    memory = train_memory(cfg.model, cfg.batch, amp=amp_on, recon=cfg.recon_weight > 0, r1=cfg.r1_gamma > 0)
    return {
        "config": cfg.to_dict(), "run_dir": str(run_dir), "resume_from": str(ckpt_path) if ckpt_path else None,
        "dataset": {"path": str(ds.root), "split": ds.split, "images": len(ds), "labels": counts},
        "preset": cfg.preset, "parameters": {"G": cost.g_params, "D": cost.d_params},
        "cost": cost.to_dict(), "memory": memory.to_dict(),
    }


# -- training ---------------------------------------------------------------------------
def amp_setting(mode: str, device: torch.device) -> tuple[bool, torch.dtype]:
    """``(autocast on, its dtype)`` for a :attr:`TrainConfig.amp` mode on ``device``."""
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return False, torch.float32
    if mode == "auto":
        return True, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return True, {"bf16": torch.bfloat16, "fp16": torch.float16}[mode]


def train(prepared: str | os.PathLike, runs_dir: str | os.PathLike, config: TrainConfig,
          resume: str | os.PathLike | None = None) -> Path:
    """Train a GAN on ``prepared`` (``PATH[:split]``) and return the run directory.

    ``resume``: ``"latest"`` (newest run under ``runs_dir``), a run directory or a
    checkpoint file; the run's own config is used, with this call's ``minutes``/``kimg``
    budget (``kimg`` is the total, ``minutes`` counts this session only).
    """
    info = D_.init(config.device)
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
    data = load_training_data(str(prepared), cfg.model.resolution, cfg.model.condition, show_progress=info.is_main)
    if ckpt is not None and ckpt["dataset"].get("content_hash") != data.info["content_hash"]:
        raise ValueError(f"{prepared}: differs from the dataset run {run_dir} was trained on "
                         f"({ckpt['dataset'].get('path')}); resume needs the same data")
    dev = info.device
    use_amp, amp_dtype = amp_setting(cfg.amp, dev)
    autocast = (lambda: torch.autocast(dev.type, dtype=amp_dtype)) if use_amp else contextlib.nullcontext
    scaler = torch.amp.GradScaler(dev.type, enabled=use_amp and amp_dtype == torch.float16)
    mem = torch.channels_last if dev.type == "cuda" else torch.contiguous_format

    torch.manual_seed(cfg.seed)
    G = build_generator(cfg.model).to(dev, memory_format=mem)
    Dn = build_discriminator(cfg.model).to(dev, memory_format=mem)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_D = torch.optim.Adam(Dn.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    step, nimg, ada_p, ada_acc, best_q, elapsed0 = 0, 0, cfg.ada_p0, [0.0, 0.0], math.inf, 0.0
    if ckpt is not None:
        G.load_state_dict(ckpt["G"])
        Dn.load_state_dict(ckpt["D"])
        G_ema.load_state_dict(ckpt["G_ema"])
        opt_G.load_state_dict(ckpt["opt_G"])
        opt_D.load_state_dict(ckpt["opt_D"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        step, nimg, ada_p = int(ckpt["step"]), int(ckpt["nimg"]), float(ckpt["ada_p"])
        ada_acc = [float(v) for v in ckpt["ada_acc"]]
        best_q = float(ckpt.get("best_quality") if ckpt.get("best_quality") is not None else math.inf)
        elapsed0 = float(ckpt.get("elapsed_s", 0.0))
        rngs = ckpt.get("rng") or []
        if len(rngs) == info.world:
            set_rng_state(rngs[info.rank])
    else:
        D_.broadcast_module(G, info)
        D_.broadcast_module(Dn, info)
        D_.broadcast_module(G_ema, info)
        torch.manual_seed(cfg.seed + 1000 * info.rank + 1)
    ops = parse_ops(cfg.augment)

    # fixed inputs for grids and the quality score (rank 0)
    grid_z, grid_labels, _ = grid_inputs(data, cfg.model.z_dim, cfg.grid_cols, cfg.seed)
    qn = min(cfg.quality_n, len(data))
    qg = torch.Generator().manual_seed(cfg.seed + 2_000_003)
    q_idx = torch.randperm(len(data), generator=qg)[:qn]
    q_z = torch.randn(qn, cfg.model.z_dim, generator=qg)
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
                    tb.add_scalar(f"{entry['event']}/{k}", v, nimg)

    def snapshot(quality_score: float | None, rngs: list[Any]) -> None:
        nonlocal best_q
        state = {
            "config": cfg.to_dict(), "G": G.state_dict(), "D": Dn.state_dict(), "G_ema": G_ema.state_dict(),
            "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else {},
            "ada_p": float(ada_p), "ada_acc": [float(v) for v in ada_acc], "step": step, "nimg": nimg,
            "kimg": nimg / 1000, "elapsed_s": elapsed0 + (time.time() - t_start), "rng": rngs, "world": info.world,
            "label_axes": {a: list(c) for a, c in data.label_axes.items()}, "label_freq": data.label_freq,
            "dataset": {k: data.info[k] for k in ("path", "split", "content_hash", "manifest_sha256")},
            "quality": quality_score, "best_quality": min(best_q, quality_score if quality_score is not None else math.inf),
            "mammosynth_version": __version__,
        }
        if not math.isfinite(state["best_quality"]):
            state["best_quality"] = None
        save_checkpoint(run_dir / "checkpoints" / checkpoint_name(nimg), state)
        prune_checkpoints(run_dir, cfg.keep)
        if quality_score is not None and quality_score < best_q:
            best_q = quality_score
            save_checkpoint(run_dir / "checkpoints" / "best.pt", state)

    def do_snapshot() -> None:
        rngs = D_.gather_objects(rng_state(), info)
        recalibrate_bn(G_ema, data, dev, cfg.seed)  # every rank: replicas stay identical
        if not info.is_main:
            return
        fakes = generate_batches(G_ema, q_z, q_labels, dev)
        q = quality(fakes)
        grid = generate_batches(G_ema, grid_z, grid_labels, dev)
        save_grid(run_dir / "samples" / f"grid-{nimg / 1000:010.3f}.png", grid, cfg.grid_cols)
        if tb is not None:
            tb.add_image("samples", (grid[:cfg.grid_cols * 4].clamp(-1, 1) + 1) / 2, nimg, dataformats="NCHW")
        snapshot(q, rngs)
        log({"event": "snapshot", "step": step, "kimg": nimg / 1000, "quality": q, "ada_p": ada_p,
             "time_s": round(elapsed0 + time.time() - t_start, 2)})

    t_start = time.time()
    last_snap = last_log = t_start
    log({"event": "start" if ckpt is None else "resume", "step": step, "kimg": nimg / 1000, "world": info.world,
         "device": str(dev)})
    target = cfg.kimg * 1000 if cfg.kimg is not None else None
    bar = None
    if info.is_main:
        from ..utils import progress_bar  # tqdm on a terminal, a plain line every few seconds in a log

        bar = progress_bar(total=int(target) if target else None, initial=min(nimg, int(target)) if target else nimg,
                           unit="img", unit_scale=True, desc="train")
    acc = {"loss_D": 0.0, "loss_G": 0.0, "rec": 0.0, "r1": 0.0, "n": 0}
    img_since, interrupted = 0, False
    with _StopRequest() as stop_req:
        while True:
            now = time.time()
            stop = (target is not None and nimg >= target) or \
                   (cfg.minutes is not None and now - t_start >= cfg.minutes * 60)
            flags = D_.all_sum([float(stop), float(stop_req.requested),
                                float(info.is_main and now - last_snap >= cfg.snapshot_minutes * 60)], info)
            if flags[0] or flags[1]:
                interrupted = bool(flags[1]) and not flags[0]
                break
            if flags[2]:
                do_snapshot()
                last_snap = time.time()
            # ---- one step ----
            gen = step_generator(cfg.seed, step, info.rank)
            idx = data.batch_indices(cfg.seed, step, info.rank, info.world, per_rank)
            real, real_labels = data.batch(idx)
            real = real.to(dev, memory_format=mem, non_blocking=True)
            z = torch.randn(per_rank, cfg.model.z_dim, generator=gen).to(dev)
            fake_labels = data.sample_labels(per_rank, gen)
            G.requires_grad_(False)
            Dn.requires_grad_(True)
            with autocast():
                with torch.no_grad():
                    fake = G(z, fake_labels)
                both = augment(torch.cat([real, fake.to(real.dtype)]), ada_p, ops, gen)
                # reals and fakes in separate D passes: D's BatchNorm must see pure batches, as
                # in the G step (a mixed batch lets D separate them by batch statistics that
                # G's fake-only pass never reproduces, so G gets no useful gradient)
                logits_r, rec = Dn(both[:per_rank], real_labels, recon_n=per_rank if cfg.recon_weight > 0 else 0, gen=gen)
                logits_f, _ = Dn(both[per_rank:], fake_labels)
                logits = torch.cat([logits_r, logits_f])
                loss_D = d_loss_fn(cfg.loss, logits[:per_rank].float(), logits[per_rank:].float()) + cfg.recon_weight * rec.float()
            opt_D.zero_grad(set_to_none=True)
            scaler.scale(loss_D).backward()
            D_.all_reduce_grads(Dn.parameters(), info)
            scaler.step(opt_D)
            scaler.update()
            ada_acc[0] += float(torch.sign(logits[:per_rank].detach().float()).sum())
            ada_acc[1] += per_rank
            r1_val = 0.0
            if cfg.r1_gamma > 0 and step % cfg.r1_interval == 0:
                x = both[:per_rank].detach().float().requires_grad_(True)
                out, _ = Dn(x, real_labels)
                (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
                r1 = grad.square().sum(dim=(1, 2, 3)).mean()
                opt_D.zero_grad(set_to_none=True)
                (r1 * (cfg.r1_gamma / 2) * cfg.r1_interval).backward()
                D_.all_reduce_grads(Dn.parameters(), info)
                opt_D.step()
                r1_val = float(r1.detach())
            D_.sync_buffers(Dn, info)
            # G step
            G.requires_grad_(True)
            Dn.requires_grad_(False)
            z = torch.randn(per_rank, cfg.model.z_dim, generator=gen).to(dev)
            fake_labels = data.sample_labels(per_rank, gen)
            with autocast():
                fake = G(z, fake_labels)
                logits_g, _ = Dn(augment(fake, ada_p, ops, gen), fake_labels)
                loss_G = g_loss_fn(cfg.loss, logits_g.float())
            opt_G.zero_grad(set_to_none=True)
            scaler.scale(loss_G).backward()
            D_.all_reduce_grads(G.parameters(), info)
            scaler.step(opt_G)
            scaler.update()
            D_.sync_buffers(G, info)
            D_.sync_buffers(Dn, info)
            nimg += cfg.batch
            step += 1
            _ema_update(G_ema, G, nimg, cfg.batch, cfg.ema_kimg)
            if ops and cfg.ada_target > 0 and step % cfg.ada_interval == 0:
                s, n = D_.all_sum(ada_acc, info)
                ada_p = update_p(ada_p, s / max(n, 1), cfg.ada_target, cfg.batch, cfg.ada_interval, cfg.ada_kimg)
                ada_acc = [0.0, 0.0]
            # ---- logging (rank 0) ----
            acc["loss_D"] += float(loss_D.detach())
            acc["loss_G"] += float(loss_G.detach())
            acc["rec"] += float(rec.detach())
            acc["r1"] += r1_val
            acc["n"] += 1
            img_since += cfg.batch
            now = time.time()
            if bar is not None:
                bar.update(cfg.batch)
                if cfg.minutes is not None:  # time budget: show the time left as the ETA
                    left = max(0, int(cfg.minutes * 60 - (now - t_start)))
                    bar.set_postfix_str(f"p={ada_p:.2f} left={left // 60:02d}:{left % 60:02d}", refresh=False)
            if info.is_main and now - last_log >= 10:
                n = acc.pop("n")
                entry = {"event": "train", "step": step, "kimg": nimg / 1000, "img_s": round(img_since / (now - last_log), 2),
                         "ada_p": round(ada_p, 4), **{k: round(v / n, 5) for k, v in acc.items()},
                         "time_s": round(elapsed0 + now - t_start, 2)}
                log(entry)
                if bar is not None and cfg.minutes is None:
                    bar.set_postfix(p=f"{ada_p:.2f}", D=f"{entry['loss_D']:.2f}", G=f"{entry['loss_G']:.2f}")
                acc = {"loss_D": 0.0, "loss_G": 0.0, "rec": 0.0, "r1": 0.0, "n": 0}
                img_since, last_log = 0, now
        do_snapshot()
    if bar is not None:
        bar.close()
    same = D_.replicas_identical([G, Dn, G_ema], info) if info.enabled else True
    log({"event": "interrupted" if interrupted else "end", "step": step, "kimg": nimg / 1000,
         "time_s": round(elapsed0 + time.time() - t_start, 2), "world": info.world, "replicas_identical": same})
    if stats_f is not None:
        stats_f.close()
    if tb is not None:
        tb.close()
    D_.barrier(info)
    if interrupted:
        if info.is_main:
            print(f"interrupted at {nimg / 1000:.3f} kimg; checkpoint written to {run_dir / 'checkpoints'}; "
                  f"continue with --resume latest", file=sys.stderr)
        raise KeyboardInterrupt
    return run_dir
