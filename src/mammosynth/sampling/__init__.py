"""Sampling: the diffusers-style pipelines (:class:`GanPipeline`, :class:`DiffusionPipeline`,
both from :func:`load_pipeline`) and :func:`generate` (``mammosynth generate``).

>>> from mammosynth.sampling import GanPipeline, generate, GenerateConfig   # doctest: +SKIP
>>> pipe = GanPipeline.from_pretrained("runs/00001-phantom")                 # doctest: +SKIP
>>> out = pipe(n=4, density="D", finding="mass", seed=0)                     # doctest: +SKIP
>>> out = pipe(n=4, seed=0, shape_gate=ShapeGateConfig())  # redraw broken outlines  # doctest: +SKIP
>>> generate("runs/00001-phantom", 200, "synth", GenerateConfig(mix={"finding": "mass:0.3,none:0.7"}))  # doctest: +SKIP
"""
from __future__ import annotations

from .generate import GenerateConfig, generate
from .mix import LABEL_SCHEME, labels_for, resolve_mix
from .pipeline import GanPipeline, GanPipelineOutput, Pipeline, PipelineOutput, load_pipeline
from .shape_gate import ShapeGateConfig, ShapeReference, reference_from_dataset


def __getattr__(name: str):  # DiffusionPipeline imports diffusers: only when asked for
    if name == "DiffusionPipeline":
        from .diffusion import DiffusionPipeline

        return DiffusionPipeline
    raise AttributeError(name)


__all__ = ["GanPipeline", "GanPipelineOutput", "DiffusionPipeline", "Pipeline", "PipelineOutput", "load_pipeline",
           "GenerateConfig", "generate", "LABEL_SCHEME", "labels_for", "resolve_mix", "ShapeGateConfig",
           "ShapeReference", "reference_from_dataset"]
