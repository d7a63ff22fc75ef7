"""``mammosynth train``: train a generator (GAN or diffusion) on a prepared dataset (resumable, multi-process)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..models.config import ALL_FAMILIES, UPSAMPLE_MODES, ModelConfig
    from ..models.diffusion import DIFFUSION_DEFAULTS, PREDICTIONS
    from ..training.config import (AMP_MODES, BUDGET_CLOCKS, CONTENT_MODES, D_BATCHES, SPECTRAL_WEIGHT, TEXTURE_VIEWS,
                                   TRAIN_DEFAULTS, TrainConfig)
    from ..training.presets import PRESET_CHOICES, PRESETS

    p = subparsers.add_parser(
        "train", help="train a generator (fastgan, dcgan or diffusion) on a prepared dataset",
        description="Train a generator on PREPARED[:split] (default: the train split when the dataset has splits). "
                    "Runs under torchrun / accelerate launch unchanged (one process per GPU, gloo on CPU).",
    )
    p.add_argument("prepared", metavar="PREPARED", help="prepared dataset, PATH[:split]")
    p.add_argument("--out", required=True, metavar="RUNS", help="runs directory (a numbered run dir is created inside)")
    p.add_argument("--model", default=ModelConfig.family, choices=ALL_FAMILIES,
                   help="model family: fastgan, dcgan (GANs) or diffusion (a conditional UNet) (default: %(default)s)")
    p.add_argument("--resolution", nargs=2, type=int, metavar=("H", "W"), default=list(ModelConfig.resolution),
                   help="training size; H a power of two >= 16, W a multiple of H/8 (default: %(default)s)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=None,
                        help=f"training minutes in this session (default: {TrainConfig.minutes:g})")
    budget.add_argument("--kimg", type=float, default=None, help="train until this many thousand images in total")
    p.add_argument("--preset", default="auto", choices=PRESET_CHOICES,
                   help="widths, batch and amp for the hardware (fastgan widths, diffusion UNet widths, layers and "
                        "attention; dcgan keeps its recipe): "
                        + "; ".join(f"{k}: {v.hardware}" for k, v in PRESETS.items())
                        + "; auto: gpu when CUDA is available, else cpu. Explicit flags win (default: %(default)s)")
    p.add_argument("--upsample", default=ModelConfig.upsample, choices=UPSAMPLE_MODES,
                   help="fastgan up-blocks: bilinear, or nearest (FastGAN's; turns noise inputs into a period-2 "
                        "cross-hatch) (default: %(default)s)")
    p.add_argument("--noise-blocks", type=int, default=ModelConfig.noise_blocks, metavar="N",
                   help="fastgan: top up-blocks with a noise input, for stochastic tissue texture; 0 = none "
                        "(default: %(default)s)")
    p.add_argument("--texture-channels", type=int, default=ModelConfig.texture_channels, metavar="C",
                   help="fastgan: width of the discriminator's full-resolution texture head; 0 = none "
                        "(default: %(default)s)")
    p.add_argument("--output-noise", default="on" if ModelConfig.output_noise else "off", choices=("on", "off"),
                   help="fastgan: a full-resolution noise input before the to-image conv, for the finest octave "
                        "of tissue texture (default: %(default)s)")
    p.add_argument("--output-grain", default="on" if ModelConfig.output_grain else "off", choices=("on", "off"),
                   help="fastgan: a full-resolution conv + GLU after the output noise, so the finest grain can be "
                        "non-Gaussian (specks, short strands) (default: %(default)s)")
    p.add_argument("--strands", type=int, default=ModelConfig.strands, metavar="K",
                   help="fastgan: orientations of the strand input (sparse oriented dashes of the full-resolution "
                        "noise, gated per pixel), for the films' fibrous strands; 0 = none (default: %(default)s)")
    p.add_argument("--recon-rows", type=int, default=ModelConfig.recon_rows, metavar="R",
                   help="fastgan: rows of the discriminator's self-supervised reconstructions (whole image and a "
                        "quarter); 32 makes them about shape and layout, 64 was the default before (default: "
                        "%(default)s)")
    p.add_argument("--texture-view", default=TrainConfig.texture_view, choices=TEXTURE_VIEWS,
                   help="fastgan: what the texture head judges: the augmented images, or the exact images before "
                        "augmentation (zooms blur texture) (default: %(default)s)")
    p.add_argument("--content", default=TrainConfig.content, choices=CONTENT_MODES,
                   help="fastgan: auto builds the networks for the columns the films' breasts occupy (chest wall "
                        "left) and pads the images to the frame with background: a square frame trains ~1.3x the "
                        "images; full: the whole frame (default: %(default)s)")
    p.add_argument("--d-batch", default=None, choices=D_BATCHES,
                   help="GANs: reals and fakes through the discriminator in one pass (mixed) or one pass each "
                        "(split; its BatchNorm then normalises away what all fakes share) "
                        "(default: fastgan mixed, dcgan split)")
    p.add_argument("--spectral-weight", type=float, default=None, metavar="W",
                   help="GANs: weight of the loss matching the tissue power spectrum of the fakes to the training "
                        f"films'; 0 = off (default: fastgan {SPECTRAL_WEIGHT:g}, dcgan 0)")
    p.add_argument("--resample-copies", type=int, default=None, metavar="K",
                   help="resampled copies per training film: the film warped by a smooth random displacement and "
                        "its width scaled at its stored resolution, then fitted to the training resolution; films "
                        "stored below twice that resolution get none; 0 = off (default: fastgan "
                        f"{TRAIN_DEFAULTS['fastgan']['resample_copies']}, dcgan and diffusion 0)")
    p.add_argument("--resample-displacement", type=float, default=TrainConfig.resample_displacement, metavar="S",
                   help="the copies' warp: SD of the displacement at its control points, as a share of the film's "
                        "height (default: %(default)s)")
    p.add_argument("--resample-width", type=float, default=TrainConfig.resample_width, metavar="F",
                   help="the copies' width: the film's times a factor from 1-F to 1+F (default: %(default)s)")
    p.add_argument("--g-channels", type=int, default=None, metavar="C",
                   help="generator channels at full resolution, doubling per halving (default: the preset's)")
    p.add_argument("--d-channels", type=int, default=None, metavar="C",
                   help="discriminator channels at full resolution (default: the preset's)")
    p.add_argument("--max-channels", type=int, default=None, metavar="C",
                   help="channel cap of both networks (default: the preset's)")
    p.add_argument("--channels", default=None, metavar="C,C,...",
                   help="diffusion: UNet channels per level, full resolution first; H and W must be multiples of "
                        "2^(levels-1) (default: the preset's; cpu: " + ",".join(map(str, DIFFUSION_DEFAULTS["channels"]))
                        + ")")
    p.add_argument("--layers-per-block", type=int, default=None, metavar="N",
                   help="diffusion: ResNet layers per UNet block (default: the preset's; cpu: "
                        f"{DIFFUSION_DEFAULTS['layers_per_block']})")
    p.add_argument("--attention-levels", type=int, default=None, metavar="N",
                   help="diffusion: lowest-resolution UNet levels with self-attention, 0 = none (default: the "
                        f"preset's; cpu: {DIFFUSION_DEFAULTS['attention_levels']})")
    p.add_argument("--prediction", default=None, choices=("epsilon", "v"),
                   help=f"diffusion: what the UNet predicts, {' or '.join(PREDICTIONS)} "
                        f"(default: {DIFFUSION_DEFAULTS['prediction']})")
    p.add_argument("--label-dropout", type=float, default=None, metavar="P",
                   help="diffusion: probability that an image's labels are dropped, for classifier-free guidance "
                        "(default: 0.1)")
    p.add_argument("--accumulate", type=int, default=TrainConfig.accumulate, metavar="K",
                   help="diffusion: micro-batches per optimiser step (same gradient, less memory) (default: %(default)s)")
    p.add_argument("--condition", default="", metavar="AXES",
                   help="comma-separated label axes to condition on: density,finding,view (default: none)")
    p.add_argument("--resume", default=None, metavar="latest|PATH",
                   help="continue the newest run in RUNS ('latest'), a run directory or a checkpoint file")
    p.add_argument("--dry-run", action="store_true", help="print the resolved plan and create nothing")
    p.add_argument("--batch", type=int, default=TrainConfig.batch, help="global batch size (default: the preset's)")
    p.add_argument("--seed", type=int, default=TrainConfig.seed, help="random seed (default: %(default)s)")
    p.add_argument("--name", default=TrainConfig.name, help="run name (default: FAMILY-HxW[-axes])")
    p.add_argument("--snapshot-minutes", type=float, default=TrainConfig.snapshot_minutes,
                   help="minutes between sample grids / checkpoints (default: %(default)s)")
    p.add_argument("--budget-clock", default=TrainConfig.budget_clock, choices=BUDGET_CLOCKS,
                   help="what --minutes and --snapshot-minutes count: wall time, or this process's CPU time "
                        "(all threads; equal training on a loaded machine) (default: %(default)s)")
    p.add_argument("--device", default=TrainConfig.device, choices=("auto", "cpu", "cuda"),
                   help="device (default: %(default)s)")
    p.add_argument("--amp", default=None, choices=AMP_MODES,
                   help="mixed precision: auto = bf16 (else fp16 + gradient scaler) on GPUs, bf16 on CPUs with "
                        "AMX-BF16 units, none on other CPUs; "
                        f"bf16/fp16 force it, also on CPU (default: the preset's, {TrainConfig.amp})")
    p.set_defaults(func=handler)


def build_config(args: argparse.Namespace) -> "TrainConfig":
    from ..training.config import TrainConfig
    from ..training.presets import preset_config

    minutes, kimg = args.minutes, args.kimg
    if minutes is None and kimg is None:
        minutes = TrainConfig.minutes
    model = dict(family=args.model, resolution=tuple(args.resolution), condition=args.condition,
                 upsample=args.upsample, g_channels=args.g_channels, d_channels=args.d_channels,
                 max_channels=args.max_channels, noise_blocks=args.noise_blocks,
                 texture_channels=args.texture_channels, output_noise=args.output_noise == "on",
                 output_grain=args.output_grain == "on", strands=args.strands,
                 recon_rows=args.recon_rows,
                 channels=args.channels, prediction=args.prediction,
                 layers_per_block=args.layers_per_block, attention_levels=args.attention_levels)
    return preset_config(args.preset, model=model, minutes=minutes, kimg=kimg, batch=args.batch, seed=args.seed,
                         name=args.name, snapshot_minutes=args.snapshot_minutes, budget_clock=args.budget_clock,
                         device=args.device, amp=args.amp,
                         label_dropout=args.label_dropout, accumulate=args.accumulate,
                         spectral_weight=args.spectral_weight, texture_view=args.texture_view, content=args.content,
                         d_batch=args.d_batch, resample_copies=args.resample_copies,
                         resample_displacement=args.resample_displacement, resample_width=args.resample_width)


def describe_plan(info: dict[str, Any]) -> list[str]:
    """Human-readable lines for a :func:`plan`: preset, size, cost and memory."""
    c, m, cost, mem = info["config"], info["config"]["model"], info["cost"], info["memory"]
    gib = 2 ** 30
    memory = (f"training memory: ~{mem['total'] / gib:.2f} GiB at batch {mem['batch']}, "
              f"{'mixed precision' if mem['amp'] else 'fp32'} (weights {mem['weights'] / gib:.2f}, gradients+Adam "
              f"{mem['optimizer'] / gib:.2f}, activations {mem['activations'] / gib:.2f} in the {mem['peak_phase']}; "
              "an estimate, see mammosynth.models.cost)")
    if m["family"] == "diffusion":
        guided = " (guided: 2 UNet passes)" if cost["passes_per_step"] == 2 else ""
        return [
            f"preset {info['preset'] or 'none'}: diffusion {m['resolution'][0]}x{m['resolution'][1]}, UNet channels "
            f"{m['channels']}, {m['layers_per_block']} layer(s) per block, attention in the lowest "
            f"{m['attention_levels']} level(s), {m['prediction']}-prediction, batch {c['batch']} in {c['accumulate']} "
            f"micro-batch(es), amp {c['amp']}",
            f"parameters: UNet {info['parameters']['unet'] / 1e6:.2f} M",
            f"GFLOP per image: {cost['unet_gflop']:.3g} per UNet pass, {cost['train_gflop']:.3g} per training image "
            f"(forward+backward), {cost['sample_step_gflop']:.3g} per sampler step{guided}, "
            f"{cost['sample_gflop']:.3g} per generated image ({cost['steps']} steps)",
            memory,
        ]
    width = m.get("content_width") or 0
    content = (f" (networks at {m['resolution'][0]}x{width}, the films' content; the rest of the frame is "
               "background)") if width else ""
    size = f"{m['resolution'][0]}x{m['resolution'][1]}{content}"
    return [
        f"preset {info['preset'] or 'none'}: {m['family']} {size}, channels "
        f"G {m['g_channels']} D {m['d_channels']} max {m['max_channels']}, batch {c['batch']}, amp {c['amp']}",
        f"parameters: G {cost['g_params'] / 1e6:.2f} M, D {cost['d_params'] / 1e6:.2f} M",
        f"GFLOP per image: {cost['g_gflop_inference']:.3g} inference (G), {cost['train_gflop']:.3g} training "
        f"(G+D forward and backward)",
        memory,
    ] + ([f"resampled copies: {c['resample_copies']} per film, for the films stored at twice "
          f"{m['resolution'][0]}x{m['resolution'][1]} or more"] if c.get("resample_copies") else [])


def handler(args: argparse.Namespace) -> int:
    from ..training import plan, train

    from ..utils import check_device, check_output_dir

    config = build_config(args)
    check_output_dir(args.out)  # before any data is loaded
    if config.device != "auto":
        check_device(config.device)
    if args.dry_run:
        info = plan(args.prepared, args.out, config, resume=args.resume)
        print(json.dumps(info, indent=2))
        print("\n".join(describe_plan(info)), file=sys.stderr)
        print(f"dry run: would {'resume' if args.resume else 'create'} {info['run_dir']}; nothing was written",
              file=sys.stderr)
        return 0
    run_dir = train(args.prepared, args.out, config, resume=args.resume)
    print(run_dir)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        leave_without_finalization(0)
    return 0


def leave_without_finalization(code: int) -> None:
    """Exit a launched (multi-process) run now, skipping interpreter finalization. Why: a
    gloo process group can abort the process there with SIGABRT ("terminate called without
    an active exception") after a run that finished and destroyed the group (seen twice in
    CI, under torchrun and accelerate; pytorch/pytorch#179291 describes the race of gloo's
    worker threads with finalization). By now every file of the run is written and closed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
