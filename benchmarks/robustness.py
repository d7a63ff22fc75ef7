"""Ingest the deterministic bad-input corpus (``tests/data/bad_corpus.py``) and print, per
category, how many inputs were rejected / ingested and how many tracebacks escaped; then
whether anything outside the source was opened or an identifier reached the output.

    python benchmarks/robustness.py [--workers 1] [--keep DIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))

from bad_corpus import build_corpus, run_corpus  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=1, help="ingest worker processes (1: the open check sees every read)")
    ap.add_argument("--keep", default=None, help="write the corpus and outputs here (default: a temporary folder)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        t0 = time.perf_counter()
        corpus = build_corpus(root / "corpus")
        t1 = time.perf_counter()
        run = run_corpus(corpus, root / "out", workers=args.workers)
        t2 = time.perf_counter()
        counts = run.counts(corpus.cases)
        print(f"{'category':<20}{'inputs':>8}{'rejected':>10}{'ingested':>10}{'tracebacks':>12}")
        total = {"inputs": 0, "rejected": 0, "ingested": 0, "tracebacks": 0}
        for cat, n in sorted(counts.items()):
            print(f"{cat:<20}{n['inputs']:>8}{n['rejected']:>10}{n['ingested']:>10}{n['tracebacks']:>12}")
            for k in total:
                total[k] += n[k]
        print(f"{'total':<20}{total['inputs']:>8}{total['rejected']:>10}{total['ingested']:>10}{total['tracebacks']:>12}")
        print(f"outcome as expected: {len(corpus.cases) - len(run.mismatches)}/{len(corpus.cases)}; "
              f"opened outside the source: {len(run.opened_outside)}; identifiers in the output: {len(run.leaked)}; "
              f"escaped exceptions: {len(run.tracebacks)}")
        for m in run.mismatches:
            print("  MISMATCH", m)
        print(f"build {t1 - t0:.1f} s, ingest {t2 - t1:.1f} s")
    return 0 if not (run.mismatches or run.tracebacks or run.opened_outside or run.leaked) else 1


if __name__ == "__main__":
    raise SystemExit(main())
