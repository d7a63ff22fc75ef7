"""Provenance benchmark: watermark robustness matrix, false positives, PSNR, signing speed.

    .venv/bin/python benchmarks/provenance.py [--marked 24] [--unmarked-phantoms 200] [--quick]

Marked images are procedural phantoms (mammosynth.phantom, 256x160 and 128x80, 16 bit).
Unmarked images are other phantoms plus the real films in ../shared/data/mias-dev when present.
Bit accuracy = raw slots (96) agreeing with the known payload before error correction, at
the detector's best hypothesis; "found" = the detector verified the exact payload.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")

from mammosynth.io.images import read_image, write_image  # noqa: E402
from mammosynth.phantom import PhantomConfig, render_phantom  # noqa: E402
from mammosynth.provenance.watermark import (WatermarkConfig, bit_accuracy, detect_watermark,  # noqa: E402
                                             embed_watermark, make_payload, psnr)

MIAS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mias-dev"


def to8(img: np.ndarray) -> np.ndarray:
    return ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(to8(img)).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf))


def resize_back(img: np.ndarray, method: str) -> np.ndarray:
    h, w = img.shape
    if method == "bilinear":
        from skimage.transform import resize

        small = resize(img / 65535.0, (h // 2, w // 2), order=1, anti_aliasing=True)
        return np.rint(resize(small, (h, w), order=1) * 65535).astype(np.uint16)
    from PIL import Image

    im = Image.fromarray(img.astype(np.float32))
    out = im.resize((w // 2, h // 2), Image.BICUBIC).resize((w, h), Image.BICUBIC)
    return np.clip(np.rint(np.asarray(out)), 0, 65535).astype(np.uint16)


def crop(img: np.ndarray, edge: str, frac: float) -> np.ndarray:
    h, w = img.shape
    k, kk = round(w * frac), round(h * frac)
    return {"right": img[:, : w - k], "left": img[:, k:], "top": img[kk:], "bottom": img[: h - kk]}[edge]


ATTACKS = {
    "none": lambda a: a,
    "png 16->8 bit": to8,
    "jpeg q90": lambda a: jpeg(a, 90),
    "jpeg q70": lambda a: jpeg(a, 70),
    "jpeg q50": lambda a: jpeg(a, 50),
    "resize 0.5x+back bilinear": lambda a: resize_back(a, "bilinear"),
    "resize 0.5x+back bicubic": lambda a: resize_back(a, "bicubic"),
    "jpeg q50 + 0.5x bilinear": lambda a: jpeg(resize_back(a, "bilinear"), 50),
    "crop 5% right (nipple side)": lambda a: crop(a, "right", 0.05),
    "crop 5% top": lambda a: crop(a, "top", 0.05),
    "crop 5% bottom": lambda a: crop(a, "bottom", 0.05),
    "crop 5% left (chest wall)": lambda a: crop(a, "left", 0.05),
    "crop 3% right (off-grid 1%)": lambda a: crop(a, "right", 0.035),
}


def robustness(n: int, sizes: list[tuple[int, int]], cfg: WatermarkConfig) -> list[float]:
    print(f"\n== watermark robustness: {n} marked phantoms per size, payload 64 bit + 32 bit check ==")
    psnrs = []
    for size in sizes:
        rows: dict[str, list[tuple[float, bool]]] = {k: [] for k in ATTACKS}
        t_embed = t_detect = 0.0
        for i in range(n):
            img, _, _ = render_phantom(1000 + i, PhantomConfig(size=size))
            payload = make_payload("bench-run", i)
            t0 = time.perf_counter()
            marked = embed_watermark(img, payload, cfg)
            t_embed += time.perf_counter() - t0
            psnrs.append(psnr(img, marked))
            for name, attack in ATTACKS.items():
                a = attack(marked)
                t0 = time.perf_counter()
                det = detect_watermark(a, cfg)
                t_detect += time.perf_counter() - t0
                rows[name].append((bit_accuracy(a, payload, cfg), det.found and det.payload == payload))
        print(f"\n-- size {size[0]}x{size[1]} (embed {1000 * t_embed / n:.0f} ms/img, "
              f"detect {1000 * t_detect / (n * len(ATTACKS)):.0f} ms/img with crop search) --")
        print(f"{'attack':32s} {'bit acc mean':>12s} {'bit acc min':>11s} {'payload found':>13s}")
        for name, vals in rows.items():
            acc = np.array([v[0] for v in vals])
            found = sum(v[1] for v in vals)
            print(f"{name:32s} {acc.mean():12.3f} {acc.min():11.3f} {found:>8d}/{len(vals):<4d}")
    return psnrs


def false_positives(n_phantoms: int, cfg: WatermarkConfig) -> None:
    print("\n== false positives on unmarked images (detector with crop search) ==")
    p_bound = detect_watermark(embed_watermark(render_phantom(0, PhantomConfig(size=(128, 80)))[0], 1, cfg), cfg).p_value
    groups: dict[str, list[np.ndarray] | list[Path]] = {}
    sizes = [(256, 160), (128, 80), (512, 320)]
    groups["phantom"] = [(i, sizes[i % 3]) for i in range(n_phantoms)]
    films = sorted(MIAS.glob("*.pgm")) if MIAS.is_dir() else []
    groups["mias-dev films"] = films
    total = found = 0
    for name, items in groups.items():
        t0 = time.perf_counter()
        hits = 0
        for item in items:
            if name == "phantom":
                img = render_phantom(5000 + item[0], PhantomConfig(size=item[1]))[0]
            else:
                img, _ = read_image(item)
            hits += detect_watermark(img, cfg).found
        dt = time.perf_counter() - t0
        total += len(items)
        found += hits
        extra = "" if items else " (not present)"
        print(f"{name:16s} {len(items):4d} images, {hits} detected{extra} ({1000 * dt / max(1, len(items)):.0f} ms/img)")
    print(f"total            {total:4d} images, {found} false positives (rate {found / max(1, total):.4f}); "
          f"per-image bound p <= {p_bound:.1e}")


def signing_speed(n: int, size: tuple[int, int]) -> None:
    from mammosynth.provenance.keys import new_keypair
    from mammosynth.provenance.manifest import sign_set, verify_set

    print(f"\n== signing / verifying a set of {n} images ({size[0]}x{size[1]} 16-bit PNG) ==")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "set"
        img = render_phantom(0, PhantomConfig(size=size))[0]
        for i in range(n):
            write_image(root / "images" / f"img{i:05d}.png", np.roll(img, i, axis=1))
        new_keypair(Path(tmp) / "keys")
        mb = sum(p.stat().st_size for p in (root / "images").iterdir()) / 1e6
        t0 = time.perf_counter()
        sign_set(root, key=Path(tmp) / "keys")
        t_sign = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep = verify_set(root, Path(tmp) / "keys")
        t_verify = time.perf_counter() - t0
        assert rep.ok, rep.summary()
        scale = 1000 / n
        print(f"set size {mb:.1f} MB; sign (hash + Merkle + Ed25519) {t_sign * scale:.2f} s per 1000 images; "
              f"verify {t_verify * scale:.2f} s per 1000 images")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--marked", type=int, default=20, help="marked phantoms per size")
    ap.add_argument("--unmarked-phantoms", type=int, default=200)
    ap.add_argument("--sign-n", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="small numbers (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.marked, args.unmarked_phantoms, args.sign_n = 3, 10, 50
    cfg = WatermarkConfig()
    t0 = time.perf_counter()
    print(f"watermark: grid {cfg.grid}, DCT band {cfg.band}, {cfg.slots} slots, STDM target {cfg.psnr_db} dB, "
          f"{len(cfg.crops) * 4 + 1} crop x {len(cfg.gain_grid) ** 2} gain hypotheses, top {cfg.decode_top} decoded")
    psnrs = robustness(args.marked, [(256, 160), (128, 80)], cfg)
    print(f"\nPSNR of marked vs original: mean {np.mean(psnrs):.2f} dB, min {np.min(psnrs):.2f} dB "
          f"({len(psnrs)} images)")
    false_positives(args.unmarked_phantoms, cfg)
    signing_speed(args.sign_n, (256, 160))
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
