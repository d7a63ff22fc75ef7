"""Size and cost of the default model (FastGAN-lite) and the DCGAN baseline per resolution:
parameters, forward GFLOP per image of G (inference fast path and training graph) and D,
training GFLOP per real image (one D step on a real and a fake, one G step, backward = 2x
forward), and, on this machine's CPU, measured training img/s at the smaller sizes.

What it is for: planning. A training step costs about 3x the forward FLOPs of G and D per
image; dividing a GPU's sustained throughput by the per-image figure bounds img/s from
above (small convolutions rarely reach more than 20-40 % of a GPU's peak). The figures
come from :func:`mammosynth.models.cost.model_cost` (``torch.utils.flop_counter`` on the
real modules on the meta device; multiply-add = 2 FLOP), as ``mammosynth train --dry-run``'s.
Usage::

    .venv/bin/python benchmarks/model_size.py [--measure-cpu 128x80,256x160] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import platform


def measure_train(prepared: str, family: str, res: tuple[int, int], seconds: float) -> float:
    """CPU training img/s of ``family`` at ``res`` on a tiny phantom set (after warm-up)."""
    import tempfile

    from mammosynth.models import ModelConfig
    from mammosynth.training import TrainConfig, train

    model = ModelConfig.for_family(family, resolution=res, condition=("density", "finding", "view"))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(model=model, minutes=seconds / 60, kimg=None, snapshot_minutes=60, quality_n=8)
        run = train(prepared, tmp, cfg)
        rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if line.strip()]
        rates = [r["img_s"] for r in rows if r.get("img_s")]
        return max(rates) if rates else float("nan")


def main(argv: list[str] | None = None) -> int:
    import os

    os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")
    import torch

    from mammosynth.models import ModelConfig
    from mammosynth.models.cost import model_cost
    from mammosynth.training import TrainConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measure-cpu", default="", metavar="HxW,...",
                    help="also measure CPU training img/s of the default family at these sizes (about 1 min each)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    rows = []
    for family in ("fastgan", "dcgan"):
        for res in ((128, 80), (128, 128), (256, 160), (512, 320), (1024, 640)):
            m = ModelConfig.for_family(family, resolution=res, condition=("density", "finding", "view"))
            c = model_cost(m, TrainConfig(model=m).resolved().d_batch)  # the family's training recipe
            g_eval, d_fwd, train = c.g_gflop_inference, c.d_gflop, c.train_gflop
            rows.append({"family": family, "resolution": list(res), "G_params_M": c.g_params / 1e6,
                         "D_params_M": c.d_params / 1e6, "G_gflop_inference": g_eval,
                         "G_gflop_train_graph": c.g_gflop_train_graph, "D_gflop": d_fwd, "train_gflop_per_image": train})
            r = rows[-1]
            print(f"{family:8s} {res[0]:5d}x{res[1]:<4d} G {r['G_params_M']:6.2f} M params  D {r['D_params_M']:6.2f} M  "
                  f"G fwd {g_eval:7.3f} GFLOP/img (inference)  D fwd {d_fwd:7.3f}  train ~{train:7.2f} GFLOP/img")
    measured = {}
    sizes = [s for s in args.measure_cpu.split(",") if s]
    if sizes:
        import tempfile

        from mammosynth.phantom.dataset import PhantomConfig, make_phantom_dataset

        with tempfile.TemporaryDirectory() as tmp:
            prepared = make_phantom_dataset(f"{tmp}/phantom", 64, PhantomConfig(size=(256, 160)))
            for s in sizes:
                h, w = (int(v) for v in s.lower().split("x"))
                rate = measure_train(str(prepared), "fastgan", (h, w), seconds=45)
                measured[s] = rate
                flop = next(r["train_gflop_per_image"] for r in rows if r["family"] == "fastgan"
                            and r["resolution"] == [h, w])
                print(f"cpu training fastgan {s}: {rate:.1f} img/s ({rate * flop:.1f} GFLOP/s sustained)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {platform.processor() or platform.machine()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "cpu_train_img_s": measured}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
