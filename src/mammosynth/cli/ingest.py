"""``mammosynth ingest`` (real repository -> prepared dataset) and ``mammosynth show`` (contact sheet)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data.adapters import LAYOUTS
from ..data.ingest import IngestConfig
from ..data.preprocess import PreprocessConfig

_P, _I = PreprocessConfig(), IngestConfig()
_STEPS = ("segment", "remove_background", "normalise_laterality", "crop", "resize")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ingest", help="prepare a real repository (MIAS, CBIS-DDSM, VinDr, INbreast, RSNA, folder, prepared)",
        description="Read SOURCE in the given layout, preprocess every image and write a prepared dataset. "
                    "Exit code 0: all ingested; 3: some inputs rejected (see OUT/rejects.jsonl); 1: nothing ingested.")
    p.add_argument("source", metavar="SOURCE", help="repository folder")
    p.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS), help="source layout (default: auto)")
    p.add_argument("--out", required=True, metavar="PREPARED", help="output prepared dataset folder")
    p.add_argument("--size", nargs=2, type=int, metavar=("H", "W"), default=list(_P.size),
                   help=f"target size, aspect kept and padded (default: {_P.size[0]} {_P.size[1]})")
    p.add_argument("--bits", type=int, choices=(8, 16), default=_P.bits, help=f"stored bit depth (default: {_P.bits})")
    for step in _STEPS:
        p.add_argument(f"--no-{step.replace('_', '-')}", dest=step, action="store_false",
                       help=f"skip the {step.replace('_', ' ')} step")
    p.add_argument("--workers", type=int, default=_I.workers, help=f"worker processes (default: {_I.workers})")
    p.add_argument("--limit", type=int, default=_I.limit, help="ingest at most N images")
    p.add_argument("--allow-synthetic", action="store_true",
                   help="keep inputs carrying mammosynth's synthetic markings (text, DICOM, watermark), "
                        "recorded as synthetic with their provenance (default: refused as real)")
    p.add_argument("--hash-names", action="store_true",
                   help="replace every file/folder name by a salted hash in image ids, stored files, manifest "
                        "and dataset.json (always done when a name holds an identifier of its DICOM); the "
                        "source paths go to PREPARED.PRIVATE-names.jsonl beside (not in) the dataset")
    p.set_defaults(func=run_ingest)

    s = subparsers.add_parser("show", help="write a contact sheet PNG of a prepared dataset",
                              description="Grid of images with boxes drawn and small captions, for a human look.")
    s.add_argument("dataset", metavar="PREPARED", help="prepared dataset (PATH or PATH:split)")
    s.add_argument("--out", default=None, help="output PNG (default: PREPARED/contact_sheet.png)")
    s.add_argument("--n", type=int, default=32, help="number of images (default: 32)")
    s.add_argument("--findings-only", action="store_true", help="only images with findings")
    s.set_defaults(func=run_show)


def run_ingest(args: argparse.Namespace) -> int:
    from ..data.ingest import ingest

    pcfg = PreprocessConfig(size=tuple(args.size), bits=args.bits, **{s: getattr(args, s) for s in _STEPS})
    cfg = IngestConfig(preprocess=pcfg, workers=args.workers, limit=args.limit,
                       allow_synthetic=args.allow_synthetic, hash_names=args.hash_names)
    result = ingest(args.source, layout=args.layout, out=args.out, config=cfg)
    print(result.summary())
    return result.exit_code


def run_show(args: argparse.Namespace) -> int:
    from ..data.contact_sheet import contact_sheet
    from ..data.prepared import PreparedDataset, parse_dataset_spec

    ds = PreparedDataset(args.dataset)
    indices = None
    if args.findings_only:
        indices = [i for i, r in enumerate(ds) if r.findings][: args.n]
        if not indices:
            print(f"mammosynth show: {args.dataset} has no images with findings", file=sys.stderr)
            return 1
    out = Path(args.out) if args.out else parse_dataset_spec(args.dataset)[0] / "contact_sheet.png"
    path = contact_sheet(ds, out, n=args.n, indices=indices)
    print(f"contact sheet: {path}")
    return 0
