"""Generation throughput of the default model (FastGAN-lite, conditioned on density, finding
and view): images per second through ``GanPipeline.__call__`` with its default background
removal (latents, labels, network, breast segmentation, uint16 conversion) and its default
CPU workers (batches side by side, one intra-op thread each), the same with one worker
(every op split over the torch threads instead), through the network alone
(``remove_background=False``), with the shape gate (a ``--run`` that stored its training
films' outlines: the pipeline plus the redraws, and the share redrawn), and through ``generate``
(the shape gate as it applies by default) (plus provenance marking and
16-bit PNG writing), at 128x128, 128x80 and 256x160, on CPU (and CUDA when present).

Weights are random unless ``--run`` names a trained run (its best checkpoint, at its own
resolution): the network's cost does not depend on them, the segmentation's does (the
near-noise images of random weights have many small components and cost about twice as
much to segment as a trained model's breasts), so quote ``--run`` figures for the
pipeline.
``generate`` includes the provenance watermark of every image and the signing of the set
(with a throw-away key). Usage::

    .venv/bin/python benchmarks/generate.py [--n 1024] [--batch 16] [--threads T] [--run RUN] [--passes K]
                                            [--writers 1,2,4] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path


def bench_pipeline(pipe, n: int, batch: int, remove_background: bool = True, workers: int | None = None,
                   passes: int = 2, shape_gate=None) -> list[float]:
    """img/s of ``pipe`` in each of ``passes`` back-to-back passes after a warm-up batch
    (the best is the least disturbed; the later ones show a host that slows under
    sustained load)."""
    pipe(n=min(n, batch), seed=1, batch_size=batch, remove_background=remove_background, workers=workers)
    rates = []
    for _ in range(passes):
        t = time.perf_counter()
        pipe(n=n, seed=0, batch_size=batch, remove_background=remove_background, workers=workers, shape_gate=shape_gate)
        rates.append(n / (time.perf_counter() - t))
    return rates


def bench_generate(pipe, n: int, batch: int, device: str, writers: int | None = None) -> float:
    from mammosynth.sampling import GenerateConfig, generate

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        generate(None, n, Path(tmp) / "syn", GenerateConfig(batch=batch, device=device, writers=writers), pipe=pipe)
        return n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    import os

    os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")
    home = tempfile.TemporaryDirectory()  # provenance signing keys: never the user's key directory
    os.environ.setdefault("MAMMOSYNTH_HOME", home.name)
    import torch

    from mammosynth.models import ModelConfig, build_generator
    from mammosynth.sampling import GanPipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024, help="images per measurement (default %(default)s)")
    ap.add_argument("--batch", type=int, default=16, help="batch size (default %(default)s)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--run", default=None, help="a trained run (or saved pipeline) instead of random weights")
    ap.add_argument("--passes", type=int, default=2,
                    help="back-to-back timed passes per figure; the best is reported, and every pass of the "
                         "default pipeline is printed (default %(default)s)")
    ap.add_argument("--writers", default=None,
                    help="also time generate with these writer-thread counts, comma-separated (e.g. 1,2,4)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        for res in ([None] if args.run else [(128, 128), (128, 80), (256, 160)]):
            if args.run:
                pipe = GanPipeline.from_pretrained(args.run).to(device)
            else:
                cfg = ModelConfig.for_family("fastgan", resolution=res, condition=("density", "finding", "view"))
                torch.manual_seed(0)
                pipe = GanPipeline(build_generator(cfg), model_config=cfg.to_dict()).to(device)
            h, w = pipe.resolution
            n = args.n * (8 if device == "cuda" else 1)
            passes = bench_pipeline(pipe, n, args.batch, passes=args.passes)
            rows.append({
                "device": device if device == "cpu" else torch.cuda.get_device_name(0),
                "resolution": f"{h}x{w}",
                "weights": args.run or "random",
                "batch": args.batch,
                "n": n,
                "pipeline_img_s": round(max(passes), 1),
                "pipeline_passes_img_s": [round(r, 1) for r in passes],
                "pipeline_1_worker_img_s": round(max(bench_pipeline(pipe, n, args.batch, workers=1,
                                                                    passes=args.passes)), 1),
                "network_img_s": round(max(bench_pipeline(pipe, n, args.batch, remove_background=False,
                                                          passes=args.passes)), 1),
                "generate_img_s": round(bench_generate(pipe, n, args.batch, device), 1),
            })
            r = rows[-1]
            print(f"{r['device']:<28} {r['resolution']:>8}  batch {r['batch']:>3}  "
                  f"pipeline {r['pipeline_img_s']:>7.1f} img/s (1 worker {r['pipeline_1_worker_img_s']:>6.1f})  "
                  f"network only {r['network_img_s']:>7.1f} img/s  "
                  f"generate (PNG16) {r['generate_img_s']:>8.1f} img/s", flush=True)
            if pipe.shape_reference is not None:
                from mammosynth.sampling import ShapeGateConfig

                gated = bench_pipeline(pipe, n, args.batch, passes=args.passes, shape_gate=ShapeGateConfig())
                shape = pipe(n=n, seed=0, batch_size=args.batch, shape_gate=ShapeGateConfig()).shape
                r["shape_gate_img_s"] = round(max(gated), 1)
                r["shape_gate_redrawn"] = round(sum(x["attempt"] > 0 for x in shape) / n, 4)
                print(f"{'':<28} with the shape gate {r['shape_gate_img_s']:.1f} img/s "
                      f"({100 * r['shape_gate_redrawn']:.1f} % redrawn)", flush=True)
            if args.writers:
                r["generate_by_writers_img_s"] = {int(k): round(bench_generate(pipe, n, args.batch, device, int(k)), 1)
                                                  for k in args.writers.split(",")}
                print(f"{'':<28} generate by writer threads: "
                      + " / ".join(f"{k}: {v:.1f}" for k, v in r["generate_by_writers_img_s"].items()), flush=True)
            if args.passes > 2:
                print(f"{'':<28} pipeline passes: {' / '.join(f'{x:.1f}' for x in r['pipeline_passes_img_s'])}",
                      flush=True)
    meta = {"python": sys.version.split()[0], "torch": torch.__version__, "threads": torch.get_num_threads(),
            "machine": platform.machine(), "processor": platform.processor()}
    print(f"torch {meta['torch']}, {meta['threads']} CPU threads")
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
