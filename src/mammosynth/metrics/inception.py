"""InceptionV3 features for FID/KID from a LOCAL TorchScript file (nothing is downloaded).

Accepted file: the TorchScript InceptionV3 used by StyleGAN2-ADA, StyleGAN3 and clean-fid,
``inception-2015-12-05.pt`` (the original TensorFlow FID graph, ported). It is loaded with
``torch.jit.load(path)`` and called as ``model(images, return_features=True)`` on uint8
images ``[N, 3, 299, 299]`` (values 0..255), returning the 2048-d pool features ``[N, 2048]``.
Mammograms (single channel) are resized to 299x299 (bilinear, as clean-fid's "legacy"
resize would) and repeated on the three channels.

Any problem (no path, missing file, unloadable file, a call that fails or returns the wrong
shape or non-finite values) raises :class:`~mammosynth.metrics.MetricUnavailable` with the
reason; callers report the metric as not computed, never a made-up value.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import MetricUnavailable
from .cache import FeatureCache, cache_key
from .features import resize01, select_indices

INCEPTION_SIZE = 299
INCEPTION_DIM = 2048
EXPECTED_FILE = "inception-2015-12-05.pt"


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def load_inception(path: str | os.PathLike | None) -> Any:
    """The TorchScript model at ``path`` (CPU, eval mode) or MetricUnavailable with why."""
    if path is None:
        raise MetricUnavailable(f"no InceptionV3 weights given (pass a local {EXPECTED_FILE}; nothing is downloaded)")
    p = Path(path).expanduser()
    if not p.is_file():
        raise MetricUnavailable(f"{p}: InceptionV3 weights file not found")
    import torch

    try:
        model = torch.jit.load(str(p), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError/ValueError/zip errors for bad files
        raise MetricUnavailable(f"{p}: not a loadable TorchScript file ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    model.eval()
    return model


def to_inception_input(img: np.ndarray) -> np.ndarray:
    """A grayscale image -> uint8 ``[3, 299, 299]``."""
    x = resize01(img, (INCEPTION_SIZE, INCEPTION_SIZE))
    u8 = np.rint(x * 255.0).astype(np.uint8)
    return np.repeat(u8[None], 3, axis=0)


def run_inception(model: Any, batch_u8: np.ndarray, path: str | os.PathLike = "model") -> np.ndarray:
    """Features ``[N, 2048]`` of a uint8 batch ``[N, 3, 299, 299]``; validates the output."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(batch_u8))
    try:
        with torch.no_grad():
            out = model(x, return_features=True)
    except Exception as exc:
        raise MetricUnavailable(f"{path}: calling the model with return_features=True failed "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if not isinstance(out, torch.Tensor):
        raise MetricUnavailable(f"{path}: model returned {type(out).__name__}, expected a tensor")
    feats = out.detach().to(torch.float64).cpu().numpy()
    if feats.shape != (len(batch_u8), INCEPTION_DIM):
        raise MetricUnavailable(f"{path}: model returned shape {tuple(feats.shape)}, expected "
                                f"({len(batch_u8)}, {INCEPTION_DIM}); is this {EXPECTED_FILE}?")
    if not np.isfinite(feats).all():
        raise MetricUnavailable(f"{path}: model returned NaN or infinite features")
    return feats


def inception_features(ds: Any, weights: str | os.PathLike, max_images: int | None = None, seed: int = 0,
                       cache: FeatureCache | None = None, batch: int = 32, model: Any = None,
                       desc: str = "inception") -> np.ndarray:
    """InceptionV3 pool features ``[N, 2048]`` of a prepared dataset, cached by content and weights."""
    from ..utils import progress

    if model is None:
        model = load_inception(weights)
    idx = select_indices(len(ds), max_images, seed)
    key = cache_key(kind="inception", weights=file_sha256(weights), size=INCEPTION_SIZE, content=ds.content_hash,
                    indices=hashlib.sha256(idx.astype(np.int64).tobytes()).hexdigest()[:16])
    if cache is not None:
        hit = cache.load(key)
        if hit is not None and hit["features"].shape == (len(idx), INCEPTION_DIM):
            return hit["features"]
    from .images import as_eval_images

    imgs = as_eval_images(ds)
    out = []
    for s in progress(range(0, len(idx), batch), total=(len(idx) + batch - 1) // batch, desc=desc, unit="batch"):
        chunk = np.stack([to_inception_input(imgs.image(int(i))) for i in idx[s:s + batch]])
        out.append(run_inception(model, chunk, weights))
    feats = np.concatenate(out)
    if cache is not None:
        cache.save(key, {"features": feats})
    return feats
