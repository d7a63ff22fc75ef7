"""Benchmark: the ``gpu`` preset (fastgan) on one CUDA GPU at 256x160 and 512x320: training
img/s, peak GPU memory next to the ``--dry-run`` estimate, generation img/s, and the realism
figures of ``train_gan.py`` against the held-back mini-MIAS films.

Two steps, because the GPU machine may hold neither the films nor pyradiomics (FRD):

    # 1. where the GPU is, on splits made by train_gan.prepare (DIR/split: 2/3 train, 1/3 test):
    python benchmarks/train_gpu.py train /tmp/benchgpu256/split /tmp/benchgpu512/split \\
        --minutes 3 --out /tmp/gpu_out
    # 2. anywhere: score the exported generators as train_gan.py scores its runs
    python benchmarks/train_gpu.py score /tmp/gpu_out/fastgan-gpu-256x160 /tmp/gpu_out/fastgan-gpu-512x320
    # or both on one GPU machine that has the films and pyradiomics (without CUDA it says so and exits 0)
    python benchmarks/train_gpu.py

``train`` trains each split for ``--minutes`` wall-minutes (a GPU has no CPU-minute budget),
on the films of a ``split-HxW`` beside it at twice its size or more when there is one
(``train_gan.prepare_source``: the resampled copies of training.resample need them),
then writes per size a directory with the EMA generator as a saved pipeline (weights in
float16 unless ``--fp32``, so that both sizes travel in a few tens of MB: finer than the bf16 that
training's autocast cast them to), the run's config, stats and last grid,
and ``measures.json``. It exits non-zero when a size failed, after trying every size.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f}"


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def network_rate(pipe, n: int, batch: int, autocast: bool) -> float:
    """Images per second of the generator alone (latents already on the device), best of three passes."""
    gen = pipe.inference_generator
    z = torch.randn(batch, pipe.z_dim, device=pipe.device)
    cond = {a: torch.zeros(batch, dtype=torch.long, device=pipe.device) for a in pipe.label_axes}
    best = 0.0
    with torch.inference_mode(), pipe._inference_scope(), \
            torch.autocast(pipe.device.type, dtype=torch.bfloat16, enabled=autocast):
        gen(z, cond)
        for _ in range(3):
            _sync()
            t = time.perf_counter()
            for _ in range(max(1, n // batch)):
                gen(z, cond)
            _sync()
            best = max(best, max(1, n // batch) * batch / (time.perf_counter() - t))
    return best


def export(pipe, run: Path, dest: Path, fp32: bool) -> None:
    """The saved pipeline (float16 weights unless ``fp32``), the run's config, stats and last grid."""
    from safetensors.torch import load_file, save_file

    shutil.rmtree(dest, ignore_errors=True)
    saved = pipe.save_pretrained(dest / "pipeline")
    if not fp32:
        w = saved / "model.safetensors"
        state = {k: v.half() if v.is_floating_point() else v for k, v in load_file(str(w)).items()}
        save_file(state, str(w), metadata={"format": "pt", "note": "float16 copy of the fp32 EMA weights"})
    shutil.copy(run / "config.json", dest / "train_config.json")
    shutil.copy(run / "stats.jsonl", dest / "stats.jsonl")
    grids = sorted((run / "samples").glob("grid-*.png"))
    if grids:
        shutil.copy(grids[-1], dest / "grid.png")


def train_one(split: Path, args, out: Path) -> dict:
    from mammosynth.data.prepared import PreparedDataset
    from mammosynth.sampling import GanPipeline
    from mammosynth.training import train
    from mammosynth.training.loop import plan
    from mammosynth.training.presets import preset_config

    h, w = PreparedDataset(f"{split}:train").image(0).shape
    # train_gan.prepare_source's films beside the split, when there: the resampled copies
    # need films stored at least twice the training size (training.resample)
    bigger = [d for d in split.parent.glob("split-*x*") if (d / "dataset.json").is_file()
              and all(int(v) >= 2 * n for v, n in zip(d.name[len("split-"):].split("x"), (h, w)))]
    films = min(bigger, key=lambda d: int(d.name[len("split-"):].split("x")[0])) if bigger else split
    widths = dict(zip(("g_channels", "d_channels", "max_channels"), args.widths or ()))
    cfg = preset_config(args.preset, model={"family": "fastgan", "resolution": (h, w), **widths}, minutes=args.minutes,
                        batch=args.batch,
                        budget_clock="wall", device=args.device, snapshot_minutes=max(0.5, args.minutes / 3),
                        seed=args.seed, name=f"fastgan-{args.preset}-{h}x{w}")
    est = plan(f"{films}:train", out / "runs", cfg)
    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t = time.time()
    run = train(f"{films}:train", out / "runs", cfg)
    wall = time.time() - t
    peak_alloc, peak_res = (torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()) if cuda else (0, 0)
    stats = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    end = [s for s in stats if s["event"] == "end"][-1]
    steady = [s["img_s"] for s in stats if s["event"] == "train"][1:]  # the first window holds cuDNN's tuning
    pipe = GanPipeline.from_pretrained(run, checkpoint="best", device=args.device)
    pipe(64, seed=1, remove_background=False)
    rates = {"network_fp32": network_rate(pipe, args.gen_n, 64, False),
             "network_bf16": network_rate(pipe, args.gen_n, 64, True)}
    for key, clean in (("pipeline_raw", False), ("pipeline", True)):
        t0 = time.time()
        pipe(args.gen_n // 4, seed=7, batch_size=64, remove_background=clean)
        rates[key] = args.gen_n // 4 / (time.time() - t0)
    dest = out / f"fastgan-{args.preset}-{h}x{w}"
    export(pipe, run, dest, args.fp32)
    m = {"resolution": [h, w], "preset": args.preset, "minutes": args.minutes, "seed": args.seed,
         "device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__, "kimg": end["kimg"],
         "train_img_s_overall": end["kimg"] * 1000 / end["time_s"],
         "train_img_s_steady": float(np.median(steady)) if steady else None, "wall_s": wall,
         "peak_allocated_gib": peak_alloc / 2**30, "peak_reserved_gib": peak_res / 2**30,
         "estimate_gib": est["memory"]["total"] / 2**30,
         "parameters": est["parameters"], "cost": est["cost"], "batch": cfg.batch, "amp": cfg.amp,
         "generation_img_s": rates}
    (dest / "measures.json").write_text(json.dumps(m, indent=2, default=str) + "\n")
    print(f"{h}x{w} {args.preset}: {end['kimg']:.1f} kimg in {args.minutes:g} wall-min, train "
          f"{m['train_img_s_overall']:.0f} img/s overall ({_num(m['train_img_s_steady'])} steady), "
          f"peak memory {m['peak_allocated_gib']:.2f} GiB allocated / {m['peak_reserved_gib']:.2f} reserved "
          f"(estimate {m['estimate_gib']:.2f}); generation img/s: "
          + ", ".join(f"{k} {v:.0f}" for k, v in rates.items()), flush=True)
    return m


def cmd_train(args) -> int:
    if args.device == "cuda" and not torch.cuda.is_available():
        print("train: CUDA is not available (this step measures a GPU; --device cpu tries the path on a CPU)",
              file=sys.stderr)
        return 2
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for split in args.splits:
        try:
            train_one(Path(split), args, out)
        except Exception:  # one size failing must not cost the other's measurement
            failed += 1
            print(f"{split}: failed\n{traceback.format_exc()}", file=sys.stderr, flush=True)
    return 1 if failed else 0


def cmd_score(args) -> int:
    import targets
    import train_gan as tg

    from mammosynth.data.prepared import PreparedDataset
    from mammosynth.sampling import GanPipeline

    torch.set_num_threads(args.threads)
    os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")
    for d in map(Path, args.exports):
        m = json.loads((d / "measures.json").read_text())
        pipe = GanPipeline.from_pretrained(d / "pipeline")
        size = tuple(pipe.resolution)
        work = Path(args.work) / f"{size[0]}x{size[1]}"
        split = tg.prepare(Path(args.data), work, size)
        n_real = len(PreparedDataset(split))
        test_dir = tg.real_pngs(f"{split}:test", work / "png" / "test", size)
        train_dir = tg.real_pngs(f"{split}:train", work / "png" / "train", size)
        n_test = len(list(test_dir.glob("*.png")))
        floor_matched, _ = tg.matched_frd(test_dir, train_dir, work / "png" / "train-matched", n_test)
        held = tg.real_arrays(f"{split}:test")
        syn = pipe(n_real, seed=123).images
        gen_dir = work / "png" / d.name
        shutil.rmtree(gen_dir, ignore_errors=True)
        imgs = torch.from_numpy(syn.astype(np.float32) / 32767.5 - 1.0)[:, None]
        tg.export_pngs(imgs, gen_dir)
        from mammosynth.training.loop import save_grid

        save_grid(gen_dir.with_name(gen_dir.name + "-sheet.png"), imgs[:32], cols=8)
        rm = tg.realism(held, syn, gen_dir.with_name(gen_dir.name + "-crops.png"), work / "cache",
                        PreparedDataset(f"{split}:test").content_hash)
        frd_m, _ = tg.matched_frd(test_dir, gen_dir, gen_dir.with_name(gen_dir.name + "-matched"), n_test)
        det, sp, dt = rm.detectability, rm.spectrum, rm.detail
        r = m["generation_img_s"]
        print(f"\n{size[0]}x{size[1]} preset {m['preset']} on {m['device']}: {m['minutes']:g} wall-min, "
              f"{m['kimg']:.1f} kimg, train {m['train_img_s_overall']:.0f} img/s (steady "
              f"{_num(m['train_img_s_steady'])}), peak memory {m['peak_allocated_gib']:.2f} GiB allocated, "
              f"{m['peak_reserved_gib']:.2f} reserved (estimate {m['estimate_gib']:.2f}), generation "
              f"network fp32 {r['network_fp32']:.0f} / bf16 {r['network_bf16']:.0f} img/s, pipeline "
              f"{r['pipeline']:.0f} img/s (raw {r['pipeline_raw']:.0f})\n"
              f"  detectability AUC {det.synthetic.auc:.3f} [{det.synthetic.ci_low:.2f}, {det.synthetic.ci_high:.2f}] "
              f"(texture view {tg.view_auc(det, 'texture')}, layout view {tg.view_auc(det, 'layout')}; floor "
              f"{det.floor.auc:.3f})  beta {sp.synthetic.median:.2f} vs real {sp.real.median:.2f}  high-pass ratio "
              f"{dt.ratio:.2f} [{dt.ci_low:.2f}, {dt.ci_high:.2f}]  FRD size-matched {frd_m:.3f} (floor "
              f"{floor_matched:.3f})  verdict {rm.verdict.status}\n  {tg.local_texture_line(rm.local_texture)}\n"
              f"  {tg.outline_line(rm.outline)}\n"
              f"  sheets: {gen_dir.with_name(gen_dir.name + '-sheet.png')}, {gen_dir.with_name(gen_dir.name + '-crops.png')}",
              flush=True)
        fig = targets.RunFigures(family="fastgan", minutes=m["minutes"], seed=m["seed"],
                                 detectability=det.synthetic.auc, beta=sp.synthetic.median, beta_real=sp.real.median,
                                 highpass_ratio=dt.ratio, frd_matched=frd_m, frd_floor_matched=floor_matched,
                                 gen_network=r["network_fp32"])
        print(targets.report([fig], size, 0).replace("with 0 thread(s)", "on the GPU")
              + f"\n  (this run: {m['minutes']:g} GPU wall-minutes, not the CPU-minutes the issue sets)")
    return 0


def cmd_all(args) -> int:
    """Both steps on one machine that has a CUDA GPU, the films and pyradiomics."""
    import train_gan as tg

    if not torch.cuda.is_available():
        print("train_gpu: no CUDA GPU here, nothing measured. On a GPU machine: python benchmarks/train_gpu.py "
              "(both steps), or the train and score steps apart (--help)")
        return 0
    work = Path(args.work)
    args.splits = [tg.prepare(Path(args.data), work / f"{h}x{w}", (h, w)) for h, w in ((256, 160), (512, 320))]
    for split, size in zip(args.splits, ((256, 160), (512, 320))):  # films at 2x beside each, for the copies
        tg.prepare_source(Path(args.data), split.parent, size, split, scale=2)
    args.out = str(work / "gpu_out")
    rc = cmd_train(args)
    args.exports = sorted(str(p) for p in Path(args.out).glob(f"fastgan-{args.preset}-*"))
    return cmd_score(args) or rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    train_opts = argparse.ArgumentParser(add_help=False)
    train_opts.add_argument("--minutes", type=float, default=3.0, help="wall-minutes per size (default %(default)s)")
    train_opts.add_argument("--preset", default="gpu", choices=("gpu", "gpu-large"))
    train_opts.add_argument("--seed", type=int, default=0)
    train_opts.add_argument("--fp32", action="store_true", help="export float32 weights (twice the size)")
    train_opts.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                            help="cpu: try the train step on a CPU, e.g. with --minutes 0.2 (figures meaningless)")
    train_opts.add_argument("--widths", type=int, nargs=3, metavar=("G", "D", "MAX"), default=None,
                            help="channels instead of the preset's (e.g. 4 4 16 for a quick try on a CPU)")
    train_opts.add_argument("--batch", type=int, default=None, help="batch instead of the preset's")
    train_opts.add_argument("--gen-n", type=int, default=4096,
                            help="images per generation timing pass of the network (default %(default)s)")
    score_opts = argparse.ArgumentParser(add_help=False)
    score_opts.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mias-dev"))
    score_opts.add_argument("--work", default="/tmp/bench_train_gpu")
    score_opts.add_argument("--threads", type=int, default=2, help="torch CPU threads of the scoring")
    sub = ap.add_subparsers(dest="cmd")
    t = sub.add_parser("train", parents=[train_opts], help="train and measure on the GPU; export the generators")
    t.add_argument("splits", nargs="+", help="prepared splits (train_gan.prepare: DIR/split)")
    t.add_argument("--out", default="/tmp/gpu_out")
    s = sub.add_parser("score", parents=[score_opts], help="score exported generators against the held-back films")
    s.add_argument("exports", nargs="+")
    a = sub.add_parser("all", parents=[train_opts, score_opts], help="both steps here (the default)")
    a.set_defaults(cmd="all")
    args = ap.parse_args()
    if args.cmd is None:  # no step named: both, with their defaults
        args = a.parse_args([])
        args.cmd = "all"
    return {"train": cmd_train, "score": cmd_score, "all": cmd_all}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
