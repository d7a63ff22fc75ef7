"""mammosynth.report: the evaluation protocol and its outputs (HTML report, metrics.json,
dataset card). :func:`evaluate` runs everything; see :mod:`.evaluate`."""
from __future__ import annotations

from .evaluate import REPORT_FILES, EvaluateConfig, evaluate

__all__ = ["evaluate", "EvaluateConfig", "REPORT_FILES"]
