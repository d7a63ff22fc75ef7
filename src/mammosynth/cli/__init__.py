"""The ``mammosynth`` command line: a thin layer over the public Python functions.

Each sub-module registers its commands with ``register(subparsers)``; every command's
handler returns an exit code (0 success, 1 failure, 3 partial success).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from .. import __version__

# module -> commands it registers, in the order shown by --help
COMMAND_MODULES = ["ingest", "phantom", "train", "generate", "edit", "evaluate", "provenance", "demo"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mammosynth",
        description="Synthetic mammograms: ingest, phantom, train, generate, evaluate, mark and verify.",
    )
    parser.add_argument("--version", action="version", version=f"mammosynth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        modname = f"{__name__}.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError, RuntimeError) as exc:
        print(f"mammosynth {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print(f"mammosynth {args.command}: interrupted; finished work is kept, rerun to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
