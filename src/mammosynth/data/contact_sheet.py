"""Contact sheets: a grid of a prepared dataset's images with boxes and small captions.

>>> from mammosynth import contact_sheet                      # doctest: +SKIP
>>> contact_sheet("prepared", "sheet.png", n=32)

Works for any prepared dataset (real, phantom, synthetic). Boxes are drawn in the
colour of their finding kind, lesion masks as outlines; the caption gives the image
id, laterality, view, density and the findings (``kind/pathology``; ``*`` = no box).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .prepared import PreparedDataset

KIND_COLOURS = {
    "mass": (255, 60, 60),
    "calcification": (255, 220, 0),
    "distortion": (0, 220, 255),
    "asymmetry": (255, 0, 255),
}
_PATH_SHORT = {"benign": "B", "malignant": "M", "unknown": "?"}


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def _caption(record) -> list[str]:
    top = f"{record.image_id[:22]}"
    mid = f"{record.laterality}  {record.view}  d={record.density}" + (f"  {record.split}" if record.split else "")
    finds = [f"{f.kind[:5]}/{_PATH_SHORT[f.pathology]}{'' if f.box else '*'}" for f in record.findings]
    return [top, mid, " ".join(finds) if finds else "no finding"]


def select_indices(n_total: int, n: int) -> list[int]:
    """``n`` indices spread evenly over ``range(n_total)`` (all of them when n >= n_total)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if n >= n_total:
        return list(range(n_total))
    return sorted({int(round(v)) for v in np.linspace(0, n_total - 1, n)})


def contact_sheet(
    dataset_or_path: PreparedDataset | str | os.PathLike,
    out_png: str | os.PathLike,
    n: int = 32,
    cols: int | None = None,
    tile_height: int = 256,
    indices: Sequence[int] | None = None,
    masks: bool = True,
    caption_size: int = 10,
) -> Path:
    """Write a contact sheet PNG of ``n`` images (spread over the dataset) and return its path.

    ``dataset_or_path``: a :class:`PreparedDataset` or ``"PATH[:split]"``. ``indices``
    picks records explicitly. ``cols`` defaults to about a 16:9 grid.
    """
    from PIL import Image, ImageDraw

    ds = dataset_or_path if isinstance(dataset_or_path, PreparedDataset) else PreparedDataset(dataset_or_path)
    if len(ds) == 0:
        raise ValueError(f"{ds.root}: dataset has no images to show")
    idx = list(indices) if indices is not None else select_indices(len(ds), n)
    if not idx:
        raise ValueError("no images selected")
    first = ds[idx[0]]
    aspect = (first.width or 160) / (first.height or 256)
    tile_w = max(16, int(round(tile_height * aspect)))
    font = _font(caption_size)
    line_h = caption_size + 3
    cap_h = 3 * line_h + 4
    if cols is None:
        cols = max(1, min(len(idx), int(np.ceil(np.sqrt(len(idx) * 16 / 9 * (tile_height + cap_h) / tile_w)))))
    rows = int(np.ceil(len(idx) / cols))
    pad = 4
    sheet = Image.new("RGB", (cols * (tile_w + pad) + pad, rows * (tile_height + cap_h + pad) + pad), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    for k, i in enumerate(idx):
        r = ds[i]
        img = ds.image(i)
        h, w = img.shape
        s = min(tile_height / h, tile_w / w)
        th, tw = max(1, round(h * s)), max(1, round(w * s))
        tile = Image.fromarray(((img.astype(np.uint32) + 128) // 257).astype(np.uint8)).resize((tw, th), Image.Resampling.BILINEAR)
        tile = tile.convert("RGB")
        tdraw = ImageDraw.Draw(tile)
        for j, f in enumerate(r.findings):
            colour = KIND_COLOURS.get(f.kind, (255, 255, 255))
            if masks and f.mask:
                m = ds.mask(i, j)
                if m is not None:
                    mt = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize((tw, th), Image.Resampling.NEAREST)) > 0
                    edge = mt & ~_erode(mt)
                    arr = np.asarray(tile).copy()
                    arr[edge] = colour
                    tile = Image.fromarray(arr)
                    tdraw = ImageDraw.Draw(tile)
            if f.box is not None:
                x0, y0, x1, y1 = (v * s for v in f.box)
                tdraw.rectangle([x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)], outline=colour, width=1)
        c, rr = k % cols, k // cols
        ox, oy = pad + c * (tile_w + pad), pad + rr * (tile_height + cap_h + pad)
        sheet.paste(tile, (ox, oy))
        for li, text in enumerate(_caption(r)):
            draw.text((ox + 1, oy + tile_height + 2 + li * line_h), text, fill=(230, 230, 230), font=font)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG")
    return out


def _erode(m: np.ndarray) -> np.ndarray:
    e = m.copy()
    e[1:, :] &= m[:-1, :]
    e[:-1, :] &= m[1:, :]
    e[:, 1:] &= m[:, :-1]
    e[:, :-1] &= m[:, 1:]
    return e
