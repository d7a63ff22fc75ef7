"""Benchmark of the image metrics: feature extraction speed and a full evaluation.

Builds two sets of synthetic breast-like textured images (256x160 by default), then times

1. mammo-texture extraction of the real set (images/s, single process);
2. FRD radiomics extraction of the real set (images/s, all cores) - this also warms the cache;
3. a full ``compute_image_metrics(real, synthetic, train=real)`` with the real features
   cached: the evaluation cost a user pays per new synthetic set.

Usage: python benchmarks/metrics.py [--n 1000] [--size 256 160] [--no-frd] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")


def textured_images(n: int, size: tuple[int, int], seed: int):
    """Breast-shaped images with multi-scale Gaussian-filtered texture (as uint16)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(n):
        a = rng.uniform(0.75, 1.0)
        inside = ((yy - h / 2) / (a * h / 2)) ** 2 + (xx / (a * w)) ** 2 < 1
        tex = sum(ndimage.gaussian_filter(rng.standard_normal((h, w)), s) * s for s in (1, 3, 8))
        img = np.where(inside, rng.uniform(0.3, 0.6) + 0.08 * tex, 0.0)
        yield (np.clip(img, 0, 1) * 65535).astype(np.uint16)


def write_set(root: Path, n: int, size: tuple[int, int], seed: int, kind: str):
    from mammosynth.data.prepared import DatasetWriter, PreparedDataset
    from mammosynth.data.schema import ImageRecord

    if not (root / "dataset.json").is_file():
        with DatasetWriter(root, kind=kind, source={"name": "bench"}) as wr:
            for i, img in enumerate(textured_images(n, size, seed)):
                rec = ImageRecord(image_id=f"b{i:05d}", patient_id=f"p{i}", laterality="LR"[i % 2],
                                  view=("CC", "MLO")[i % 2], density="ABCD"[i % 4], synthetic=kind == "synthetic")
                wr.add(rec, img)
    return PreparedDataset(root)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--size", type=int, nargs=2, default=(256, 160))
    ap.add_argument("--no-frd", action="store_true")
    ap.add_argument("--keep", type=Path, default=None, help="directory for data and cache (kept)")
    args = ap.parse_args(argv)

    from mammosynth.metrics.cache import FeatureCache
    from mammosynth.metrics.features import FeatureSettings, extract_set
    from mammosynth.metrics.fidelity import ImageMetricsConfig, compute_image_metrics

    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="mammosynth-bench-")
    base = args.keep or Path(tmp.name)
    size = tuple(args.size)
    t = time.perf_counter()
    real = write_set(base / "real", args.n, size, 0, "real")
    syn = write_set(base / "synthetic", args.n, size, 1, "synthetic")
    print(f"data: 2 x {args.n} images {size[0]}x{size[1]} ready in {time.perf_counter() - t:.1f} s")

    cache_dir = base / "cache"
    cfg = ImageMetricsConfig(size=size, cache_dir=str(cache_dir), frd=not args.no_frd)
    t = time.perf_counter()
    extract_set(real, FeatureSettings(size=size), cfg.max_images, cfg.seed, FeatureCache(cache_dir))
    dt = time.perf_counter() - t
    print(f"mammo-texture extraction: {args.n / dt:.1f} img/s ({1000 * dt / args.n:.1f} s per 1000 images, "
          "incl. PNG decoding, 1 process)")
    if not args.no_frd:
        from mammosynth.metrics.frd import set_radiomics
        from mammosynth.utils import num_workers

        fmax = cfg.frd_max_images if cfg.frd_max_images is not None else cfg.max_images
        n_frd = min(args.n, fmax or args.n)
        t = time.perf_counter()
        set_radiomics(real, size, fmax, cfg.seed, FeatureCache(cache_dir), num_workers())
        dt = time.perf_counter() - t
        print(f"FRD radiomics extraction ({n_frd} images): {n_frd / dt:.1f} img/s "
              f"({1000 * dt / n_frd:.1f} s per 1000 images, {num_workers()} processes)")
    t = time.perf_counter()
    res = compute_image_metrics(real, syn, train=real, config=cfg)
    dt = time.perf_counter() - t
    print(f"compute_image_metrics {args.n} vs {args.n} (real cached): {dt:.1f} s")
    print("  stages (s):", ", ".join(f"{k}={v:.1f}" for k, v in res["timings_s"].items()))
    f = res["fidelity"]
    print("  FRD", f["frd"]["value"], "| FD texture", round(f["fd_texture"]["value"], 3),
          "| MS-SSIM real/syn", round(res["diversity"]["ms_ssim_real"], 3),
          round(res["diversity"]["ms_ssim_synthetic"], 3), "| flagged", res["memorization"]["n_flagged"])
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
