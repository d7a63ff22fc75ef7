"""Resampled copies of the training films: more distinct films from a small repository.

A GAN trained on ~100 films sees each of them hundreds of times within ten minutes, and its
discriminator learns them by heart (ADA's p climbs; the realism log). Each copy made here is
a film as a second exposure of the same breast might have drawn it: the stored image warped
by a smooth random displacement (positioning and compression differ between exposures) and
its width scaled, then cropped to the breast and fitted to the training resolution at the
film's own scale, or smaller where the copy's breast would not fit the frame at it.

The warp runs at the stored resolution, which must be at least twice the training
resolution: the downsample that follows then keeps the copy as sharp as the film. A warp at
the training resolution would blur the fine texture the generator must learn (the bilinear
zoom among the augmentations did that; the realism log). Films stored smaller get no copies.

The displacement is zero at the chest wall (the film's left edge after ingest) and at the
top and bottom rows, so no copy pulls the breast off an edge it touches; the background
stays exactly 0, as the ingest wrote it. Copy ``j`` of film ``i`` is a pure function of
(the film, the run's seed, ``i``, ``j``), so a resumed run loads the same copies.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

#: the stored film must be at least this many times the training resolution per side
MIN_SCALE = 2.0


@dataclass(frozen=True)
class ResampleConfig:
    """How many copies per film, and how far they may differ from it."""

    copies: int = 4
    #: SD of the displacement at the control points, as a share of the film's height
    displacement: float = 0.02
    #: the copy's width is the film's times a factor drawn uniformly from 1 ± this
    width: float = 0.1
    #: control points of the smooth displacement (rows, columns)
    grid: tuple[int, int] = (5, 4)

    def __post_init__(self) -> None:
        if self.copies < 0:
            raise ValueError(f"copies must be >= 0, got {self.copies}")
        if not 0.0 <= self.displacement <= 0.1:
            raise ValueError(f"displacement must be in [0, 0.1] (a share of the height), got {self.displacement}")
        if not 0.0 <= self.width < 0.5:
            raise ValueError(f"width must be in [0, 0.5), got {self.width}")
        if len(self.grid) != 2 or min(self.grid) < 2:
            raise ValueError(f"grid must be (rows, cols), both >= 2, got {self.grid!r}")


def can_resample(shape: tuple[int, int], size: tuple[int, int]) -> bool:
    """Whether a film stored at ``shape`` is large enough for copies at ``size``."""
    return min(shape[0] / size[0], shape[1] / size[1]) >= MIN_SCALE


def _edge_ramp(n: int, share: float, both: bool) -> torch.Tensor:
    """1 inside, falling linearly to 0 over ``share`` of ``n`` at the first (and last) index."""
    pos = torch.arange(n, dtype=torch.float32)
    dist = torch.minimum(pos, n - 1 - pos) if both else pos
    return (dist / max(1.0, share * n)).clamp(0, 1)


def warp(film: torch.Tensor, config: ResampleConfig, gen: torch.Generator) -> torch.Tensor:
    """``film`` [H, W] in [0, 1] (chest wall left, background 0) warped by one smooth random
    displacement and one width factor, at its own resolution, in one bicubic resampling:
    [H, W'] in [0, 1]. The breast's edge is the warped edge of the film's own breast."""
    h, w = film.shape
    factor = 1.0 + (float(torch.rand((), generator=gen)) * 2 - 1) * config.width
    new_w = max(1, round(w * factor))
    gy, gx = config.grid
    # control-point displacements in pixels, smoothly interpolated over the copy
    ctrl = torch.randn(1, 2, gy, gx, generator=gen) * (config.displacement * h)
    d = F.interpolate(ctrl, size=(h, new_w), mode="bicubic", align_corners=True)[0]
    dy = d[0] * _edge_ramp(h, 0.1, both=True)[:, None]
    dx = d[1] * _edge_ramp(new_w, 0.1, both=False)[None, :]
    ys = torch.arange(h, dtype=torch.float32)[:, None] + dy
    xs = torch.arange(new_w, dtype=torch.float32)[None, :] / factor + dx
    # grid_sample's normalised coordinates (align_corners=True: -1 and 1 are pixel centres)
    grid = torch.stack([xs / max(1, w - 1) * 2 - 1, ys / max(1, h - 1) * 2 - 1], dim=-1)[None]
    src = torch.stack([film.float(), (film > 0).float()])[None]
    out = F.grid_sample(src, grid, mode="bicubic", padding_mode="zeros", align_corners=True)[0]
    # the breast where the film's breast lands; bicubic ringing outside it set back to 0
    return torch.where(out[1] >= 0.5, out[0].clamp(0, 1), torch.zeros(()))


def resampled_copies(film: torch.Tensor, size: tuple[int, int], config: ResampleConfig,
                     gen: torch.Generator) -> list[torch.Tensor]:
    """``config.copies`` copies of ``film`` ([H, W] in [0, 1] at its stored resolution), each
    fitted to ``size`` as :func:`~mammosynth.training.data.fit_unit` fits the film, returned
    as [1, h, w] in [-1, 1]. Empty when the film is stored below :data:`MIN_SCALE` times ``size``."""
    from .data import fit_unit

    if not can_resample(tuple(film.shape), size):
        return []
    # the film's own scale, unless the copy's breast is too wide or tall for the frame at it
    scale = min(size[0] / film.shape[0], size[1] / film.shape[1])
    return [fit_unit(content_box(warp(film, config, gen)), size, max_scale=scale) for _ in range(config.copies)]


def content_box(image: torch.Tensor) -> torch.Tensor:
    """``image`` cropped to the rows and columns that hold the breast (from column 0, the
    chest wall), so that a wider copy fits the frame as a wider breast does, and not as the
    same frame shrunk with empty rows above and below; an empty image as it is."""
    rows, cols = torch.nonzero(image.any(dim=1)).flatten(), torch.nonzero(image.any(dim=0)).flatten()
    if len(rows) == 0:
        return image
    return image[int(rows[0]):int(rows[-1]) + 1, :int(cols[-1]) + 1]


def resample_line(made: dict[str, int], size: tuple[int, int]) -> str:
    """What the resampled copies of the training films came to, for the log."""
    need = "x".join(str(int(MIN_SCALE * v)) for v in size)
    if not made["films_copied"]:
        return (f"resampled copies: none; the {made['films_too_small']} films are stored below {need} ({MIN_SCALE:g}x "
                f"the training resolution), and copies of them would blur (ingest at --size {need.replace('x', ' ')} "
                "or larger for them)")
    line = f"resampled copies: {made['copies']} ({made['per_film']} per film) of {made['films_copied']} films"
    if made["films_too_small"]:
        line += f"; {made['films_too_small']} films stored below {need} have none"
    return line


def copy_generator(seed: int, film: int) -> torch.Generator:
    """The generator of film ``film``'s copies in a run of ``seed``."""
    from .data import _mix

    return torch.Generator().manual_seed(_mix(seed, film, 0x5E5A))


__all__ = ["MIN_SCALE", "ResampleConfig", "can_resample", "content_box", "copy_generator", "resample_line", "resampled_copies", "warp"]
