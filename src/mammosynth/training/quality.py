"""A cheap quality score for choosing ``best.pt``: Fréchet distance of random-conv texture
features between a fixed real batch and a fixed-latent generated batch.

Features: a fixed (seed 0), untrained 3-layer conv net (5x5 s2 -> 3x3 s2 -> 3x3 s2, ReLU,
16/32/32 channels) on the image resized to 64 rows; per channel the spatial mean and
standard deviation of every layer (160 numbers) plus a 16-bin intensity histogram.
Random conv features track texture and intensity statistics well enough to tell a
collapsed or diverged generator from a healthy one (:data:`BEST_SLACK`), not to rank the
healthy checkpoints of one run, nor to compare runs or models (use FRD and the realism
measures for that). Costs well under a second per evaluation at 128 px on a CPU.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from torch import nn


class RandomConvFeatures(nn.Module):
    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        shapes = [(16, 1, 5), (32, 16, 3), (32, 32, 3)]
        self.weights = [torch.randn(o, i, k, k, generator=g) / (i * k * k) ** 0.5 for o, i, k in shapes]

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().cpu()
        h = max(16, min(64, x.shape[-2]))
        x = F.interpolate(x, size=(h, max(8, round(x.shape[-1] * h / x.shape[-2]))), mode="area")
        hist = torch.stack([torch.histc(xi, bins=16, min=-1, max=1) / xi.numel() for xi in x])
        feats = [hist]
        for i, w in enumerate(self.weights):
            x = F.relu(F.conv2d(x, w, stride=2, padding=w.shape[-1] // 2))
            feats += [x.mean(dim=(2, 3)), x.std(dim=(2, 3))]
        return torch.cat(feats, 1)


def frechet_distance(a: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to feature rows of ``a`` and ``b``."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1 = np.cov(a, rowvar=False) + eps * np.eye(a.shape[1])
    s2 = np.cov(b, rowvar=False) + eps * np.eye(b.shape[1])
    covmean = np.real(linalg.sqrtm(s1 @ s2))
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


class QualityScore:
    """Holds the fixed real features; ``__call__(fakes)`` -> Fréchet distance (lower is better)."""

    def __init__(self, reals: torch.Tensor):
        self.net = RandomConvFeatures()
        self.real = self.net(reals).double().numpy()

    def __call__(self, fakes: torch.Tensor) -> float:
        return frechet_distance(self.real, self.net(fakes).double().numpy())


#: a snapshot becomes ``best.pt`` unless its score exceeds this multiple of the lowest so far.
#: The score is a guard against a collapsed or diverged generator, not a ranking of healthy
#: checkpoints: between snapshots of one healthy run it moves by up to 2.5x either way (128
#: images, 160 features, at 64 rows) while the tissue keeps improving with the images trained.
#: Ranked as "lower is better" (within 10 %), it kept a checkpoint from a third or two thirds
#: of the way through in 25 of 69 ten-minute runs, and 10 of 12 of those, re-scored, read
#: better at their last (the realism log, "Stop 51"). A generator that draws four
#: films over and over scores ~9x the real-vs-real distance, one film ~27x.
BEST_SLACK = 3.0


def replaces_best(score: float | None, best: float, slack: float = BEST_SLACK) -> bool:
    """Whether a snapshot with quality ``score`` becomes ``best.pt``, given the lowest score
    so far ``best`` (inf before the first): yes unless it is above ``slack`` times ``best``
    (or missing). The caller keeps ``best`` as the minimum, so a slow drift upwards is still
    bounded by the lowest score the run reached."""
    return score is not None and math.isfinite(score) and score <= best * slack
