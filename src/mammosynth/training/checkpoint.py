"""Lossless, validated, atomically written checkpoints.

File format: ``torch.save`` of ``{"format": FORMAT, "sha256": hex, "payload": uint8
tensor}`` where ``payload`` holds the ``torch.save`` bytes of the checkpoint dict and
``sha256`` is their digest. Everything is tensors and primitive types, so
``torch.load(path, weights_only=True)`` reads it without unpickling classes. A file
is written to a temporary name and renamed into place; :func:`load_checkpoint` refuses
a truncated or corrupt file with a ValueError naming it.

A run's ``checkpoints/`` holds ``ckpt-<kimg>.pt`` (the last ``keep``) and ``best.pt``
(the latest snapshot whose quality score reads no collapse; see :mod:`mammosynth.training.quality`).
"""
from __future__ import annotations

import hashlib
import io
import os
import random
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..utils import atomic_file

FORMAT = "mammosynth.checkpoint/1"
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's zip container
CKPT_RE = re.compile(r"^ckpt-(\d+\.\d+)\.pt$")
REQUIRED = ("config", "step", "kimg", "nimg", "label_axes", "label_freq", "dataset")
#: the networks a checkpoint of each kind of family holds
NETWORKS = {"gan": ("G", "D", "G_ema"), "diffusion": ("unet", "unet_ema")}


def checkpoint_name(nimg: int) -> str:
    """``ckpt-000012.345.pt`` for 12 345 images: sorts by training progress."""
    return f"ckpt-{nimg / 1000:010.3f}.pt"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically with an embedded SHA-256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    raw = buf.getvalue()
    outer = {"format": FORMAT, "sha256": hashlib.sha256(raw).hexdigest(),
             "payload": torch.frombuffer(bytearray(raw), dtype=torch.uint8)}
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        torch.save(outer, f)
        f.flush()
        os.fsync(f.fileno())  # a checkpoint must survive a power cut, not only a crash
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and validate a checkpoint; ValueError naming the file if it is corrupt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise ValueError(f"{path}: not a checkpoint: empty file (an interrupted write?)")
    if head != ZIP_MAGIC:
        raise ValueError(f"{path}: not a checkpoint (a mammosynth checkpoint is a PyTorch zip file; "
                         f"this one starts with {head!r})")
    try:
        outer = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, garbage bytes...
        raise ValueError(f"{path}: corrupt or truncated checkpoint ({_first_line(exc)})") from None
    if not isinstance(outer, dict) or outer.get("format") != FORMAT or "payload" not in outer:
        raise ValueError(f"{path}: not a mammosynth checkpoint (expected format {FORMAT})")
    raw = outer["payload"].numpy().tobytes()
    if hashlib.sha256(raw).hexdigest() != outer.get("sha256"):
        raise ValueError(f"{path}: corrupt checkpoint (SHA-256 of the payload does not match)")
    try:
        state = torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: corrupt checkpoint payload ({_first_line(exc)})") from None
    family = (state.get("config") or {}).get("model", {}).get("family") if isinstance(state, dict) else None
    missing = [k for k in (*REQUIRED, *NETWORKS["diffusion" if family == "diffusion" else "gan"]) if k not in state]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {missing}")
    return state


def _first_line(exc: BaseException) -> str:
    """``Type: first line`` of an exception (torch's messages run to many lines)."""
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__


def describe_state_mismatch(module: torch.nn.Module, state: dict[str, Any], limit: int = 3) -> str:
    """Which tensors of ``state`` do not fit ``module`` (shape, missing, unexpected), in one
    line, for "config and weights disagree" errors instead of torch's raw ``size mismatch``."""
    own = module.state_dict()
    shapes = [f"{k} is {list(v.shape)} in the weights but {list(own[k].shape)} in the config"
              for k, v in state.items() if k in own and hasattr(v, "shape") and v.shape != own[k].shape]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    parts = []
    for what, items in (("shape differs", shapes), ("missing from the weights", missing),
                        ("not in the model", unexpected)):
        if items:
            more = f" and {len(items) - limit} more" if len(items) > limit else ""
            parts.append(f"{len(items)} tensor(s) {what}: " + "; ".join(items[:limit]) + more)
    return ". ".join(parts) or "the weights do not load into the model"


def remove_stale_temporaries(run_dir: str | os.PathLike) -> list[Path]:
    """Delete what a killed checkpoint write left in the run's ``checkpoints/`` (zero-byte or
    partial temporaries); says so on stderr. Call only when no process writes this run."""
    from ..utils import remove_temporaries

    removed = remove_temporaries(Path(run_dir) / "checkpoints")
    if removed:
        names = ", ".join(p.name for p in removed[:3]) + (" ..." if len(removed) > 3 else "")
        print(f"mammosynth: removed {len(removed)} stale temporary file(s) of an interrupted checkpoint "
              f"write: {names}", file=sys.stderr)
    return removed


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Periodic checkpoints of a run, newest (most images) first."""
    d = Path(run_dir) / "checkpoints"
    if not d.is_dir():
        return []
    found = [(float(m.group(1)), p) for p in d.iterdir() if (m := CKPT_RE.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def find_checkpoint(run_dir: str | os.PathLike, which: str = "best", validate: bool = True) -> Path:
    """The run's ``best`` or ``latest`` checkpoint.

    With ``validate`` (default) a corrupt file is skipped with a warning on stderr and
    the previous one is returned; ``best`` falls back to ``latest`` when no valid
    ``best.pt`` exists, and ``latest`` to a valid ``best.pt`` (an older but complete state)
    when every periodic checkpoint is corrupt. ``run_dir`` may also be a checkpoint file
    (returned as is).
    """
    run_dir = Path(run_dir)
    if which not in ("best", "latest"):
        raise ValueError(f"which must be 'best' or 'latest', got {which!r}")
    if run_dir.is_file():
        return run_dir
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: run directory not found")
    candidates = list_checkpoints(run_dir)
    best = run_dir / "checkpoints" / "best.pt"
    candidates = [best, *candidates] if which == "best" else [*candidates, best]
    for p in candidates:
        if not p.is_file():
            continue
        if not validate:
            return p
        try:
            load_checkpoint(p)
            if which == "latest" and p == best and len(candidates) > 1:
                print(f"warning: every periodic checkpoint of {run_dir} is corrupt; using {p} "
                      "(the best state so far, older than the lost ones)", file=sys.stderr)
            return p
        except ValueError as exc:
            print(f"warning: skipping {exc}", file=sys.stderr)
    raise FileNotFoundError(f"{run_dir}: no valid checkpoint in {run_dir / 'checkpoints'}")


def prune_checkpoints(run_dir: str | os.PathLike, keep: int) -> None:
    """Delete all but the newest ``keep`` periodic checkpoints (best.pt is kept)."""
    for p in list_checkpoints(run_dir)[keep:]:
        p.unlink(missing_ok=True)


# -- random number generator states (tensors and primitives only) ----------------------
def rng_state() -> dict[str, Any]:
    """Every RNG state of this process: python, numpy, torch CPU and CUDA."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    py_version, py_state, py_gauss = random.getstate()
    return {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    v, s, g = state["python"]
    random.setstate((v, tuple(s), g))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state.get("cuda"):
        torch.cuda.set_rng_state_all(state["cuda"])
