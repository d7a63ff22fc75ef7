"""Memory layout of GAN training on a CPU: the CPU time of a training step in the default
(NCHW) layout against channels-last (NHWC), which ``train`` uses for the GANs on every
device (``training.loop.training_memory_format``).

Both layouts train side by side in one process from the same initial weights, in
alternating blocks of steps (the first block of each is a warm-up and not counted), so a
shared, busy host disturbs both alike. Prints the CPU seconds per step of each layout and their ratio.
Usage::

    .venv/bin/python benchmarks/train_layout.py [--families fastgan,dcgan] [--size 128 128]
        [--rounds 4] [--threads 1] [--data PREPARED]   # default data: a 64-image phantom set
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import tempfile
import time


def step_seconds(prepared: str, family: str, size: tuple[int, int], rounds: int) -> dict[str, float]:
    """CPU seconds per training step of each layout, over ``rounds - 1`` counted blocks."""
    import torch

    from mammosynth.models import ModelConfig
    from mammosynth.training import TrainConfig
    from mammosynth.training import distributed as D_
    from mammosynth.training.data import load_training_data, step_generator
    from mammosynth.training.family import StepContext, family_for

    cfg = TrainConfig(model=ModelConfig.for_family(family, resolution=size), seed=0).resolved()
    data = load_training_data(prepared, size, (), show_progress=False, dtype=torch.float16)
    info, cpu = D_.init("cpu"), torch.device("cpu")
    runs = {}
    for name, mem in (("NCHW", torch.contiguous_format), ("NHWC", torch.channels_last)):
        ctx = StepContext(info=info, device=cpu, memory_format=mem, autocast=contextlib.nullcontext,
                          scaler=torch.amp.GradScaler("cpu", enabled=False))
        fam = family_for(cfg)(cfg, data, ctx)
        torch.manual_seed(0)
        runs[name] = (fam, fam.build(), mem)
    steps = max(2, 160 // cfg.batch)  # about 160 images per block
    total = dict.fromkeys(runs, 0.0)
    for r in range(rounds):
        for name, (fam, state, mem) in runs.items():
            t = time.process_time()
            for _ in range(steps):
                gen = step_generator(cfg.seed, state.step, 0)
                real, labels = data.batch(data.batch_indices(cfg.seed, state.step, 0, 1, cfg.batch))
                fam.train_step(state, gen, real.to(memory_format=mem), labels)
                state.step += 1
                fam.after_step(state)
            if r:
                total[name] += time.process_time() - t
    return {k: v / (steps * (rounds - 1)) for k, v in total.items()}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default="fastgan,dcgan")
    ap.add_argument("--size", type=int, nargs=2, default=[128, 128], metavar=("H", "W"))
    ap.add_argument("--rounds", type=int, default=4, help="blocks of steps per layout, the first one a warm-up")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=None, help="a prepared dataset (default: a 64-image phantom set)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    size = tuple(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = args.data
        if prepared is None:
            from mammosynth.phantom.dataset import PhantomConfig, make_phantom_dataset

            prepared = str(make_phantom_dataset(f"{tmp}/phantom", 64, PhantomConfig(size=size)))
        for family in args.families.split(","):
            s = step_seconds(prepared, family, size, max(2, args.rounds))
            print(f"{family:8s} {size[0]}x{size[1]}  CPU s per step: NCHW {s['NCHW']:.3f}  NHWC {s['NHWC']:.3f}  "
                  f"NHWC/NCHW {s['NHWC'] / s['NCHW']:.3f}", flush=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
