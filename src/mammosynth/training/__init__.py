"""GAN training: :class:`TrainConfig` and :func:`train` (resumable, multi-process).

>>> from mammosynth.training import TrainConfig, train          # doctest: +SKIP
>>> run_dir = train("prepared:train", "runs", TrainConfig(minutes=5))  # doctest: +SKIP
"""
from __future__ import annotations

from .config import TRAIN_DEFAULTS, TrainConfig
from .loop import plan, train

__all__ = ["TrainConfig", "TRAIN_DEFAULTS", "train", "plan"]
