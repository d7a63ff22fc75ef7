"""GAN training: :class:`TrainConfig` and :func:`train` (resumable, multi-process).

>>> from mammosynth.training import TrainConfig, preset_config, train  # doctest: +SKIP
>>> run_dir = train("prepared:train", "runs", TrainConfig(minutes=5))  # doctest: +SKIP
>>> config = preset_config("gpu", model={"resolution": (512, 320)}, minutes=60)  # doctest: +SKIP
"""
from __future__ import annotations

from .config import TRAIN_DEFAULTS, TrainConfig
from .loop import plan, train
from .presets import PRESETS, preset_config

__all__ = ["TrainConfig", "TRAIN_DEFAULTS", "PRESETS", "preset_config", "train", "plan"]
