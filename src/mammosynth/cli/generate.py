"""``mammosynth generate``: labelled synthetic mammograms from a trained run."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.prepared import FORMAT_SUFFIX


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..sampling.generate import SHAPE_GATE_CHOICES, GenerateConfig

    d = GenerateConfig()
    p = subparsers.add_parser(
        "generate",
        help="generate a labelled synthetic set from a trained run",
        description=(
            "Generate N labelled synthetic mammograms from a training run (or a checkpoint, or a "
            "save_pretrained directory) into a prepared dataset. Image i depends only on "
            "(checkpoint, seed, i); a rerun resumes an interrupted set."
        ),
    )
    p.add_argument("run", help="run directory (RUNS/00003-name), checkpoint file or pretrained directory")
    p.add_argument("--n", type=int, required=True, help="number of images")
    p.add_argument("--out", required=True, help="output prepared dataset directory")
    p.add_argument("--mix", action="append", default=[], metavar="AXIS=CLASS:P,...",
                   help="label proportions for one axis, e.g. density=A:0.25,B:0.25,C:0.25,D:0.25, "
                        "finding=mass:0.3,none:0.7, view=CC:0.5,MLO:0.5, laterality=L:0.5,R:0.5 "
                        "(repeatable; axes not given follow the training label frequencies; laterality "
                        "defaults to R)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed (default %(default)s)")
    p.add_argument("--format", dest="fmt", choices=tuple(FORMAT_SUFFIX), default=d.fmt,
                   help="image format (default %(default)s)")
    p.add_argument("--batch", type=int, default=d.batch, help="batch size (default %(default)s)")
    p.add_argument("--writers", type=int, default=d.writers,
                   help="threads that watermark and write images (default: one per CPU core, at most 4)")
    p.add_argument("--checkpoint", default=d.checkpoint,
                   help="best, latest, or a checkpoint file (default %(default)s)")
    p.add_argument("--key", default=d.key, help="provenance signing key: key directory or private key file")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda... (default %(default)s)")
    p.add_argument("--sampler", choices=("dpm++", "ddim"), default=None,
                   help="diffusion models: DPM-Solver++ 2M or DDIM (default: the model's, dpm++)")
    p.add_argument("--steps", type=int, default=None,
                   help="diffusion models: denoising steps (default: the model's, 25)")
    p.add_argument("--guidance", type=float, default=None,
                   help="diffusion models: classifier-free guidance scale, 1 = none (default: the model's, 1.5)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing synthetic set in --out")
    p.add_argument("--keep-background", dest="remove_background", action="store_false",
                   help="keep the generator's raw output outside the breast (by default it is set to 0 "
                        "with the ingest's breast segmentation, as in the real prepared images)")
    p.add_argument("--shape-gate", choices=SHAPE_GATE_CHOICES, default=d.shape_gate,
                   help="redraw an image whose breast outline no training film comes near (a torn or detached "
                        "outline, a missing upper half), from another latent for the same index and labels; auto: "
                        "on when the model holds its training films' outlines (default %(default)s)")
    p.add_argument("--shape-quantile", type=float, default=d.shape.quantile,
                   help="an outline passes when it is no farther from the nearest training film, no more jagged "
                        "and no more split into several runs per row than the training films' own at this quantile "
                        "(default %(default)s)")
    p.add_argument("--shape-attempts", type=int, default=d.shape.attempts,
                   help="candidates per image at most; when none passes the least atypical is kept and "
                        "recorded as failed (default %(default)s)")
    p.add_argument("--shape-reference", default=None, metavar="PREPARED[:SPLIT]",
                   help="the training films, for a model trained before runs stored their outlines")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from ..sampling.generate import GenerateConfig, generate
    from ..sampling.mix import mix_from_specs
    from ..sampling.shape_gate import ShapeGateConfig

    config = GenerateConfig(
        mix=mix_from_specs(args.mix), seed=args.seed, fmt=args.fmt, batch=args.batch,
        checkpoint=args.checkpoint, key=args.key, overwrite=args.overwrite, device=args.device,
        remove_background=args.remove_background, writers=args.writers, sampler=args.sampler, steps=args.steps,
        guidance=args.guidance, shape_gate=args.shape_gate,
        shape=ShapeGateConfig(quantile=args.shape_quantile, attempts=args.shape_attempts),
        shape_reference=args.shape_reference,
    )
    out = generate(args.run, args.n, args.out, config)
    info = json.loads((Path(out) / "dataset.json").read_text(encoding="utf-8"))
    counts = info.get("counts", {})
    print(f"wrote {counts.get('images', {}).get('total', '?')} synthetic images to {out}")
    for axis in ("density", "finding", "view", "laterality"):
        if counts.get(axis):
            print(f"  {axis}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts[axis].items())))
    gate = info.get("shape_gate")
    if gate:
        print(f"  shape gate: {gate['redrawn']} of {gate['images']} images redrawn for an outline no training "
              f"film comes near; {gate['failed']} kept failing after {args.shape_attempts} candidates")
    else:
        print("  shape gate: off" + ("" if args.shape_gate == "off" else
                                     " (the model holds no outlines of its training films: --shape-reference)"))
    return 0
