"""``mammosynth edit``: insert or remove a lesion, or change the density, of real films.

Exit codes: 0 every film edited, 3 some films rejected (``rejects.jsonl`` names each with
the reason), 1 nothing edited (or a configuration no route can run).
"""
from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..edit.api import FORMATS, EditConfig
    from ..edit.editors import ROUTES
    from ..edit.physics import INSERT_KINDS

    d = EditConfig(insert="mass")
    p = subparsers.add_parser(
        "edit",
        help="edit real films: insert or remove a lesion, change breast density",
        description=(
            "Edit every film of a prepared dataset into a new set (kind synthetic): labels updated, source "
            "image and edit parameters kept, pixels outside the edit mask bit for bit the source's, every "
            "film text-marked (DICOM: DERIVED, ConversionType SYN, source referenced) and the set signed. "
            "A film that cannot be edited goes to rejects.jsonl with the reason; the run goes on. "
            "Exit codes: 0 all edited, 3 some rejected, 1 none edited."
        ),
    )
    p.add_argument("prepared", metavar="PREPARED[:split]", help="prepared dataset whose films are edited")
    p.add_argument("--out", required=True, metavar="EDITED", help="output directory (a new synthetic set)")
    op = p.add_mutually_exclusive_group(required=True)
    op.add_argument("--insert", metavar="KIND[:PATHOLOGY]",
                    help=f"insert a lesion; KIND one of {', '.join(INSERT_KINDS)}; PATHOLOGY benign|malignant")
    op.add_argument("--remove", metavar="KIND|any|INDEX", help="remove a labelled finding (learned route)")
    op.add_argument("--density", metavar="A|B|C|D", help="change the breast density to this ACR class (learned route)")
    p.add_argument("--strength", type=float, default=d.strength,
                   help="density: SDEdit noise level (default %(default)s)")
    p.add_argument("--guidance", type=float, default=d.guidance, metavar="G",
                   help="learned routes: classifier-free guidance scale (1: conditional only, half the UNet passes; "
                        "default: the run's sampling default, as mammosynth generate uses)")
    p.add_argument("--route", choices=ROUTES, default=d.route,
                   help="auto: physics for --insert, diffusion for --remove/--density; --insert --route diffusion: "
                        "RePaint of the lesion's mask under finding=KIND (default %(default)s)")
    p.add_argument("--run", dest="model", default=d.model, metavar="RUN",
                   help="trained diffusion model for the learned routes")
    p.add_argument("--box", type=int, nargs=4, default=d.box, metavar=("X0", "Y0", "X1", "Y1"),
                   help="insert at this box (stored pixels) in every film; default: a random plausible site")
    p.add_argument("--sites", default=d.sites, metavar="CSV",
                   help="per-film sites: CSV with header image_id,x0,y0,x1,y1[,mask] (mask: binary PNG path)")
    p.add_argument("--size", dest="size_mm", type=float, default=d.size_mm, metavar="MM",
                   help="insert: the mass's diameter in mm (spiculated: its core's); default: drawn as the phantom "
                        "draws it (8-28 mm)")
    p.add_argument("--normal-only", action="store_true", help="insert only into films without findings")
    p.add_argument("--seed", type=int, default=d.seed, help="seed (default %(default)s)")
    p.add_argument("--feather", dest="feather_px", type=int, default=d.feather_px,
                   help="width (px) over which an edit fades out at its border (default %(default)s)")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default=d.fmt, help="image format (default %(default)s)")
    p.add_argument("--key", default=d.key, help="provenance signing key: key directory or private key file")
    p.add_argument("--limit", type=int, default=d.limit, metavar="N",
                   help="edit at most N films: the first N it may edit (with --normal-only, N normal films)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from ..edit.api import EditConfig, edit

    config = EditConfig(insert=args.insert, remove=args.remove, density=args.density, strength=args.strength,
                        guidance=args.guidance,
                        route=args.route, model=args.model, box=tuple(args.box) if args.box else None,
                        sites=args.sites, size_mm=args.size_mm, normal_only=args.normal_only, seed=args.seed,
                        feather_px=args.feather_px, fmt=args.fmt, key=args.key, limit=args.limit)
    result = edit(args.prepared, args.out, config)
    skipped = f" ({result.skipped} skipped)" if result.skipped else ""
    print(f"edited {result.edited} film(s) into {result.out}{skipped}")
    for rej in result.rejected:
        print(f"  rejected: {rej['reason']}", file=sys.stderr)
    if result.rejected:
        print(f"{len(result.rejected)} film(s) rejected; see {result.out}/rejects.jsonl", file=sys.stderr)
        return 3 if result.edited or result.skipped else 1
    return 0
