"""Watermark limits at small sizes: the share of marks found per image size and attack.

    .venv/bin/python benchmarks/watermark.py [--n 20] [--sizes 64x40,128x80,256x160]

Marked images are procedural phantoms (mammosynth.phantom, 16 bit) marked as generate marks
them; with ``--background removed`` (the default) everything outside the breast is first
set to exactly 0, as ``generate`` does before it marks, so that the mark is judged on the
images it is embedded in (``raw``: the phantom as rendered). Attacks: JPEG (8-bit, PIL) at
quality 75 and 50; 0.5x downscale (anti-aliased bilinear), kept small or scaled back up;
and both together (downscale, then JPEG). "found" = the blind detector (with its crop search)
verified the exact 64-bit payload. Figures for the README's watermark limits; no test times
this.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time

import numpy as np

os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")

from mammosynth.phantom import PhantomConfig, render_phantom  # noqa: E402
from mammosynth.provenance.watermark import (MIN_SIDE, WatermarkConfig, bit_accuracy,  # noqa: E402
                                             detect_watermark, embed_watermark, make_payload, psnr)


def to8(img: np.ndarray) -> np.ndarray:
    return ((img.astype(np.uint32) + 128) // 257).astype(np.uint8) if img.dtype == np.uint16 else img


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(to8(img)).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf))


def half(img: np.ndarray, back: bool) -> np.ndarray:
    from skimage.transform import resize

    h, w = img.shape
    full = 65535.0 if img.dtype == np.uint16 else 255.0
    small = resize(img / full, (h // 2, w // 2), order=1, anti_aliasing=True)
    out = resize(small, (h, w), order=1) if back else small
    return np.rint(np.clip(out, 0, 1) * full).astype(img.dtype)


ATTACKS = {
    "none": lambda a: a,
    "jpeg q75": lambda a: jpeg(a, 75),
    "jpeg q50": lambda a: jpeg(a, 50),
    "resize 0.5x (kept small)": lambda a: half(a, back=False),
    "resize 0.5x and back": lambda a: half(a, back=True),
    "0.5x and back + jpeg q75": lambda a: jpeg(half(a, back=True), 75),
    "0.5x and back + jpeg q50": lambda a: jpeg(half(a, back=True), 50),
    "0.5x (small) + jpeg q50": lambda a: jpeg(half(a, back=False), 50),
}


def remove_background(img: np.ndarray) -> np.ndarray:
    """Outside the breast exactly 0, as ``GanPipeline`` does before ``generate`` marks."""
    from mammosynth.data.preprocess import zero_background

    unit = img[None].astype(np.float32) / np.float32(65535.0)
    zero_background(unit)
    return np.rint(unit[0] * np.float32(65535.0)).astype(np.uint16)


def run(n: int, size: tuple[int, int], cfg: WatermarkConfig, background: str) -> None:
    rows: dict[str, list[tuple[float, bool]]] = {k: [] for k in ATTACKS}
    psnrs, air, t0 = [], [], time.perf_counter()
    for i in range(n):
        img, _, _ = render_phantom(3000 + i, PhantomConfig(size=size))
        if background == "removed":
            img = remove_background(img)
        air.append(float(np.mean(img == 0)))
        payload = make_payload("bench-run", i)
        marked = embed_watermark(img, payload, cfg)
        psnrs.append(psnr(img, marked))
        for name, attack in ATTACKS.items():
            a = attack(marked)
            if min(a.shape) < MIN_SIDE:  # detect skips images it cannot hold a mark in
                rows[name].append((float("nan"), False))
                continue
            det = detect_watermark(a, cfg)
            rows[name].append((bit_accuracy(a, payload, cfg), det.found and det.payload == payload))
    print(f"\n-- {size[0]}x{size[1]}: {n} marked phantoms, background {background} (exactly 0: "
          f"{100 * np.mean(air):.0f} % of pixels), PSNR mean {np.mean(psnrs):.1f} dB "
          f"({time.perf_counter() - t0:.0f} s) --")
    print(f"{'attack':28s} {'bit acc mean':>12s} {'found':>9s}")
    for name, vals in rows.items():
        acc = np.array([v[0] for v in vals])
        found = sum(v[1] for v in vals)
        mean = "  (too small)" if np.isnan(acc).all() else f"{np.nanmean(acc):12.3f}"
        print(f"{name:28s} {mean:>12s} {found:>4d}/{len(vals):<4d}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="marked phantoms per size")
    ap.add_argument("--sizes", default="64x40,128x80,256x160", help="HxW list")
    ap.add_argument("--background", default="removed", choices=("removed", "raw"),
                    help="removed: outside the breast set to 0 first, as generate does (default)")
    args = ap.parse_args()
    cfg = WatermarkConfig()
    print(f"watermark: grid {cfg.grid}, {cfg.slots} slots, min side {MIN_SIDE} px")
    for s in args.sizes.split(","):
        h, w = map(int, s.lower().split("x"))
        run(args.n, (h, w), cfg, args.background)
    return 0


if __name__ == "__main__":
    sys.exit(main())
