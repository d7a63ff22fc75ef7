"""Differentiable augmentation with an adaptive probability (DiffAugment, Zhao et al. 2020;
ADA, Karras et al. 2020).

Every operation is applied to each image independently with probability ``p`` and is
differentiable w.r.t. the image, so the same pipeline runs on reals and fakes, for D's
and for G's loss. No flips: every prepared breast has its chest wall on the left.

Operations (``AUGMENT_OPS``):
``translation`` integer shift up to 1/8 of each side (background fill: black, -1);
``scale`` isotropic zoom, lognormal with std 0.2 ln 2 (ADA's geometric scale);
``brightness`` add U(-0.25, 0.25); ``contrast`` multiply around the mean by U(0.6, 1.4);
``cutout`` one rectangle of a quarter of each side set to the image mean.

:func:`update_p` is ADA's controller: ``r_t = E[sign(D(real))]`` over the last few
steps; ``p`` grows when ``r_t`` exceeds the target (0.6) and shrinks otherwise, by at
most ``batch * interval / (ada_kimg * 1000)`` per adjustment.

All random draws come from the ``gen`` argument (a CPU ``torch.Generator``), so the
training loop can derive them from the step number (bit-identical resume).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

AUGMENT_OPS = ("translation", "scale", "brightness", "contrast", "cutout")


def parse_ops(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``"translation,cutout"`` -> validated tuple of op names (empty string: none)."""
    items = [s.strip() for s in text.split(",")] if isinstance(text, str) else [str(s) for s in text]
    items = [s for s in items if s]
    for s in items:
        if s not in AUGMENT_OPS:
            raise ValueError(f"unknown augmentation {s!r}; expected some of {AUGMENT_OPS}")
    return tuple(items)


def _rand(n: int, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen).to(device)


def augment(x: torch.Tensor, p: float, ops: tuple[str, ...], gen: torch.Generator | None = None) -> torch.Tensor:
    """Apply ``ops`` to a batch ``x`` [B, 1, H, W] in [-1, 1], each with probability ``p``.

    Random numbers are drawn even when ``p`` is 0, so the random stream does not depend
    on ``p``.
    """
    if not ops:
        return x
    b, _, h, w = x.shape
    dev = x.device
    if "translation" in ops or "scale" in ops:
        on_t = (_rand(b, gen, dev) < p).to(x.dtype)
        tx = torch.round((_rand(b, gen, dev) * 2 - 1) * (w // 8)) * on_t
        ty = torch.round((_rand(b, gen, dev) * 2 - 1) * (h // 8)) * on_t
        if "translation" not in ops:
            tx, ty = tx * 0, ty * 0
        on_s = (_rand(b, gen, dev) < p).to(x.dtype) if "scale" in ops else torch.zeros(b, device=dev, dtype=x.dtype)
        s = torch.exp(torch.randn(b, generator=gen).to(dev, x.dtype) * (0.2 * math.log(2)) * on_s)
        if bool((tx != 0).any() or (ty != 0).any() or (s != 1).any()):
            grid = _zoom_shift_grid(1 / s, -tx * 2 / w, -ty * 2 / h, h, w)
            x = F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
    if "brightness" in ops:
        on = (_rand(b, gen, dev) < p).to(x.dtype)
        x = x + ((_rand(b, gen, dev) - 0.5) * 0.5 * on).view(b, 1, 1, 1)
    if "contrast" in ops:
        on = (_rand(b, gen, dev) < p).to(x.dtype)
        f = 1 + (_rand(b, gen, dev) * 0.8 - 0.4) * on
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * f.view(b, 1, 1, 1) + mean
    if "cutout" in ops:
        on = (_rand(b, gen, dev) < p).to(x.dtype)
        ch, cw = max(1, h // 4), max(1, w // 4)
        cy = (_rand(b, gen, dev) * (h - ch + 1)).long().clamp(max=h - ch)
        cx = (_rand(b, gen, dev) * (w - cw + 1)).long().clamp(max=w - cw)
        yy = torch.arange(h, device=dev).view(1, h, 1)
        xx = torch.arange(w, device=dev).view(1, 1, w)
        box = ((yy >= cy.view(b, 1, 1)) & (yy < (cy + ch).view(b, 1, 1))
               & (xx >= cx.view(b, 1, 1)) & (xx < (cx + cw).view(b, 1, 1))).to(x.dtype)
        box = (box * on.view(b, 1, 1)).unsqueeze(1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = x * (1 - box) + mean * box
    return x


def _zoom_shift_grid(inv_s: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.affine_grid`` (align_corners False) of the maps ``theta = [[inv_s, 0, sx],
    [0, inv_s, sy]]``, ``[B, h, w, 2]``: a zoom and a shift need no matrix product per
    pixel (affine_grid's batched product with an inner size of 3 cost ~5 % of a training
    step on a CPU)."""
    b = inv_s.shape[0]
    xs = (torch.arange(w, device=inv_s.device, dtype=inv_s.dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=inv_s.device, dtype=inv_s.dtype) * 2 + 1) / h - 1
    gx = (xs[None, :] * inv_s[:, None] + sx[:, None])[:, None, :].expand(b, h, w)
    gy = (ys[None, :] * inv_s[:, None] + sy[:, None])[:, :, None].expand(b, h, w)
    return torch.stack([gx, gy], -1)


def update_p(p: float, rt: float, target: float, batch: int, interval: int, ada_kimg: float) -> float:
    """One ADA adjustment of ``p`` from the overfitting heuristic ``rt``; clamped to [0, 1]."""
    step = batch * interval / (ada_kimg * 1000.0)
    sign = 1.0 if rt > target else (-1.0 if rt < target else 0.0)
    return float(min(1.0, max(0.0, p + sign * step)))
