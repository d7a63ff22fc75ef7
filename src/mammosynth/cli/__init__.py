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
COMMAND_MODULES = ["ingest", "phantom", "train", "generate", "edit", "evaluate", "provenance", "serve", "study",
                   "demo"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command killed by a closed pipe


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
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit where it cannot be caught
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"mammosynth {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print(f"mammosynth {args.command}: interrupted; finished work is kept, rerun to continue", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    """The error as one line: an OSError as ``path: reason`` (not ``[Errno 20] ...``)."""
    if isinstance(exc, OSError) and type(exc).__str__ is OSError.__str__ and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        text = f"{where}{exc.strerror}" + (f" -> {exc.filename2}" if exc.filename2 else "")
    else:
        text = str(exc)
    return " ".join(text.split()) if "\n" in text else text


def _quiet_broken_pipe() -> int:
    """The reader went away (``mammosynth verify SET | head -1``): stop quietly. stdout is
    pointed at /dev/null so the interpreter's final flush does not fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a replaced sys.stdout without a descriptor
        pass
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
