"""``mammosynth evaluate``: is a synthetic set fit to use? One report for a validation board.

Exit codes: 0 report written; 1 failure (or ``--fail-on-copies`` when the near-copy check
could not run); 4 ``--fail-on-copies`` and at least one synthetic image is a near-copy of a
training image (the report is still written).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

EXIT_COPIES = 4


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..metrics.stats import CI_METHODS
    from ..metrics.utility import TASKS, ClassifierConfig
    from ..report.evaluate import EvaluateConfig

    d, c = EvaluateConfig(), ClassifierConfig()
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a synthetic set against real data: HTML report, metrics.json, dataset card",
        description=(
            "Run the fitness-for-use protocol: governance record, comparison with the real population "
            "(labels, intensities, fidelity, PRDC), conditioning fidelity, a classifier trained with and "
            "without synthetic images tested on real test images (AUC, bootstrap CIs, DeLong), subgroup "
            "equity, realism (can a classifier tell synthetic from real films?), near-copy and diversity checks. Writes OUT/report.html, OUT/metrics.json and "
            "OUT/dataset_card.md. Exit codes: 0 done, 1 error, 4 near-copies found with --fail-on-copies."
        ),
    )
    p.add_argument("--real", required=True, metavar="PREPARED[:split]", help="real prepared dataset (or one split)")
    p.add_argument("--synthetic", metavar="SYNTH",
                   help="synthetic prepared dataset (default: the --edits set)")
    p.add_argument("--edits", default=d.edits, metavar="EDITED",
                   help="an edited set (mammosynth edit) to validate against --real, its source: unchanged "
                        "outside the edit mask, inserted-vs-real lesion realism, lesion-presence score")
    p.add_argument("--train", metavar="PREPARED:train",
                   help="real training images (default: the real set's train split); also the generator's "
                        "training set for the near-copy check")
    p.add_argument("--test", metavar="PREPARED:test",
                   help="independent real test images (default: the real set's test split)")
    p.add_argument("--out", required=True, metavar="REPORT_DIR", help="output directory")
    p.add_argument("--task", choices=TASKS, default=d.task,
                   help="downstream task (default: the first of finding, density, malignancy that the labels allow)")
    p.add_argument("--inception-weights", metavar="PATH", default=d.inception_weights,
                   help="local TorchScript InceptionV3 for FID/KID (nothing is downloaded)")
    p.add_argument("--fail-on-copies", action="store_true",
                   help=f"exit {EXIT_COPIES} when any synthetic image is a near-copy of a training image")
    p.add_argument("--seeds", type=int, default=d.seeds, help="classifier trainings per regime (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="base seed (default %(default)s)")
    p.add_argument("--max-images", type=int, default=d.max_images, metavar="N",
                   help="use at most N images of each set (seeded random subset)")
    p.add_argument("--epochs", type=int, default=c.epochs, help="classifier training length, in passes over the real training split; the same "
                        "number of steps in every regime (default %(default)s)")
    p.add_argument("--min-steps", type=int, default=c.min_steps,
                   help="classifier optimiser steps at least, however small the training split (default %(default)s)")
    p.add_argument("--n-boot", type=int, default=d.n_boot, help="bootstrap replicates (default %(default)s)")
    p.add_argument("--ci-method", choices=CI_METHODS, default=d.ci_method,
                   help="bootstrap CI method (default %(default)s)")
    p.add_argument("--no-frd", action="store_true",
                   help="skip the Fréchet Radiomics Distance (slow: about 0.25 s per image per core)")
    p.add_argument("--no-realism", action="store_true",
                   help="skip the Realism step (synthetic-vs-real detectability, power spectrum, fine detail)")
    p.add_argument("--detect-folds", type=int, default=None, metavar="K",
                   help="cross-validation folds of the realism detectability classifier (default: RealismConfig's)")
    p.add_argument("--floor-splits", type=int, default=None, metavar="K",
                   help="random halvings of the real set whose mean is the detectability floor (default: "
                        "DetectabilityConfig's; computed once per real set and cached)")
    p.add_argument("--no-image-metrics", action="store_true",
                   help="skip fidelity, diversity and near-copy metrics (utility, equity and conditioning only)")
    p.add_argument("--cache-dir", default=d.cache_dir,
                   help="feature cache (default: $MAMMOSYNTH_CACHE or ~/.cache/mammosynth)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write cached features")
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from ..metrics.utility import ClassifierConfig
    from ..report.evaluate import EvaluateConfig, evaluate
    from ..report.steps.realism import realism_config

    if not args.synthetic and not args.edits:
        raise ValueError("give --synthetic SYNTH, --edits EDITED or both")
    image_config = None
    if args.no_frd:
        from ..metrics.fidelity import ImageMetricsConfig

        image_config = ImageMetricsConfig(frd=False)
    config = EvaluateConfig(
        task=args.task, seeds=args.seeds, seed=args.seed, max_images=args.max_images,
        inception_weights=args.inception_weights, cache_dir=args.cache_dir, use_cache=not args.no_cache,
        image_metrics=not args.no_image_metrics, n_boot=args.n_boot, ci_method=args.ci_method,
        threads=args.threads, image_config=image_config,
        classifier=dataclasses.replace(ClassifierConfig(), epochs=args.epochs, min_steps=args.min_steps),
        realism=not args.no_realism, edits=args.edits,
        realism_config=(realism_config(detect_folds=args.detect_folds, floor_splits=args.floor_splits)
                        if args.detect_folds is not None or args.floor_splits is not None else None),
    )
    m = evaluate(args.real, args.synthetic or args.edits, args.out, config, train=args.train, test=args.test)
    v = m["verdict"]
    print(f"verdict: {v['overall'].upper()} - {v['summary']}")
    for s in v["steps"]:
        print(f"  [{s['status']:>12}] {s['step']}: {s['summary']}")
    print(f"wrote {args.out}/report.html, metrics.json, dataset_card.md")
    if args.fail_on_copies:
        mem = (m.get("image_metrics") or {}).get("memorization") or {}
        if not mem.get("available"):
            print(f"mammosynth evaluate: error: --fail-on-copies: the near-copy check did not run "
                  f"({mem.get('reason') or m['image_metrics'].get('reason')})", file=sys.stderr)
            return 1
        if mem.get("n_flagged"):
            print(f"mammosynth evaluate: {mem['n_flagged']} synthetic image(s) are near-copies of training images "
                  f"(exit {EXIT_COPIES})", file=sys.stderr)
            return EXIT_COPIES
    return 0
