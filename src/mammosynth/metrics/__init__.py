"""mammosynth.metrics: image-level fidelity, diversity and memorisation metrics.

One module per metric (torch-fidelity / clean-fid style):

* :mod:`.features`     the weight-free "mammo-texture" descriptor and per-set extraction (+ cache)
* :mod:`.frechet`      Fréchet distance and KID on any feature matrix
* :mod:`.prdc`         precision / recall / density / coverage (Naeem et al. 2020)
* :mod:`.frd`          Fréchet Radiomics Distance (frd-score, v1 pipeline, cached real features)
* :mod:`.inception`    InceptionV3 features from a LOCAL TorchScript file (FID/KID)
* :mod:`.intensity`    intensity moments and histogram distances over breast pixels
* :mod:`.texture`      GLCM statistics
* :mod:`.labels`       label-distribution comparison
* :mod:`.diversity`    SSIM / MS-SSIM and intra-set diversity (mode-collapse warning)
* :mod:`.memorization` nearest-training-image search and near-copy flags
* :mod:`.fidelity`     :func:`compute_image_metrics`, the orchestrator
* :mod:`.realism`      :func:`realism_metrics`: detectability + spectrum + detail + local texture + outline, verdict, crop sheet
* :mod:`.detectability` classifier two-sample test (CNN, out-of-fold AUC) against a real-vs-real floor
* :mod:`.spectrum`     texture power-spectrum exponent beta of the breast interior
* :mod:`.detail`       fine-detail (Laplacian high-pass) energy of the breast interior
* :mod:`.local_texture` grain skewness / kurtosis, orientation coherence, grain anisotropy
* :mod:`.outline`      breast shapes unlike any real film, skin lines more jagged than real ones
* :mod:`.twosample`    mask erosion, strata and two-sample bootstrap shared by the realism measures
* :mod:`.cache`        the on-disk feature cache
* :mod:`.images`       :class:`~.images.EvalImages`: every image decoded once per evaluation
* :mod:`.result`       :class:`~.result.MetricResult`, the typed result of one metric

Every metric is a :class:`~.result.MetricResult`; a metric that cannot be computed is
``MetricResult.unavailable(reason)`` and is written as ``{"value": None, "available": False,
"reason": "..."}``; no metric returns NaN or infinity.
"""
from __future__ import annotations

import importlib
from typing import Any

from .result import MetricResult


class MetricUnavailable(Exception):
    """A metric cannot be computed here (missing package, weights, too few images...).

    ``reason`` is a short human-readable explanation that goes into the result dict.
    """

    def __init__(self, reason: str):
        self.reason = str(reason)
        super().__init__(self.reason)


_EXPORTS = {
    "compute_image_metrics": "mammosynth.metrics.fidelity",
    "ImageMetricsConfig": "mammosynth.metrics.fidelity",
    "frechet_distance": "mammosynth.metrics.frechet",
    "kernel_inception_distance": "mammosynth.metrics.frechet",
    "prdc": "mammosynth.metrics.prdc",
    "ms_ssim": "mammosynth.metrics.diversity",
    "ssim": "mammosynth.metrics.diversity",
    "describe_image": "mammosynth.metrics.features",
    "outline_features": "mammosynth.metrics.outline",
    "outline_comparison": "mammosynth.metrics.outline",
}

__all__ = ["MetricResult", "MetricUnavailable", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mammosynth.metrics' has no attribute {name!r}")
