"""A before/after contact sheet of an edited set: each source film beside its edited film,
the new finding's mask outlined in its kind's colour and the edit mask (outside which the
pixels are the source's) outlined in green.

>>> from mammosynth.edit.sheet import before_after_sheet       # doctest: +SKIP
>>> before_after_sheet("edited", "prepared", "before_after.png", n=6)
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..data.contact_sheet import KIND_COLOURS, _font
from ..data.prepared import PreparedDataset
from ..io.images import read_image

EDIT_COLOUR = (60, 220, 60)


def _rgb(image: np.ndarray) -> np.ndarray:
    g = (image.astype(np.float32) / 65535.0 * 255.0).clip(0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def _outline(rgb: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> None:
    edge = mask & ~ndimage.binary_erosion(mask)
    rgb[edge] = colour


def _caption(rec) -> str:
    """What was done: the inserted lesion, the removed finding or the density change."""
    op, e = rec.generation["operation"], rec.generation.get("edit") or {}
    if op == "insert" and rec.findings:
        f = rec.findings[-1]
        return f"insert: {f.source_codes.get('subtype', f.kind)}/{f.pathology}"
    if op == "remove":
        return f"remove: {(e.get('removed') or {}).get('kind', 'finding')}"
    if op == "density":
        return f"density: {e.get('from', '?')} -> {e.get('to', rec.density)}"
    return op


def before_after_sheet(edited: str | os.PathLike | PreparedDataset, source: str | os.PathLike | PreparedDataset,
                       out: str | os.PathLike, n: int = 6, columns: int = 3, scale: float = 1.0) -> Path:
    """Write ``n`` before/after pairs (``columns`` pairs per row) to the PNG ``out``."""
    from PIL import Image, ImageDraw

    ed = edited if isinstance(edited, PreparedDataset) else PreparedDataset(edited)
    src = source if isinstance(source, PreparedDataset) else PreparedDataset(source)
    by_id = {r.image_id: r for r in src.records}
    pairs = [(r, by_id[r.generation["source_image_id"]]) for r in ed.records
             if (r.generation or {}).get("source_image_id") in by_id][:n]
    if not pairs:
        raise ValueError(f"{ed.root}: no edited film whose source is in {src.root}")
    tiles = []
    for rec, srec in pairs:
        before, after = _rgb(src.image(srec)), _rgb(ed.image(rec))
        edit_mask = read_image(ed.root / rec.generation["edit"]["edit_mask"])[0] > 0
        _outline(after, edit_mask, EDIT_COLOUR)
        for k in range(len(srec.findings), len(rec.findings)):
            m = ed.mask(rec, k)
            if m is not None:
                _outline(after, ndimage.binary_dilation(m), KIND_COLOURS.get(rec.findings[k].kind, (255, 255, 255)))
        gap = np.full((before.shape[0], 2, 3), 255, np.uint8)
        tiles.append((np.concatenate([before, gap, after], axis=1), rec))
    h, w = tiles[0][0].shape[:2]
    cap = 14
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * (w + 6), rows * (h + cap + 6)), (0, 0, 0))
    draw, font = ImageDraw.Draw(sheet), _font(11)
    for i, (tile, rec) in enumerate(tiles):
        x, y = (i % columns) * (w + 6), (i // columns) * (h + cap + 6)
        sheet.paste(Image.fromarray(tile), (x, y))
        label = _caption(rec)
        draw.text((x + 2, y + h + 1), f"{rec.generation['source_image_id'][-6:]} {label}", fill=(255, 255, 255),
                  font=font)
    if scale != 1.0:
        sheet = sheet.resize((int(sheet.width * scale), int(sheet.height * scale)), Image.LANCZOS)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    return out
