"""Benchmark of the procedural phantom: speed, density recovery, likeness to real films.

Prints images/s at 256x160 and 1024x640 (2 worker processes), the percent-dense-area
separation of ACR A from D, and - when ../shared/data/mias-dev exists - the first four
intensity moments over breast pixels of phantom MLO images and mini-MIAS films, with
histograms and example images side by side in ``out/bench-phantom/``. Also writes a
contact sheet of phantom images with their masks and boxes there.

    .venv/bin/python benchmarks/phantom.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")

REPO = Path(__file__).resolve().parents[1]
MIAS = REPO.parent / "shared" / "data" / "mias-dev"
OUT = REPO / "out" / "bench-phantom"

from mammosynth.phantom import PhantomConfig, make_phantom_dataset, percent_dense_area, render_phantom  # noqa: E402


def throughput(size: tuple[int, int], n: int, workers: int = 2) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="mammosynth-bench-phantom-"))
    try:
        t0 = time.perf_counter()
        make_phantom_dataset(tmp / "ph", n, PhantomConfig(size=size), workers=workers)
        return n / (time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def density_separation(n_women: int) -> None:
    size = (256, 160)
    pda: dict[str, list[float]] = {}
    for code in "ABCD":
        cfg = PhantomConfig(size=size, seed=100, density=f"{code}:1", findings="")
        pda[code] = [percent_dense_area(render_phantom(i, cfg)[0]) for i in range(0, 4 * n_women, 2)]
        v = np.array(pda[code])
        print(f"  density {code}: percent dense area {v.mean():.3f} +- {v.std():.3f} "
              f"(min {v.min():.3f}, max {v.max():.3f}, {len(v)} images)")
    a, d = np.array(pda["A"]), np.array(pda["D"])
    cut = 0.5 * (np.median(a) + np.median(d))
    correct = ((a < cut).sum() + (d >= cut).sum()) / (len(a) + len(d))
    print(f"  A vs D separated by percent_dense_area at cut {cut:.3f}: {100 * correct:.1f} % of "
          f"{len(a) + len(d)} images")
    order = "ABCD"
    adj = []
    for x, y in zip(order, order[1:]):
        u, w = np.array(pda[x]), np.array(pda[y])
        c = 0.5 * (np.median(u) + np.median(w))
        adj.append(f"{x}/{y} {100 * ((u < c).sum() + (w >= c).sum()) / (len(u) + len(w)):.0f} %")
    print("  neighbouring classes separated: " + ", ".join(adj))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    mask = ndimage.binary_opening(mask, iterations=2)
    lab, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = ndimage.sum(mask, lab, range(1, n + 1))
    return lab == (1 + int(np.argmax(sizes)))


def _moments(v: np.ndarray) -> tuple[float, float, float, float]:
    from scipy import stats

    return float(v.mean()), float(v.std()), float(stats.skew(v)), float(stats.kurtosis(v))


def compare_with_mias(n_phantom: int) -> None:
    from PIL import Image

    files = sorted(MIAS.glob("*.pgm"))
    bg = {}
    for line in (MIAS / "Info.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith("mdb"):
            bg[parts[0]] = parts[1]
    counts = Counter(bg.get(f.stem, "G") for f in files)
    total = sum(counts.values())
    mix = {"A": counts["F"] / total, "B": counts["G"] / total, "C": counts["D"] / total}
    density = ",".join(f"{k}:{v:.6f}" for k, v in mix.items())
    density = density.rsplit(":", 1)[0] + f":{1 - mix['A'] - mix['B']:.6f}"
    level = 0.12  # breast = brighter than 12 % of full scale, largest component

    real, real_imgs = [], []
    for f in files:
        a = np.asarray(Image.open(f).resize((256, 256), Image.Resampling.BILINEAR)).astype(np.float32) / 255
        real.append(a[_largest_component(a > level)])
        real_imgs.append(a)
    cfg = PhantomConfig(size=(320, 256), seed=7, views=("MLO",), density=density)
    ph, ph_imgs = [], []
    for i in range(n_phantom):
        img = render_phantom(i, cfg)[0].astype(np.float32) / 65535
        ph.append(img[_largest_component(img > level)])
        ph_imgs.append(img)
    rv, pv = np.concatenate(real), np.concatenate(ph)
    print(f"  MIAS dev films: {len(files)} (F/G/D = {counts['F']}/{counts['G']}/{counts['D']}); phantom MLO images "
          f"{n_phantom} with density {density}")
    print("  intensity moments over breast pixels (grey level 0-1):")
    print("                 mean      sd   skewness  kurtosis(excess)")
    for name, v in (("mini-MIAS", rv), ("phantom", pv)):
        m = _moments(v)
        print(f"    {name:10s} {m[0]:7.3f} {m[1]:7.3f} {m[2]:10.3f} {m[3]:10.3f}")
    per_r = np.array([_moments(v) for v in real])
    per_p = np.array([_moments(v) for v in ph])
    print("  per-image moments, mean (sd) over images:")
    for name, arr in (("mini-MIAS", per_r), ("phantom", per_p)):
        print(f"    {name:10s} " + "  ".join(f"{arr[:, k].mean():6.3f} ({arr[:, k].std():.3f})" for k in range(4)))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    bins = np.linspace(level, 1.0, 60)
    axes[0].hist(rv, bins=bins, density=True, alpha=0.6, label=f"mini-MIAS ({len(files)} films)")
    axes[0].hist(pv, bins=bins, density=True, alpha=0.6, label=f"phantom ({n_phantom} MLO)")
    axes[0].set_xlabel("grey level (breast pixels)")
    axes[0].set_ylabel("density")
    axes[0].legend()
    axes[0].set_title("intensity histograms")
    for k, (name, arr) in enumerate((("mini-MIAS", per_r), ("phantom", per_p))):
        axes[1].scatter(arr[:, 0], arr[:, 1], s=10, alpha=0.6, label=name)
    axes[1].set_xlabel("per-image mean")
    axes[1].set_ylabel("per-image sd")
    axes[1].legend()
    axes[1].set_title("per-image mean vs sd")
    fig.tight_layout()
    fig.savefig(OUT / "phantom_vs_mias_hist.png", dpi=100)
    plt.close(fig)

    def strip(imgs, w):
        tiles = [np.asarray(Image.fromarray((x * 255).astype(np.uint8)).resize((w, 256))) for x in imgs[:6]]
        return np.concatenate(tiles, 1)

    pick_r = [real_imgs[i] for i in np.linspace(0, len(real_imgs) - 1, 6).astype(int)]
    top, bottom = strip(pick_r, 256), strip(ph_imgs, 205)
    canvas = np.zeros((512 + 4, max(top.shape[1], bottom.shape[1])), np.uint8)
    canvas[:256, :top.shape[1]] = top
    canvas[260:, :bottom.shape[1]] = bottom
    Image.fromarray(canvas).save(OUT / "phantom_vs_mias_images.png")
    print(f"  wrote {OUT / 'phantom_vs_mias_hist.png'} and {OUT / 'phantom_vs_mias_images.png'}")


def sheet() -> None:
    from mammosynth.data.contact_sheet import contact_sheet

    tmp = Path(tempfile.mkdtemp(prefix="mammosynth-bench-phantom-"))
    try:
        cfg = PhantomConfig(size=(512, 320), seed=3, findings="mass:0.4,calcification:0.3,distortion:0.2")
        ds = make_phantom_dataset(tmp / "ph", 16, cfg, workers=2)
        out = contact_sheet(ds, OUT / "contact_sheet.png", n=16, tile_height=320)
        print(f"  wrote {out}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller samples")
    args = ap.parse_args(argv)
    q = args.quick
    print(f"phantom benchmark ({os.cpu_count()} CPUs visible, 2 worker processes)")
    print(f"  load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())} (the machine is shared)")
    for size, n in (((256, 160), 60 if q else 240), ((1024, 640), 8 if q else 24)):
        cfg = PhantomConfig(size=size)
        render_phantom(0, cfg)
        k = 20 if size[0] <= 256 else 4
        t0 = time.process_time()
        for i in range(k):
            render_phantom(i, cfg)
        cpu = (time.process_time() - t0) / k
        rate = throughput(size, n)
        print(f"  {size[0]}x{size[1]}: {rate:6.1f} images/s written (n={n}, 2 workers, wall clock); "
              f"rendering costs {1000 * cpu:.0f} CPU-ms per image ({2 / cpu:.0f} images/s on 2 idle cores)")
    print("density recovery (percent_dense_area, 256x160, no findings):")
    density_separation(10 if q else 50)
    if MIAS.is_dir():
        print("likeness to mini-MIAS:")
        compare_with_mias(40 if q else 160)
    else:
        print(f"likeness to mini-MIAS: skipped ({MIAS} not found)")
    print("contact sheet:")
    sheet()
    return 0


if __name__ == "__main__":
    sys.exit(main())
