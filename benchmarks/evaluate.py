"""Benchmark of ``mammosynth evaluate``: the whole protocol, cold and with cached real features.

1. A "real" set (phantom data from mammosynth.phantom, N images, or ``--real PREPARED``,
   e.g. prepared mini-MIAS films) and two independent phantom "synthetic" sets of
   ``--n-synthetic`` images (256x160 by default). Evaluate real vs synthetic #1 with an
   empty feature cache (cold), then real vs synthetic #2 with the same cache (the cost a
   user pays per new synthetic set: real features and classifier inputs cached).
2. When ../shared/data/mias-dev (mini-MIAS, development half) is present and no ``--real``
   is given: ingest it at the same size and evaluate it against a phantom set of the same
   count (cold, then cached).

Every run includes every registered check (the Realism step too unless ``--no-realism``)
and prints the per-check timings from metrics.json (``timings_s``), the image metrics'
own stages, CPU seconds (this process and its workers) next to the wall clock, and the
load average: on a shared machine the wall clock of a niced run is not the cost.
Data generation and ingestion are timed separately and not counted. Target: <= 5 minutes
on 2 cores for 1000 synthetic images against cached real features.

Usage: python benchmarks/evaluate.py [--n 1000] [--n-synthetic N] [--real PREPARED] [--size 256 160]
       [--seeds 3] [--threads 2] [--no-frd] [--no-realism] [--detect-folds K] [--keep DIR]
       [--mias PATH] [--no-mias] [--skip-cold] [--syn-seed S]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")

DEFAULT_MIAS = Path(__file__).resolve().parents[2] / "shared" / "data" / "mias-dev"


def _phantoms(root: Path, n: int, size: tuple[int, int], seed: int) -> Path:
    from mammosynth.phantom import PhantomConfig, make_phantom_dataset

    return make_phantom_dataset(root, n, PhantomConfig(size=size, seed=seed))


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its finished children (FRD workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _run(label: str, real, synthetic, out: Path, config) -> dict:
    from mammosynth.report import evaluate

    t, cpu, load = time.perf_counter(), _cpu_s(), os.getloadavg()[0]
    m = evaluate(real, synthetic, out, config)
    dt, dcpu = time.perf_counter() - t, _cpu_s() - cpu
    ts = m["timings_s"]
    im = (m["image_metrics"] or {}).get("timings_s") or {}
    n = m["datasets"]
    print(f"{label}: {dt:.1f} s total ({dcpu:.0f} CPU s; load average {load:.1f} -> {os.getloadavg()[0]:.1f}); "
          f"{n['real']['n_images']} real vs {n['synthetic']['n_images']} synthetic, "
          f"{m['images']['decoded']} images decoded ({m['images']['decoding_s']:.1f} s)")
    print("  per check (s): " + ", ".join(f"{k}={v:.1f}" for k, v in ts.items() if k != "total_before_report"))
    if im:
        print("  image metrics (s): " + ", ".join(f"{k}={v:.1f}" for k, v in im.items()))
    r = m.get("realism") or {}
    det = r.get("detectability") or {}
    syn, floor = det.get("synthetic_vs_real") or {}, det.get("real_vs_real") or {}
    if r.get("available") and syn.get("auc") is not None:
        print(f"  realism: detectability AUC {syn['auc']:.3f} [{syn['ci_low']:.3f}, {syn['ci_high']:.3f}] vs floor "
              f"{floor.get('auc', float('nan')):.3f} (texture view {(syn.get('views') or {}).get('texture')}, layout "
              f"view {(syn.get('views') or {}).get('layout')}); {r.get('seconds', float('nan')):.1f} s")
    else:
        print(f"  realism not computed: {r.get('reason')}")
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
    ap.add_argument("--n", type=int, default=1000, help="images per phantom real set (default %(default)s)")
    ap.add_argument("--n-synthetic", type=int, default=None, help="images per synthetic set (default: --n)")
    ap.add_argument("--real", type=Path, default=None, help="a prepared real set instead of phantom data")
    ap.add_argument("--size", type=int, nargs=2, default=(256, 160), metavar=("H", "W"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s)")
    ap.add_argument("--no-frd", action="store_true", help="skip the Fréchet Radiomics Distance")
    ap.add_argument("--no-realism", action="store_true", help="skip the Realism step")
    ap.add_argument("--detect-folds", type=int, default=None, help="realism detectability folds")
    ap.add_argument("--skip-cold", action="store_true",
                    help="no cold run: the cache must already hold the real set's features (--keep DIR)")
    ap.add_argument("--keep", type=Path, default=None, help="directory for data, cache and reports (kept)")
    ap.add_argument("--syn-seed", type=int, default=2,
                    help="phantom seed of the synthetic set of the cached run; with --keep and --skip-cold, a seed "
                         "not used before gives a set whose own features are not cached (default %(default)s)")
    ap.add_argument("--mias", type=Path, default=DEFAULT_MIAS, help="mini-MIAS folder (default %(default)s)")
    ap.add_argument("--no-mias", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from mammosynth.metrics.fidelity import ImageMetricsConfig
    from mammosynth.report import EvaluateConfig

    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="mammosynth-bench-eval-")
    base = args.keep or Path(tmp.name)
    size = tuple(args.size)
    n_syn = args.n_synthetic or args.n
    print(f"mammosynth evaluate benchmark: real {args.real or f'{args.n} phantom'}, synthetic {n_syn} phantom, "
          f"size {size[0]}x{size[1]}, seeds {args.seeds}, torch threads {args.threads}, cores {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    t = time.perf_counter()
    real = args.real if args.real is not None else _phantoms(base / "real", args.n, size, 0)
    syn1 = _phantoms(base / "syn1", n_syn, size, 1) if not args.skip_cold else None
    syn2 = _phantoms(base / f"syn{args.syn_seed}", n_syn, size, args.syn_seed)
    print(f"data: phantom sets ready in {time.perf_counter() - t:.1f} s (not counted)")

    def config(cache: Path) -> EvaluateConfig:
        from mammosynth.report.steps.realism import realism_config

        rc = realism_config(detect_folds=args.detect_folds) if args.detect_folds and not args.no_realism else None
        return EvaluateConfig(seeds=args.seeds, cache_dir=str(cache), threads=args.threads,
                              image_config=ImageMetricsConfig(size=size, frd=not args.no_frd),
                              realism=not args.no_realism, realism_config=rc)

    torch.set_num_threads(args.threads)
    what = "phantom" if args.real is None else args.real.name
    if not args.skip_cold:
        _run(f"{what} cold (new cache)", real, syn1, base / "report_cold", config(base / "cache"))
    _run(f"{what} cached real features (new synthetic set of {n_syn})", real, syn2, base / "report_cached",
         config(base / "cache"))

    if args.real is None and not args.no_mias and (args.mias / "Info.txt").is_file():
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
