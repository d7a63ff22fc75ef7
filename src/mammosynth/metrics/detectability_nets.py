"""The two classifiers of the detectability test (:mod:`.detectability`) and their training:
the crop network (texture: native-resolution windows centred in the breast) and the
whole-image network (layout). The protocol around them (folds, balance, the floor, the
verdict) lives in :mod:`.detectability`; this module only builds, trains and scores CNNs.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from ..utils import fit_one_cycle, num_workers

if TYPE_CHECKING:
    from .detectability import DetectabilityConfig


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """``threads`` torch threads inside, the caller's count restored after; None: the
    caller's count (it used to mean every core, which overrode ``evaluate --threads``)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(old if threads is None else num_workers(threads))
    try:
        yield
    finally:
        torch.set_num_threads(old)


# -- crops -------------------------------------------------------------------------------
class CropCentres:
    """Candidate crop centres per image: its mask pixels (every pixel for an empty mask),
    flattened into one array with offsets so a centre is drawn with two integers."""

    def __init__(self, masks: np.ndarray):
        n, h, w = masks.shape
        flat = masks.reshape(n, -1)
        empty = ~flat.any(1)
        flat = flat | empty[:, None]
        self.counts = flat.sum(1)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        self.pixels = np.flatnonzero(flat) % (h * w)
        self.width = w

    def draw(self, idx: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(y, x) centres of images ``idx`` for uniforms ``u`` in [0, 1)."""
        k = self.offsets[idx] + np.minimum((u * self.counts[idx]).astype(np.int64), self.counts[idx] - 1)
        p = self.pixels[k]
        return p // self.width, p % self.width


def windows(x, idx, cy, cx, crop: tuple[int, int]):
    """[B, 1, ch, cw] windows of ``x`` [N, H, W] (torch) centred on (cy, cx), moved
    inside the image where they would cross its edge."""
    import torch

    ch, cw = crop
    h, w = x.shape[1:]
    top = np.clip(np.asarray(cy) - ch // 2, 0, h - ch)
    left = np.clip(np.asarray(cx) - cw // 2, 0, w - cw)
    return torch.stack([x[i, t:t + ch, l:l + cw] for i, t, l in zip(np.asarray(idx), top, left)]).unsqueeze(1)


def score_grid(masks: np.ndarray, crop: tuple[int, int], n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per image the (y, x) centres of its scoring crops: a grid with a quarter-crop
    step, the nodes inside the breast (up to ``n``, evenly spread over them); the mask's
    centroid (the image centre for an empty mask) when no node is inside. Fixed, no seed."""
    _, h, w = masks.shape
    sy, sx = max(1, crop[0] // 4), max(1, crop[1] // 4)
    gy, gx = np.meshgrid(np.arange(sy // 2, h, sy), np.arange(sx // 2, w, sx), indexing="ij")
    gy, gx = gy.ravel(), gx.ravel()
    out = []
    for m in masks:
        inside = np.flatnonzero(m[gy, gx])
        if len(inside) == 0:
            ys, xs = np.nonzero(m)
            c = (np.array([int(ys.mean())]), np.array([int(xs.mean())])) if len(ys) else (
                np.array([h // 2]), np.array([w // 2]))
            out.append(c)
            continue
        pick = inside[np.unique(np.linspace(0, len(inside) - 1, min(n, len(inside))).round().astype(int))]
        out.append((gy[pick], gx[pick]))
    return out


# -- the classifiers ---------------------------------------------------------------------
def build_texture_cnn(channels: Sequence[int] = (16, 32, 64), stem: int = 0):
    """Optional stride-1 3x3 conv-BN-ReLU stem (``stem`` channels), stride-2 3x3
    conv-BN-ReLU blocks, global average pooling, one logit."""
    import torch.nn as nn

    layers: list[nn.Module] = []
    c_in = 1
    for c, stride in ([(stem, 1)] if stem else []) + [(c, 2) for c in channels]:
        layers += [nn.Conv2d(c_in, c, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c),
                   nn.ReLU(inplace=True)]
        c_in = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 1)]
    return nn.Sequential(*layers)


def shift_batch(xb, shift: int, gen):
    """Each image translated by up to ``shift`` px in x and y (zero fill)."""
    import torch
    import torch.nn.functional as F

    if shift <= 0:
        return xb
    n, _, h, w = xb.shape
    padded = F.pad(xb, (shift, shift, shift, shift))
    off = torch.randint(0, 2 * shift + 1, (n, 2), generator=gen).tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(off)])


def batch_indices(y: np.ndarray, bs: int, balance: str, rng: np.random.Generator) -> np.ndarray:
    """Indices into ``y`` of one training batch: half positives, half negatives (drawn
    with replacement) unless ``balance`` is "none"."""
    if balance == "none":
        return rng.integers(0, len(y), bs)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    return np.concatenate([pos[rng.integers(0, len(pos), bs // 2)], neg[rng.integers(0, len(neg), bs - bs // 2)]])


def fit(model, batches, steps: int, config: "DetectabilityConfig", desc: str, show: bool):
    """AdamW, one-cycle schedule, ``steps`` steps of BCE on ``batches()`` -> (x, y)."""
    import torch.nn.functional as F

    def step_loss():
        xb, yb = batches()
        return F.binary_cross_entropy_with_logits(model(xb).squeeze(1), yb)

    return fit_one_cycle(model, step_loss, steps, config.lr, config.weight_decay, desc,
                         disable=None if show else True)


def train_crop_net(xt, y: np.ndarray, centres: CropCentres, crop: tuple[int, int], config: "DetectabilityConfig",
                 seed: int, desc: str, show: bool):
    """The crop network on random native-resolution crops centred in the breast, half of
    them flipped upside down (texture statistics do not care; no resampling or blur)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    yt = torch.from_numpy(y.astype(np.float32))
    bs = config.batch_size

    def batches():
        idx = batch_indices(y, bs, config.balance, rng)
        xb = windows(xt, idx, *centres.draw(idx, rng.random(len(idx))), crop)
        flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
        xb = torch.where(flip[:, None, None, None], xb.flip(2), xb)
        return xb, yt[idx]

    return fit(build_texture_cnn(config.channels, config.stem), batches, config.steps, config, desc, show)


def train_whole_net(xt, y: np.ndarray, config: "DetectabilityConfig", seed: int, desc: str, show: bool):
    """The whole-image network (layout: where the breast, the pectoral muscle, bright
    structures lie), with random shifts of up to ``shift`` px."""
    import torch

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    yt = torch.from_numpy(y.astype(np.float32))

    def batches():
        idx = batch_indices(y, config.batch_size, config.balance, rng)
        return shift_batch(xt[idx].unsqueeze(1), config.shift, gen), yt[idx]

    return fit(build_texture_cnn(config.channels), batches, config.whole_steps, config, desc, show)


def crop_scores(model, xt, grid: list[tuple[np.ndarray, np.ndarray]], crop: tuple[int, int],
                 batch_size: int = 256) -> np.ndarray:
    """Per image the mean logit of its scoring crops."""
    import torch

    idx = np.concatenate([np.full(len(g[0]), i) for i, g in enumerate(grid)])
    cy = np.concatenate([g[0] for g in grid])
    cx = np.concatenate([g[1] for g in grid])
    out = []
    with torch.no_grad():
        for s in range(0, len(idx), batch_size):
            sl = slice(s, s + batch_size)
            out.append(model(windows(xt, idx[sl], cy[sl], cx[sl], crop)).squeeze(1).double().numpy())
    logits = np.concatenate(out)
    return np.bincount(idx, logits, minlength=len(grid)) / np.bincount(idx, minlength=len(grid))


def whole_scores(model, xt, batch_size: int = 256) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.concatenate([model(xt[s:s + batch_size].unsqueeze(1)).squeeze(1).double().numpy()
                               for s in range(0, len(xt), batch_size)])
