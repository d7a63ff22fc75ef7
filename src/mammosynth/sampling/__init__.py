"""Sampling: the diffusers-style :class:`GanPipeline` and :func:`generate` (``mammosynth generate``).

>>> from mammosynth.sampling import GanPipeline, generate, GenerateConfig   # doctest: +SKIP
>>> pipe = GanPipeline.from_pretrained("runs/00001-phantom")                 # doctest: +SKIP
>>> out = pipe(n=4, density="D", finding="mass", seed=0)                     # doctest: +SKIP
>>> generate("runs/00001-phantom", 200, "synth", GenerateConfig(mix={"finding": "mass:0.3,none:0.7"}))  # doctest: +SKIP
"""
from __future__ import annotations

from .generate import GenerateConfig, generate
from .mix import LABEL_SCHEME, labels_for, resolve_mix
from .pipeline import GanPipeline, GanPipelineOutput

__all__ = ["GanPipeline", "GanPipelineOutput", "GenerateConfig", "generate", "LABEL_SCHEME", "labels_for",
           "resolve_mix"]
