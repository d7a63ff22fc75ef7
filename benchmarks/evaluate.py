"""Benchmark of ``mammosynth evaluate``: the whole protocol, cold and with cached real features.

1. Phantom data (mammosynth.phantom): a "real" set of N images and two independent
   "synthetic" sets of N images (256x160 by default). Evaluate real vs synthetic #1 with an
   empty feature cache (cold), then real vs synthetic #2 with the same cache (the cost a
   user pays per new synthetic set: real features and classifier inputs cached).
2. When ../shared/data/mias-dev (mini-MIAS, development half) is present: ingest it at the
   same size and evaluate it against a phantom set of the same count (cold, then cached).

Data generation and ingestion are timed separately and not counted. Target: <= 5 minutes
cached for 1000 + 1000 images at 256x160 on 2 cores.

Usage: python benchmarks/evaluate.py [--n 1000] [--size 256 160] [--seeds 3] [--threads 2]
       [--no-frd] [--keep DIR] [--mias PATH] [--no-mias]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")

DEFAULT_MIAS = Path(__file__).resolve().parents[2] / "shared" / "data" / "mias-dev"


def _phantoms(root: Path, n: int, size: tuple[int, int], seed: int) -> Path:
    from mammosynth.phantom import PhantomConfig, make_phantom_dataset

    return make_phantom_dataset(root, n, PhantomConfig(size=size, seed=seed))


def _run(label: str, real, synthetic, out: Path, config) -> dict:
    from mammosynth.report import evaluate

    t = time.perf_counter()
    m = evaluate(real, synthetic, out, config)
    dt = time.perf_counter() - t
    ts = m["timings_s"]
    im = (m["image_metrics"] or {}).get("timings_s") or {}
    print(f"{label}: {dt:.1f} s total")
    print("  stages (s): " + ", ".join(f"{k}={v:.1f}" for k, v in ts.items() if k != "total_before_report"))
    if im:
        print("  image metrics (s): " + ", ".join(f"{k}={v:.1f}" for k, v in im.items()))
    u = m["utility"]
    if u.get("available"):
        r = u["regimes"]
        auc = " | ".join(f"{k} {v['value']:.3f}" if v.get("available") else f"{k} n/a" for k, v in r.items())
        p = u["paired_b_vs_a"]
        print(f"  task {u['task']} (test {u['n_test']['positive']}+/{u['n_test']['negative']}-): AUC {auc}; "
              f"DeLong p(b vs a) = {p['p_value'] if p.get('p_value') is None else round(p['p_value'], 4)}")
    else:
        print(f"  utility not computed: {u.get('reason')}")
    print(f"  verdict {m['verdict']['overall']}: " + "; ".join(f"{s['step'].split(' ')[0]} {s['status']}"
                                                            for s in m["verdict"]["steps"]))
    return m


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="images per set (default %(default)s)")
    ap.add_argument("--size", type=int, nargs=2, default=(256, 160), metavar=("H", "W"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s)")
    ap.add_argument("--no-frd", action="store_true", help="skip the Fréchet Radiomics Distance")
    ap.add_argument("--keep", type=Path, default=None, help="directory for data, cache and reports (kept)")
    ap.add_argument("--mias", type=Path, default=DEFAULT_MIAS, help="mini-MIAS folder (default %(default)s)")
    ap.add_argument("--no-mias", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from mammosynth.metrics.fidelity import ImageMetricsConfig
    from mammosynth.report import EvaluateConfig

    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="mammosynth-bench-eval-")
    base = args.keep or Path(tmp.name)
    size = tuple(args.size)
    print(f"mammosynth evaluate benchmark: n={args.n}, size {size[0]}x{size[1]}, seeds {args.seeds}, "
          f"torch threads {args.threads}, cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    t = time.perf_counter()
    real = _phantoms(base / "real", args.n, size, 0)
    syn1 = _phantoms(base / "syn1", args.n, size, 1)
    syn2 = _phantoms(base / "syn2", args.n, size, 2)
    print(f"data: 3 phantom sets x {args.n} images ready in {time.perf_counter() - t:.1f} s (not counted)")

    def config(cache: Path) -> EvaluateConfig:
        return EvaluateConfig(seeds=args.seeds, cache_dir=str(cache), threads=args.threads,
                              image_config=ImageMetricsConfig(size=size, frd=not args.no_frd))

    torch.set_num_threads(args.threads)
    _run(f"phantom cold ({args.n} vs {args.n})", real, syn1, base / "report_cold", config(base / "cache"))
    _run(f"phantom cached real features ({args.n} vs {args.n}, new synthetic set)", real, syn2,
         base / "report_cached", config(base / "cache"))

    if not args.no_mias and (args.mias / "Info.txt").is_file():
        from mammosynth.data.ingest import IngestConfig, ingest
        from mammosynth.data.prepared import PreparedDataset
        from mammosynth.data.preprocess import PreprocessConfig

        t = time.perf_counter()
        mias = base / "mias"
        res = ingest(args.mias, out=mias, config=IngestConfig(preprocess=PreprocessConfig(size=size)))
        n_mias = len(PreparedDataset(mias))
        print(f"mias-dev: {n_mias} images ingested in {time.perf_counter() - t:.1f} s ({len(res.rejects)} rejects; "
              "not counted); splits " + str(PreparedDataset(mias).counts()["split"]))
        ph1 = _phantoms(base / "mias_syn1", n_mias, size, 11)
        ph2 = _phantoms(base / "mias_syn2", n_mias, size, 12)
        _run(f"mias-dev cold ({n_mias} real vs {n_mias} phantom)", mias, ph1, base / "report_mias_cold",
             config(base / "cache_mias"))
        _run(f"mias-dev cached ({n_mias} real vs {n_mias} new phantom)", mias, ph2, base / "report_mias_cached",
             config(base / "cache_mias"))
    elif not args.no_mias:
        print(f"mias-dev: {args.mias} not found, skipped")
    if tmp is not None:
        tmp.cleanup()
    else:
        print(f"reports kept under {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
