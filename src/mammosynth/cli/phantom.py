"""``mammosynth phantom``: a labelled procedural phantom repository, no data needed."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def _views(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..phantom import PhantomConfig

    d = PhantomConfig()
    p = subparsers.add_parser(
        "phantom",
        help="write a labelled procedural phantom repository (no data needed)",
        description=(
            "Render N procedural mammograms (breast outline, 1/f^3 glandular texture at the requested "
            "ACR density, ligaments, ducts, findings with masks, 20 keV Beer-Lambert projection, "
            "detector blur and noise) into a prepared dataset. Image i depends only on (seed, i); "
            "a rerun skips finished images and a larger N extends the set."
        ),
    )
    p.add_argument("--n", type=int, required=True, help="number of images")
    p.add_argument("--out", required=True, help="output prepared dataset directory")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=list(d.size),
                   help="image size in pixels (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed (default %(default)s)")
    p.add_argument("--density", default=d.density, metavar="A:P,B:P,C:P,D:P",
                   help="ACR density proportions per woman, summing to 1 (default %(default)s)")
    p.add_argument("--findings", default=d.findings, metavar="KIND:P,...",
                   help="per-image probability of each finding (mass, calcification, distortion, asymmetry); "
                        "each in [0, 1], sum <= 1, the rest has no finding; '' for none "
                        "(default %(default)s)")
    p.add_argument("--views", type=_views, default=d.views, metavar="CC,MLO",
                   help="views per breast (default %s)" % ",".join(d.views))
    p.add_argument("--spiculated-fraction", type=float, default=d.spiculated_fraction,
                   help="share of masses that are spiculated (default %(default)s)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from ..phantom import PhantomConfig, make_phantom_dataset

    config = PhantomConfig(size=tuple(args.size), seed=args.seed, density=args.density, findings=args.findings,
                           views=args.views, spiculated_fraction=args.spiculated_fraction)
    out = make_phantom_dataset(args.out, args.n, config=config, workers=args.workers)
    info = json.loads((Path(out) / "dataset.json").read_text(encoding="utf-8"))
    counts = info.get("counts", {})
    print(f"wrote {counts.get('images', {}).get('total', '?')} phantom images to {out}")
    for axis in ("density", "finding", "view", "laterality", "split"):
        if counts.get(axis):
            print(f"  {axis}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts[axis].items())))
    return 0
