"""``mammosynth demo``: phantom repository -> prepare -> train -> generate -> sheets -> report."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..demo import DemoConfig

    d = DemoConfig()
    p = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on a phantom repository (about 10 minutes on 2 cores)",
        description=(
            "Make a phantom repository, prepare it, train the default model, generate labelled "
            "synthetic images, draw contact sheets and write the evaluation report. A rerun reuses "
            "finished stages."
        ),
    )
    p.add_argument("--out", default="demo_out", help="output directory (default %(default)s)")
    p.add_argument("--minutes", type=float, default=d.minutes, help="training budget in minutes (default %(default)s)")
    p.add_argument("--n", type=int, default=d.n, help="synthetic images to generate (default %(default)s)")
    p.add_argument("--phantom-n", type=int, default=d.phantom_n, help="phantom images (default %(default)s)")
    p.add_argument("--kimg", type=float, default=d.kimg, help="train for this many thousand images instead of --minutes")
    p.add_argument("--seed", type=int, default=d.seed, help="seed (default %(default)s)")
    p.add_argument("--no-evaluate", dest="evaluate", action="store_false", help="skip the evaluation report")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from ..demo import DemoConfig, run_demo

    config = DemoConfig(minutes=args.minutes, n=args.n, phantom_n=args.phantom_n, kimg=args.kimg, seed=args.seed,
                        evaluate=args.evaluate)
    run_demo(args.out, config)
    return 0
