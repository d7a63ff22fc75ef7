"""mammosynth: expand scarce mammography repositories with synthetic mammograms,
and prove whether they are fit to use.

Stages (data flows one way): ``io`` -> ``data`` -> ``phantom`` -> ``models`` ->
``training`` / ``sampling`` -> ``metrics`` -> ``report``, with ``provenance`` and
``cli`` at the edges. Heavy modules (torch, metrics) load on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily so `import mammosynth` is cheap)
_EXPORTS = {
    "ImageRecord": "mammosynth.data.schema",
    "Finding": "mammosynth.data.schema",
    "PreparedDataset": "mammosynth.data.prepared",
    "DatasetWriter": "mammosynth.data.prepared",
    "ingest": "mammosynth.data.ingest",
    "IngestConfig": "mammosynth.data.ingest",
    "PreprocessConfig": "mammosynth.data.preprocess",
    "contact_sheet": "mammosynth.data.contact_sheet",
    "make_phantom_dataset": "mammosynth.phantom",
    "PhantomConfig": "mammosynth.phantom",
    "TrainConfig": "mammosynth.training",
    "train": "mammosynth.training",
    "GanPipeline": "mammosynth.sampling",
    "DiffusionPipeline": "mammosynth.sampling",
    "load_pipeline": "mammosynth.sampling",
    "generate": "mammosynth.sampling",
    "GenerateConfig": "mammosynth.sampling",
    "evaluate": "mammosynth.report",
    "EvaluateConfig": "mammosynth.report",
    "run_demo": "mammosynth.demo",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mammosynth' has no attribute {name!r}")
