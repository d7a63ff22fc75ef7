"""Models that save and load themselves: ``config.json`` (their config) and
``model.safetensors`` (their weights), as diffusers' ``ModelMixin`` does.

>>> G.save_pretrained("g")                          # doctest: +SKIP
>>> G2 = FastGANGenerator.from_pretrained("g")      # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_state(module: torch.nn.Module, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """``module``'s state dict as safetensors, atomically (a temporary file renamed into place)."""
    from safetensors.torch import save_file

    from ..utils import atomic_file

    state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    with atomic_file(Path(path)) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", **(metadata or {})})


def load_state(module: torch.nn.Module, path: str | os.PathLike, what: str = "weights") -> torch.nn.Module:
    """Load safetensors ``path`` into ``module``; ValueError naming the file when it is
    unreadable or does not fit."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"{path}: cannot read {what} ({type(exc).__name__}: {exc})") from exc
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{path}: {what} do not fit the model config ({exc})") from exc
    return module


class SavableModel:
    """Mixin for modules with a ``config`` attribute (``to_dict`` / family): the network
    is rebuilt from its config with :func:`mammosynth.models.build_network`."""

    config: Any
    role: str = "generator"  # generator | discriminator

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        from .. import __version__
        from ..data.prepared import atomic_write_text

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_state(self, directory / WEIGHTS_NAME, {"mammosynth_version": __version__})  # type: ignore[arg-type]
        cfg = {"_class_name": type(self).__name__, "role": self.role, "mammosynth_version": __version__,
               **self.config.to_dict()}
        atomic_write_text(directory / CONFIG_NAME, json.dumps(cfg, indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> Any:
        from . import build_network
        from .config import model_config_from_dict

        directory = Path(directory)
        cfg_path = directory / CONFIG_NAME
        try:
            d = json.loads(cfg_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{cfg_path}: missing; {directory} is not a saved model") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{cfg_path}: not valid JSON ({exc})") from None
        role = d.pop("role", "generator")
        for k in ("_class_name", "mammosynth_version"):
            d.pop(k, None)
        net = build_network(model_config_from_dict(d), role)
        return load_state(net, directory / WEIGHTS_NAME)


def state_sha256(module: torch.nn.Module) -> str:
    """SHA-256 over a module's state dict (names, dtypes, shapes, bytes): a weights id."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def describe(module: Any) -> dict[str, Any]:
    return {"class": type(module).__name__, "parameters": sum(p.numel() for p in module.parameters())}
