"""Benchmark: how strict is the detectability test? Real films, slightly perturbed, against real films.

The realism step's classifier two-sample test (``mammosynth.metrics.detectability``) tells
every generator so far from mini-MIAS films (AUC 0.97-1.00). This script measures what it
takes: the two thirds of the films a generator would train on, perturbed in one known
way, take the place of the synthetic set and are tested against the held-back third
(``train_gan.py``'s split and measures, with its cache of the real side). Unperturbed,
the row is a second real-vs-real floor; a blur of sigma 0.5 px or a faint added noise
shows how small a texture difference the test sees, next to what the spectrum exponent
beta and the high-pass energy ratio make of the same change. ``edgeblur:SIGMA:PX`` blurs
only the band within PX pixels of the skin line and ``innerblur:SIGMA:PX`` only the tissue
farther in: which of the two the test sees.

    python benchmarks/detectability_calibration.py --data ../shared/data/mias-dev \
        --perturb none,blur:0.5,blur:1,noise:0.005,edgeblur:0.7:4,innerblur:0.7:4 --threads 1
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_gan  # noqa: E402  (the benchmark's split, real arrays and realism measures)


def perturb(images: np.ndarray, masks: np.ndarray, spec: str, seed: int = 0) -> np.ndarray:
    """``images`` float [N, H, W] in [0, 1] changed by ``spec`` (``none``, ``blur:SIGMA``
    in px, a Gaussian truncated at 3 sigma with edges replicated, ``noise:SD`` Gaussian,
    in [0, 1] units, or ``edgeblur:SIGMA:PX`` / ``innerblur:SIGMA:PX``: that blur kept only
    on breast pixels nearer than PX px to the background / the rest of the breast),
    background kept exactly 0; uint16."""
    kind, _, value = spec.partition(":")
    try:
        return _perturb(images, masks, kind, value, seed)
    except ValueError as exc:
        raise ValueError(f"perturbation {spec!r}: {exc}") from None


def _blur(images: np.ndarray, sigma: str) -> np.ndarray:
    return ndimage.gaussian_filter(images, (0, float(sigma), float(sigma)), mode="nearest", truncate=3.0)


def _perturb(images: np.ndarray, masks: np.ndarray, kind: str, value: str, seed: int) -> np.ndarray:
    x = images
    if kind == "blur":
        x = _blur(images, value)
    elif kind in ("edgeblur", "innerblur"):
        sigma, _, band = value.partition(":")
        if not band:
            raise ValueError(f"write it {kind}:SIGMA:PX")
        blurred = _blur(images, sigma)
        # distance of each breast pixel to the nearest background pixel (the skin line)
        depth = np.stack([ndimage.distance_transform_edt(m) for m in masks])
        near = depth < float(band)
        x = np.where(near if kind == "edgeblur" else ~near, blurred, images)
    elif kind == "noise":
        noise = torch.randn((len(images), 1, *images.shape[1:]), generator=torch.Generator().manual_seed(seed))
        x = images + float(value) * noise[:, 0].numpy()
    elif kind != "none":
        raise ValueError("unknown; none, blur:SIGMA, noise:SD, edgeblur:SIGMA:PX or innerblur:SIGMA:PX")
    return (np.clip(x, 0, 1) * 65535).round().astype(np.uint16) * masks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mias-dev"))
    ap.add_argument("--out", default="/tmp/bench_train_gan", help="train_gan.py's work folder (split, cache)")
    ap.add_argument("--size", type=int, nargs=2, default=[128, 128], metavar=("H", "W"))
    ap.add_argument("--perturb", default="none,blur:0.5,blur:1,noise:0.005,edgeblur:0.7:4,innerblur:0.7:4")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from mammosynth.data.prepared import PreparedDataset

    work = Path(args.out)
    split = train_gan.prepare(Path(args.data), work, tuple(args.size))
    held, trained = train_gan.real_arrays(f"{split}:test"), train_gan.real_arrays(f"{split}:train")
    key = PreparedDataset(f"{split}:test").content_hash
    print(f"{len(trained[0])} training films (perturbed) vs {len(held[0])} held-back films, {args.size[0]}x"
          f"{args.size[1]}, torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}", flush=True)
    print("| training films | detectability AUC [CI] | texture view | layout view | floor | beta (held-back) "
          "| high-pass ratio [CI] |\n|---|---|---|---|---|---|---|", flush=True)
    for spec in args.perturb.split(","):
        syn = perturb(trained[0], trained[1], spec)
        rm = train_gan.realism(held, syn, work / f"calibration-{spec.replace(':', '-')}-crops.png", work / "cache", key)
        d, sp, dt = rm.detectability, rm.spectrum, rm.detail
        print(f"| {spec} | {d.synthetic.auc:.3f} [{d.synthetic.ci_low:.2f}, {d.synthetic.ci_high:.2f}] "
              f"| {train_gan.view_auc(d, 'texture')} | {train_gan.view_auc(d, 'layout')} | {d.floor.auc:.3f} "
              f"| {sp.synthetic.median:.2f} ({sp.real.median:.2f}) | {dt.ratio:.2f} [{dt.ci_low:.2f}, {dt.ci_high:.2f}] |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
