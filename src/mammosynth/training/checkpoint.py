"""Lossless, validated, atomically written checkpoints.

File format: ``torch.save`` of ``{"format": FORMAT, "sha256": hex, "payload": uint8
tensor}`` where ``payload`` holds the ``torch.save`` bytes of the checkpoint dict and
``sha256`` is their digest. Everything is tensors and primitive types, so
``torch.load(path, weights_only=True)`` reads it without unpickling classes. A file
is written to a temporary name and renamed into place; :func:`load_checkpoint` refuses
a truncated or corrupt file with a ValueError naming it.

A run's ``checkpoints/`` holds ``ckpt-<kimg>.pt`` (the last ``keep``) and ``best.pt``
(the lowest quality score so far; see :mod:`mammosynth.training.quality`).
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
    try:
        outer = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, garbage bytes...
        raise ValueError(f"{path}: corrupt or truncated checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(outer, dict) or outer.get("format") != FORMAT or "payload" not in outer:
        raise ValueError(f"{path}: not a mammosynth checkpoint (expected format {FORMAT})")
    raw = outer["payload"].numpy().tobytes()
    if hashlib.sha256(raw).hexdigest() != outer.get("sha256"):
        raise ValueError(f"{path}: corrupt checkpoint (SHA-256 of the payload does not match)")
    try:
        state = torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: corrupt checkpoint payload ({type(exc).__name__}: {exc})") from None
    family = (state.get("config") or {}).get("model", {}).get("family") if isinstance(state, dict) else None
    missing = [k for k in (*REQUIRED, *NETWORKS["diffusion" if family == "diffusion" else "gan"]) if k not in state]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {missing}")
    return state


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
    ``best.pt`` exists. ``run_dir`` may also be a checkpoint file (returned as is).
    """
    run_dir = Path(run_dir)
    if which not in ("best", "latest"):
        raise ValueError(f"which must be 'best' or 'latest', got {which!r}")
    if run_dir.is_file():
        return run_dir
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: run directory not found")
    candidates = list_checkpoints(run_dir)
    if which == "best":
        candidates = [run_dir / "checkpoints" / "best.pt", *candidates]
    for p in candidates:
        if not p.is_file():
            continue
        if not validate:
            return p
        try:
            load_checkpoint(p)
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
