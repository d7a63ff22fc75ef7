"""Ingest throughput: 1024x1024 films -> prepared 256x160, films per second on 2 workers.

Uses ../shared/data/mias-dev (relative to the repository) when present, else a synthetic
MIAS-style stand-in of 64 films. Target: >= 20 films/s on 2 cores.

    .venv/bin/python benchmarks/ingest.py [--source DIR] [--workers 2] [--size 256 160]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")

from mammosynth.data.adapters.mias import write_mias_like  # noqa: E402
from mammosynth.data.ingest import IngestConfig, ingest  # noqa: E402
from mammosynth.data.preprocess import PreprocessConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MIAS_DEV = REPO / ".." / "shared" / "data" / "mias-dev"
TARGET = 20.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", nargs=2, type=int, default=[256, 160])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs; the best is reported")
    ap.add_argument("--synthetic", action="store_true", help="use the synthetic stand-in even if mias-dev exists")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mammosynth-bench-ingest-"))
    try:
        source = args.source or (MIAS_DEV if (MIAS_DEV / "Info.txt").is_file() and not args.synthetic else None)
        label = str(source) if source else "synthetic stand-in (64 films, 1024x1024)"
        if source is None:
            source = write_mias_like(tmp / "standin", n=64, size=1024)
        cfg = IngestConfig(workers=args.workers, preprocess=PreprocessConfig(size=tuple(args.size)))
        best = None
        for k in range(args.repeats):
            out = tmp / f"out{k}"
            t0 = time.perf_counter()
            res = ingest(source, layout="mias", out=out, config=cfg)
            dt = time.perf_counter() - t0
            rate = res.added / dt if dt > 0 else 0.0
            print(f"run {k + 1}: {res.added} films in {dt:.2f} s -> {rate:.1f} films/s "
                  f"({res.rejected} rejected)")
            best = rate if best is None else max(best, rate)
        print(f"ingest benchmark: source={label}")
        print(f"ingest benchmark: 1024x1024 -> {args.size[0]}x{args.size[1]}, workers={args.workers}, "
              f"cores available={len(os.sched_getaffinity(0))}, load average={os.getloadavg()[0]:.1f}")
        verdict = "meets" if best >= TARGET else "BELOW"
        print(f"ingest throughput: {best:.1f} films/s (best of {args.repeats}; target >= {TARGET:.0f}: {verdict})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
