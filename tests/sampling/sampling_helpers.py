"""Helpers for sampling tests: a tiny real generator (mammosynth.models)."""
from __future__ import annotations

import numpy as np
import torch

from mammosynth.models import ModelConfig, build_generator

FREQ = {"density": {"A": 0.1, "B": 0.4, "C": 0.4, "D": 0.1},
        "finding": {"none": 0.8, "mass": 0.1, "calcification": 0.1}, "view": {"CC": 0.5, "MLO": 0.5}}
#: Images of one index from batches of different sizes agree up to float rounding.
BATCH_TOLERANCE = 64  # uint16 steps (0.1 % of the range); wrong latents/labels differ by ~30000


def tiny_model_config() -> dict:
    return ModelConfig.for_family("fastgan", resolution=(16, 16), condition=("density", "finding", "view"),
                                  z_dim=8, g_channels=4, max_channels=16, embed_dim=4).to_dict()


def tiny_generator(seed: int = 0):
    """A 16x12 FastGAN generator with large random weights (an untrained one is near-constant)."""
    torch.manual_seed(seed)
    g = build_generator(tiny_model_config())
    with torch.no_grad():
        for p in g.parameters():
            p.normal_(0.0, 0.3)
    return g


def assert_close_u16(a, b, tol: int = BATCH_TOLERANCE) -> None:
    diff = np.abs(np.asarray(a).astype(np.int64) - np.asarray(b).astype(np.int64))
    assert diff.max() <= tol, f"max difference {diff.max()} > {tol}"

