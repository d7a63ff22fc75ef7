"""All the state of a training run in one object: what a checkpoint holds and a resume restores.

:meth:`TrainerState.state_dict` gives the checkpoint's keys (the networks by name: ``G``,
``D``, ``G_ema`` for a GAN, ``unet``, ``unet_ema`` for diffusion; the optimisers; the
gradient scaler; the counters; every rank's RNG state; the family's extras such as ADA's
``p``) and :meth:`TrainerState.load_state_dict` restores exactly those, so the checkpoint and
the resume cannot drift apart. The names are the ones checkpoints have always used, so runs
written before this object existed load unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from .checkpoint import rng_state, set_rng_state


@dataclass
class TrainerState:
    nets: dict[str, torch.nn.Module]  # trained networks by checkpoint key
    ema: dict[str, str]  # averaged copy's key -> the trained network's key ("G_ema" -> "G")
    opts: dict[str, torch.optim.Optimizer]
    scaler: torch.amp.GradScaler
    #: the family's own state (floats, lists of floats): saved and restored as is
    extras: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    nimg: int = 0
    best_quality: float = math.inf
    elapsed_s: float = 0.0  # training time of earlier sessions
    #: every rank's RNG state at the last :meth:`gather_rng` (rank order)
    rngs: list[Any] = field(default_factory=list)

    def modules(self) -> list[torch.nn.Module]:
        return list(self.nets.values())

    def state_dict(self) -> dict[str, Any]:
        best = self.best_quality if math.isfinite(self.best_quality) else None
        return {
            **{k: m.state_dict() for k, m in self.nets.items()},
            **{k: o.state_dict() for k, o in self.opts.items()},
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            **self.extras,
            "step": self.step, "nimg": self.nimg, "kimg": self.nimg / 1000, "elapsed_s": self.elapsed_s,
            "best_quality": best, "rng": self.rngs,
        }

    def load_state_dict(self, state: dict[str, Any], rank: int = 0, world: int = 1) -> None:
        """Restore everything; this rank's RNG only when the run had as many ranks (a run
        resumed on another world size continues from fresh per-rank seeds)."""
        for k, m in self.nets.items():
            m.load_state_dict(state[k])
        for k, o in self.opts.items():
            o.load_state_dict(state[k])
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        for k, v in self.extras.items():
            if k in state:
                self.extras[k] = [float(x) for x in state[k]] if isinstance(v, list) else type(v)(state[k])
        self.step, self.nimg = int(state["step"]), int(state["nimg"])
        best = state.get("best_quality")
        self.best_quality = math.inf if best is None else float(best)
        self.elapsed_s = float(state.get("elapsed_s", 0.0))
        self.rngs = list(state.get("rng") or [])
        if len(self.rngs) == world:
            set_rng_state(self.rngs[rank])

    def gather_rng(self, info: Any) -> None:
        from . import distributed as D_

        self.rngs = D_.gather_objects(rng_state(), info)
