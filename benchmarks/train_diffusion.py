"""Benchmark: the diffusion family next to FastGAN on mini-MIAS under fixed CPU-time budgets.

For each size, family and budget (minutes): train from scratch on two thirds of the films
(``benchmarks/train_gan.py``'s split), generate as many images as there are held-back films
through the public pipeline (``load_pipeline``: diffusion with DPM-Solver++ at 25 steps and
guidance 1.5, its defaults), and report training img/s, sampling img/s, FRD against the
held-back third next to the real-vs-real floor (held-back vs as many training films), and
the realism measures (``mammosynth.metrics.realism``): detectability AUC of the CNN
two-sample test next to its real-vs-real floor, the spectrum exponent beta next to the
held-back films', and the high-pass (fine-detail) energy ratio. The diffusion runs take
one snapshot only (at the end) with a 16-image quality score: a snapshot samples with the
UNet and would eat into the budget. Contact sheets are written next to the generated PNGs.

    python benchmarks/train_diffusion.py --sizes 64x40,128x80 --budgets 10 --threads 1
    python benchmarks/train_diffusion.py --sizes 256x160 --budgets 30 --device cuda   # on a GPU
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import train_gan as tg  # noqa: E402  (the split, PNG export, FRD and realism helpers)


def generate(run: Path, n: int, out: Path, device: str) -> tuple[float, np.ndarray]:
    """``n`` images (background removed, as ``generate`` does) through ``load_pipeline``;
    returns images/s of the pipeline call (a warm-up batch first) and the uint16 images."""
    from mammosynth.sampling import load_pipeline
    from mammosynth.training.loop import save_grid

    pipe = load_pipeline(run, checkpoint="best", device=device)
    pipe(2, seed=99)
    t = time.time()
    result = pipe(n, seed=123)
    rate = n / (time.time() - t)
    imgs = torch.from_numpy(result.images.astype(np.float32) / 32767.5 - 1.0)[:, None]
    tg.export_pngs(imgs, out)
    save_grid(out.with_name(out.name + "-sheet.png"), imgs[:32], cols=8)
    return rate, result.images


def realism(held: tuple, syn_u16: np.ndarray, sheet: Path):
    """``train_gan.realism``, but a model that draws no breast yet (an early diffusion run's
    noise) gets no crop sheet and, if the measures cannot run, None instead of a crash."""
    from mammosynth.data.preprocess import breast_masks
    from mammosynth.metrics.realism import RealismConfig, realism_metrics, realism_sheet

    xs, ms = syn_u16.astype(np.float32) / 65535.0, breast_masks(syn_u16)
    try:
        realism_sheet(held[0], held[1], xs, ms, sheet)
    except ValueError as exc:
        print(f"note: no crop sheet ({exc})", flush=True)
    try:
        return realism_metrics(held[0], held[1], held[2], xs, ms, None, RealismConfig(), progress=False)
    except Exception as exc:  # noqa: BLE001 (a benchmark row, not a crash)
        print(f"note: realism measures failed ({type(exc).__name__}: {exc})", flush=True)
        return None


def _realism_cells(rm) -> str:
    if rm is None:
        return "n/a | n/a | n/a | n/a | n/a"
    d, sp, dt = rm.detectability, rm.spectrum, rm.detail
    return (f"{d.synthetic.auc:.3f} [{d.synthetic.ci_low:.2f}, {d.synthetic.ci_high:.2f}] "
            f"| {tg.view_auc(d, 'texture')} / {tg.view_auc(d, 'layout')} | {d.floor.auc:.3f} "
            f"| {sp.synthetic.median:.2f} ({sp.real.median:.2f}) | {dt.ratio:.2f} [{dt.ci_low:.2f}, {dt.ci_high:.2f}]")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mias-dev"))
    ap.add_argument("--out", default="/tmp/bench_train_diffusion")
    ap.add_argument("--sizes", default="64x40,128x80", help="HxW, comma-separated")
    ap.add_argument("--budgets", default="10,30", help="training minutes per run, comma-separated")
    ap.add_argument("--families", default="diffusion,fastgan")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (1 on a shared machine)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--budget-clock", default="cpu", choices=("cpu", "wall"),
                    help="budgets in CPU minutes of the training process (equal work on a loaded machine; "
                         "at --threads 1 one CPU minute is one core-minute) or wall minutes (default: %(default)s)")
    ap.add_argument("--reuse-runs", action="store_true",
                    help="score the newest finished run of each name under OUT/SIZE/runs instead of training again")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")
    from mammosynth.models import config_for_family
    from mammosynth.training import TrainConfig, train

    rows = []
    for size_s in args.sizes.split(","):
        size = tuple(int(v) for v in size_s.lower().split("x"))
        work = Path(args.out) / f"{size[0]}x{size[1]}"
        work.mkdir(parents=True, exist_ok=True)
        split = tg.prepare(Path(args.data), work, size)
        test_dir = tg.real_pngs(f"{split}:test", work / "png" / "test", size)
        train_dir = tg.real_pngs(f"{split}:train", work / "png" / "train", size)
        n_test = len(list(test_dir.glob("*.png")))
        floor, _ = tg.matched_frd(test_dir, train_dir, work / "png" / "train-matched", n_test)
        held = tg.real_arrays(f"{split}:test")
        print(f"{size[0]}x{size[1]}: {n_test} held-back films; FRD floor (held-back vs {n_test} training films) "
              f"{floor:.3f}; torch threads {torch.get_num_threads()}, {tg.precision()}, "
              f"load average {os.getloadavg()[0]:.1f} "
              "(shared machine)", flush=True)
        for fam in args.families.split(","):
            for minutes in [float(b) for b in args.budgets.split(",")]:
                extra = dict(snapshot_minutes=minutes, quality_n=16) if fam == "diffusion" else \
                    dict(snapshot_minutes=max(1.0, minutes / 3))
                cfg = TrainConfig(model=config_for_family(fam, resolution=size), minutes=minutes, device=args.device,
                                  budget_clock=args.budget_clock, name=f"{fam}-{minutes:g}min", **extra)
                run = tg.finished_run(work / "runs", cfg.name) if args.reuse_runs else None
                run = run or train(f"{split}:train", work / "runs", cfg)
                stats = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
                end = stats[-1]
                # the rate up to the last training log: the final snapshot (sampling) is not training
                last = ([s for s in stats if s["event"] == "train"] or [end])[-1]
                train_rate = last["kimg"] * 1000 / last["time_s"]
                gen_dir = work / "png" / run.name
                shutil.rmtree(gen_dir, ignore_errors=True)
                gen_rate, syn = generate(run, n_test, gen_dir, args.device)
                rm = realism(held, syn, gen_dir.with_name(gen_dir.name + "-crops.png"))
                score = tg.frd(test_dir, gen_dir)
                rows.append((f"{size[0]}x{size[1]}", fam, minutes, end["kimg"], train_rate, gen_rate, score, floor, rm))
                print(f"{size_s} {fam:9s} {minutes:4.0f} min {end['kimg']:6.2f} kimg train {train_rate:6.2f} img/s "
                      f"sample {gen_rate:7.2f} img/s FRD {score:.3f} (floor {floor:.3f}) | {_realism_cells(rm)} | "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
    print("\n| size | family | budget (min) | kimg | train img/s | sample img/s | FRD vs held-back | FRD floor "
          "| detectability AUC [CI] | texture / layout view AUC | floor AUC | beta syn (real) | high-pass ratio [CI] |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size_s, fam, m, k, tr, gr, s_, fl, rm in rows:
        print(f"| {size_s} | {fam} | {m:g} | {k:.2f} | {tr:.2f} | {gr:.2f} | {s_:.3f} | {fl:.3f} | {_realism_cells(rm)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
