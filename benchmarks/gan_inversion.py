"""How well a trained GAN reproduces real films by latent optimisation: the first step of any
GAN route that edits a real film (README, "Why there is no GAN density route").

For each of the first ``--n`` films of a prepared set (at the run's resolution): the best of
``--candidates`` random latents, then ``--steps`` Adam steps on the latent minimising the
squared error inside the breast mask (the film's own labels as the generator's condition,
where it has any). Prints the PSNR inside the breast (peak-to-peak 2 on the [-1, 1] scale)
before and after, and writes a sheet: films above, reconstructions below.

    .venv/bin/python benchmarks/gan_inversion.py RUN PREPARED[:split] [--n 16] [--steps 300] [--out inversion.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a GAN run directory or saved pipeline")
    ap.add_argument("prepared", help="prepared dataset (PREPARED[:split]) holding the films to reproduce")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--candidates", type=int, default=256)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("inversion.png"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from mammosynth.data.preprocess import breast_masks
    from mammosynth.sampling import GanPipeline
    from mammosynth.training.data import load_training_data
    from mammosynth.training.loop import save_grid

    pipe = GanPipeline.from_pretrained(args.run, checkpoint="best")
    g = pipe.generator
    axes = tuple(pipe.label_axes)
    data = load_training_data(args.prepared, pipe.resolution, axes, show_progress=False)
    real = data.images[:args.n].float()
    raw = ((real[:, 0].numpy() + 1) * 32767.5).round().astype(np.uint16)
    mask = torch.from_numpy(breast_masks(raw))[:, None].float()
    # the films' own labels (an unknown one: the first class) for a conditioned generator
    labels = {a: data.labels[a][:args.n].clamp(min=0) for a in axes} or None

    def err(out, r, m):  # mean squared error inside the breast, per image
        return (((out - r) ** 2) * m).sum((1, 2, 3)) / m.sum((1, 2, 3)).clamp(min=1)

    gen = torch.Generator().manual_seed(0)
    z0, e0 = [], []
    with torch.no_grad():  # the best random start per film
        cands = torch.randn(args.candidates, g.z_dim, generator=gen)
        for k in range(len(real)):
            lab = None if labels is None else {a: v[k:k + 1].expand(args.candidates) for a, v in labels.items()}
            e = err(g(cands, lab), real[k:k + 1], mask[k:k + 1])
            z0.append(cands[e.argmin()])
            e0.append(e.min())
    z = torch.stack(z0).clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=args.lr)
    for _ in range(args.steps):
        loss = err(g(z, labels), real, mask)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        out = g(z, labels)
        e1 = err(out, real, mask)
    psnr = lambda mse: 10 * torch.log10(4.0 / mse)  # noqa: E731
    before, after = psnr(torch.stack(e0)), psnr(e1)
    print(f"{args.run}: {len(real)} films of {args.prepared} at {pipe.resolution[0]}x{pipe.resolution[1]}; PSNR "
          f"inside the breast: best of {args.candidates} random latents {before.mean():.2f} dB, after "
          f"{args.steps} Adam steps on the latent {after.mean():.2f} dB (median {after.median():.2f}, range "
          f"{after.min():.1f}-{after.max():.1f})")
    k = min(8, len(real))
    save_grid(args.out, torch.cat([real[:k], out[:k]]), k)
    print(f"sheet (films above, reconstructions below): {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
