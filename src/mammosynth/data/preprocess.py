"""Mammogram preprocessing with recorded, invertible geometry (MONAI-style metadata).

:func:`preprocess` runs, each step switchable in :class:`PreprocessConfig`:

1. ``segment``: breast mask on a downsampled copy (Otsu threshold scaled down, largest
   connected component, morphological opening, grown into the faint tissue connected
   to it so that the skin line is kept where Otsu falls inside the breast, holes
   filled). The pectoral muscle is kept.
2. ``remove_background``: everything outside the breast mask (film labels, markers,
   scanner background) is set to 0.
3. ``normalise_laterality``: flip so the chest wall is on the LEFT edge. The side is
   read from the image (the chest-wall column of the mask is tall, the nipple side is
   convex); a laterality label is used when the image is ambiguous and inferred from
   the image when it is missing (radiological convention: R breast = chest wall left).
4. ``crop``: to the breast's bounding box.
5. ``resize``: to ``size`` keeping the aspect ratio; the rest is padded with 0 (the
   image sits on the left edge, centred vertically). Never stretched.

Every geometric step appends a dict to a transform list (``flip``, ``crop``,
``resize``, ``pad``); :mod:`mammosynth.data.geometry` replays it so that boxes and masks
follow the image exactly.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .geometry import Transform, apply_transforms, source_coordinates



@dataclass(frozen=True)
class PreprocessConfig:
    """Preprocessing settings (the CLI reuses these defaults)."""

    size: tuple[int, int] = (512, 320)  # target (H, W); portrait mammograms
    bits: int = 16  # 16: keep uint16; 8: quantise to 8-bit
    segment: bool = True
    remove_background: bool = True
    normalise_laterality: bool = True
    crop: bool = True
    resize: bool = True
    work_size: int = 256  # long side of the downsampled copy used for segmentation
    threshold_scale: float = 0.4  # fraction of the Otsu threshold (keeps the faint skin line)
    min_breast_fraction: float = 0.02  # a mask smaller than this fraction of the image is a failure

    def __post_init__(self) -> None:
        size = tuple(int(v) for v in self.size)
        if len(size) != 2 or min(size) < 8:
            raise ValueError(f"size must be (H, W) with both >= 8, got {self.size!r}")
        object.__setattr__(self, "size", size)
        if self.bits not in (8, 16):
            raise ValueError(f"bits must be 8 or 16, got {self.bits!r}")
        if self.work_size < 32:
            raise ValueError(f"work_size must be >= 32, got {self.work_size}")
        if not 0 < self.threshold_scale <= 2:
            raise ValueError(f"threshold_scale must be in (0, 2], got {self.threshold_scale}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        return d


@dataclass
class Preprocessed:
    """Output of :func:`preprocess`."""

    image: np.ndarray  # uint16 (or uint8 when bits=8)
    transforms: list[Transform]
    laterality: str | None  # final L/R (label, or inferred from the image)
    info: dict[str, Any] = field(default_factory=dict)  # goes to record.preprocessing


# -- segmentation and side --------------------------------------------------------------

def downsample(image: np.ndarray, work_size: int) -> tuple[np.ndarray, int]:
    """Block-mean downsample by an integer factor so the long side is about ``work_size``."""
    h, w = image.shape
    f = max(1, int(np.ceil(max(h, w) / work_size)))
    if f == 1:
        return image.astype(np.float32), 1
    hh, ww = h // f, w // f
    if hh == 0 or ww == 0:
        return image.astype(np.float32), 1
    from PIL import Image

    part = np.ascontiguousarray(image[: hh * f, : ww * f])
    im = Image.fromarray(part) if part.dtype == np.uint8 else Image.fromarray(part.astype(np.float32), mode="F")
    return np.asarray(im.reduce(f), dtype=np.float32), f


def _otsu_thresholds(x: np.ndarray, valid: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                     nbins: int = 256) -> np.ndarray:
    """Otsu threshold per image of ``x`` [B, H, W] over its ``valid`` values, whose min
    and max are ``lo`` and ``hi`` [B]: ``nbins`` equal bins between them, threshold at the
    centre of the bin that maximises the between-class variance (as
    ``skimage.filters.threshold_otsu``)."""
    b = x.shape[0]
    lo, width = lo.astype(np.float64), (hi - lo).astype(np.float64)
    # bin index in float64 (as np.histogram); invalid values go to a spare bin per image.
    # Cast first, then work in place: a float32 array broadcast against float64 per-image
    # values takes numpy's slow mixed-type loop (20x slower, same numbers)
    pos = x.astype(np.float64)
    pos -= lo[:, None, None]
    pos *= (nbins / width)[:, None, None]
    bins = np.minimum(pos, nbins - 1, out=pos).astype(np.int32)
    np.copyto(bins, nbins, where=~valid)
    bins += (np.arange(b, dtype=np.int32) * (nbins + 1))[:, None, None]
    counts = np.bincount(bins.ravel(), minlength=b * (nbins + 1)).reshape(b, nbins + 1)[:, :nbins].astype(np.float64)
    centres = lo[:, None] + (np.arange(nbins) + 0.5)[None, :] * (width / nbins)[:, None]
    w1 = np.cumsum(counts, axis=1)
    w2 = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        m1 = np.cumsum(counts * centres, axis=1) / w1
        m2 = (np.cumsum((counts * centres)[:, ::-1], axis=1) / w2[:, ::-1])[:, ::-1]
        between = np.nan_to_num(w1[:, :-1] * w2[:, 1:] * (m1[:, :-1] - m2[:, 1:]) ** 2)
    return centres[np.arange(b), np.argmax(between, axis=1)]


def segment_breasts(images: np.ndarray, threshold_scale: float = 0.4, workers: int = 1) -> np.ndarray:
    """Breast masks ``[B, H, W]`` of a stack of (downsampled) images: scaled Otsu,
    opening, largest connected component, holes filled. Vectorised over the stack
    (one scipy call per step), so it is cheap enough for every generated image;
    ``workers`` > 1 splits the stack over threads (scipy releases the GIL), with the
    same masks."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"expected a [B, H, W] stack, got shape {x.shape}")
    if workers > 1 and x.shape[0] >= 2 * workers:
        from concurrent.futures import ThreadPoolExecutor

        chunks = np.array_split(x, workers)
        with ThreadPoolExecutor(workers) as pool:
            return np.concatenate(list(pool.map(lambda c: _segment_stack(c, threshold_scale), chunks)))
    return _segment_stack(x, threshold_scale)


def breast_masks(images: np.ndarray, config: "PreprocessConfig | None" = None, workers: int = 1) -> np.ndarray:
    """Breast masks ``[B, H, W]`` of full-size images, found as ingest finds them: on a
    block-mean copy whose long side is about ``config.work_size`` (the blocks of
    :func:`downsample`, vectorised over the stack), then resampled onto the full grid (smoothed, bilinear, as :func:`preprocess` maps its
    mask). Images no larger than ``work_size`` are segmented as they are
    (:func:`segment_breasts`). At 1024x640 this is about 4x cheaper than segmenting at
    full size (mini-MIAS films: 29 -> 6-8 ms per image)."""
    config = config or PreprocessConfig()
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"expected a [B, H, W] stack, got shape {x.shape}")
    b, h, w = x.shape
    f = max(1, int(np.ceil(max(h, w) / config.work_size)))
    if f == 1 or h // f == 0 or w // f == 0:
        return segment_breasts(x, config.threshold_scale, workers)
    hh, ww = h // f, w // f
    # block mean: rows of each block first (contiguous sums), then columns
    small = x[:, :hh * f, :ww * f].reshape(b, hh, f, ww * f).sum(axis=2).reshape(b, hh, ww, f).sum(axis=3)
    small *= np.float32(1.0 / (f * f))
    masks = segment_breasts(small, config.threshold_scale, workers)
    return np.stack([_mask_on_output(m, f, [], (h, w)) for m in masks]) if b else np.zeros(x.shape, bool)


def zero_background(unit: np.ndarray, config: "PreprocessConfig | None" = None, workers: int = 1,
                    masks: np.ndarray | None = None) -> np.ndarray:
    """Set everything outside the breast to exactly 0, in place, in a stack ``[B, H, W]`` of
    float32 images in [0, 1] (the generated images' background step, as ingest leaves the real
    films' background). Returns, per image, whether a breast was found (a mask of at least
    ``config.min_breast_fraction`` of the image); an image without one is left as it is.
    ``masks``: the stack's :func:`breast_masks`, when the caller has them already (modified)."""
    config = config or PreprocessConfig()
    if not isinstance(unit, np.ndarray) or unit.dtype != np.float32 or unit.ndim != 3:
        raise ValueError("zero_background: expected a float32 [B, H, W] stack in [0, 1], got "
                         f"{getattr(unit, 'dtype', type(unit).__name__)} of shape {np.shape(unit)}")
    b, h, w = unit.shape
    breast = breast_masks(unit, config, workers) if masks is None else masks
    if breast.shape != unit.shape:
        raise ValueError(f"zero_background: masks of shape {breast.shape} for images of shape {unit.shape}")
    found = np.count_nonzero(breast.reshape(b, -1), axis=1) / (h * w) >= config.min_breast_fraction
    breast |= ~found[:, None, None]
    np.multiply(unit, breast, out=unit)  # 7x faster than a boolean-mask assignment
    return found


def _window_filter(a: np.ndarray, op: np.ufunc, radius: int = 2) -> np.ndarray:
    """Min (``np.minimum``) or max (``np.maximum``) over a (2r+1)^2 square window of each
    image of a stack ``[B, H, W]``; positions outside the image are ignored, which for
    these filters equals scipy.ndimage's ``mode="nearest"`` (and, for max of values
    >= 0, ``mode="constant"``). Separable, in place on shifted views: about 3x faster
    than ``scipy.ndimage.minimum_filter`` on small binary stacks."""
    out = a
    for axis in (1, 2):
        src, out = out, out.copy()
        n = src.shape[axis]
        for d in range(1, min(radius, n - 1) + 1):
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[axis], hi[axis] = slice(0, n - d), slice(d, n)
            op(out[tuple(lo)], src[tuple(hi)], out=out[tuple(lo)])  # neighbour below / right
            op(out[tuple(hi)], src[tuple(lo)], out=out[tuple(hi)])  # neighbour above / left
    return out


def _segment_stack(x: np.ndarray, threshold_scale: float) -> np.ndarray:
    from scipy import ndimage as ndi

    b = x.shape[0]
    out = np.zeros(x.shape, dtype=bool)
    if b == 0:
        return out
    top = x.reshape(b, -1).max(axis=1)
    valid = x > (0.02 * top)[:, None, None]
    n_valid = valid.reshape(b, -1).sum(axis=1)
    vmin = np.min(x, axis=(1, 2), where=valid, initial=np.inf)
    degenerate = (n_valid < 16) | (vmin == top)  # the max is always a valid value
    good = np.flatnonzero((top > 0) & ~degenerate)
    for i in np.flatnonzero((top > 0) & degenerate):
        out[i] = x[i] > 0.5 * top[i]
    if good.size == 0:
        return out
    xg = x[good]
    t = _otsu_thresholds(xg, valid[good], vmin[good], top[good]) * threshold_scale
    raw = (xg > t[:, None, None].astype(np.float32)).astype(np.uint8)
    # opening (5x5, separable min/max filters): cuts thin bridges to labels and film edges
    m = _window_filter(_window_filter(raw, np.minimum), np.maximum)
    plane = np.zeros((3, 3, 3), dtype=bool)
    plane[1] = ndi.generate_binary_structure(2, 1)  # 2-D connectivity: no links between images
    lab, n = ndi.label(m, structure=plane)
    keep = np.zeros(n + 1, dtype=bool)
    if n:
        sizes = np.bincount(lab.ravel(), minlength=n + 1)
        hi = lab.reshape(len(good), -1).max(axis=1)  # labels run in image order
        lo = np.concatenate([[0], np.maximum.accumulate(hi)[:-1]]) + 1
        for a, z in zip(lo, hi):
            if z >= a:
                keep[a + int(np.argmax(sizes[a:z + 1]))] = True
    m = keep.take(lab)  # keep[0] is False: an image without components stays empty
    m = _grow_to_skin(xg, m, top[good])
    # the outline follows the threshold itself (not the blocky opening) near the component
    near = _window_filter(m, np.maximum)
    fg = (raw.astype(bool) & near) | m
    # fill holes: background components that do not touch the image edge
    blab, bn = ndi.label(~fg, structure=plane)
    hole = np.ones(bn + 1, dtype=bool)
    for edge in (blab[:, 0, :], blab[:, -1, :], blab[:, :, 0], blab[:, :, -1]):
        hole[np.unique(edge)] = False
    hole[0] = False  # 0 is the foreground itself
    filled = fg | hole.take(blab)
    if good.size == b:
        return filled
    out[good] = filled
    return out


#: how far (fraction of the long side) the mask may grow past the Otsu outline into faint
#: tissue connected to it: the subcutaneous fat and skin
SKIN_GROWTH = 0.08
#: faint tissue is at least this fraction of the image's maximum (fat and skin on a
#: for-presentation mammogram are well above it; film base and scanner noise below it)
SKIN_FLOOR = 0.1


def _grow_to_skin(x: np.ndarray, m: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Grow the masks ``m`` into the faint tissue around them that the scaled Otsu
    threshold cuts off. Where the background is padding (RSNA's MONOCHROME1 films, padded
    with the maximum and so 0 after inversion) Otsu sees only breast pixels and splits
    dense tissue from fat, so the threshold falls inside the breast and the skin line
    becomes ragged. The mask grows geodesically (3x3 steps, at most ``SKIN_GROWTH`` of
    the long side) through pixels brighter than the background: the median + 4 robust
    SDs (1.4826 MAD) of the non-zero pixels outside the mask's bounding box grown by the
    growth distance (0 when there are hardly any: the background is padding), and at
    least ``SKIN_FLOOR`` of the maximum. An image with no pixel outside that box (the breast fills
    it) is left as it is."""
    b, h, w = x.shape
    steps = max(1, int(round(SKIN_GROWTH * max(h, w))))
    far = ~_grown_boxes(m, steps + 2)
    nonzero = far & (x > 0)  # exact zeros are padding or the film border, not background noise
    bg = np.where(nonzero, x, np.nan).reshape(b, -1)
    med = _row_nanmedian(bg)
    mad = _row_nanmedian(np.abs(bg - med[:, None]))
    n_far, n_nonzero = far.reshape(b, -1).sum(axis=1), nonzero.reshape(b, -1).sum(axis=1)
    # background noise seen (a film, a detector): grow above it; only padding (exact zeros): above 0
    noise = np.where(n_nonzero >= max(16, 0.01 * h * w), med + 4 * 1.4826 * mad, 0.0)
    low = np.where(n_far > 0, np.fmax(np.nan_to_num(noise, nan=0.0), SKIN_FLOOR * top), np.inf)  # no background seen: no growth
    tissue = x > low[:, None, None].astype(np.float32)
    grown = m.astype(np.uint8)
    # only the images with faint tissue on the mask's outline grow (most have none)
    todo = np.flatnonzero((_window_filter(grown, np.maximum, radius=1).astype(bool) & tissue & ~m).any(axis=(1, 2)))
    if todo.size:
        g, t = grown[todo], tissue[todo]
        for _ in range(steps):
            nxt = _window_filter(g, np.maximum, radius=1) & t
            if np.array_equal(nxt, g):
                break
            g = nxt
        grown[todo] = g
    return grown.astype(bool) | m


def _row_nanmedian(a: np.ndarray) -> np.ndarray:
    """Median of each row's non-NaN values; NaN for a row with none. Rows without any are
    left out rather than passed to ``np.nanmedian`` under a suppressed warning: warning
    filters are process-wide and not thread-safe, so with ``generate``'s writer threads a
    suppression in one thread could be undone by another and the warning reach the user."""
    out = np.full(a.shape[0], np.nan, dtype=np.float64)
    some = ~np.isnan(a).all(axis=1)
    if some.any():
        out[some] = np.nanmedian(a[some], axis=1)
    return out


def _grown_boxes(m: np.ndarray, margin: int) -> np.ndarray:
    """Per image of a stack, the mask's bounding box grown by ``margin`` pixels (empty
    masks: empty boxes). Cheaper than a dilation by ``margin`` and, for telling the
    background apart, as good."""
    b, h, w = m.shape
    rows, cols = m.any(axis=2), m.any(axis=1)
    ar_h, ar_w = np.arange(h), np.arange(w)
    inf = np.iinfo(np.int64).max // 4
    r0 = np.where(rows, ar_h, inf).min(axis=1) - margin
    r1 = np.where(rows, ar_h, -inf).max(axis=1) + margin
    c0 = np.where(cols, ar_w, inf).min(axis=1) - margin
    c1 = np.where(cols, ar_w, -inf).max(axis=1) + margin
    in_rows = (ar_h[None] >= r0[:, None]) & (ar_h[None] <= r1[:, None])
    in_cols = (ar_w[None] >= c0[:, None]) & (ar_w[None] <= c1[:, None])
    return in_rows[:, :, None] & in_cols[:, None, :]


def segment_breast(small: np.ndarray, threshold_scale: float = 0.4) -> np.ndarray:
    """Breast mask of one (downsampled) image; see :func:`segment_breasts`."""
    return segment_breasts(np.asarray(small)[None], threshold_scale)[0]


def chest_wall_side(mask: np.ndarray) -> tuple[str, float]:
    """('left'|'right', confidence in [0, 1]) from the mask's column coverage at each end."""
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return "left", 0.0
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    cov = mask[:, x0:x1].mean(axis=0)
    k = max(1, (x1 - x0) // 10)
    left, right = float(cov[:k].mean()), float(cov[-k:].mean())
    return ("left" if left >= right else "right"), abs(left - right)


#: median grey of the breast's upper chest-wall corner / median grey of the breast from
#: which a film is called MLO (the pectoral muscle is there). Measured on prepared films
#: (chest wall left): phantom CC median 0.94 (95th percentile 1.05), phantom MLO 1.39
#: (5th percentile 1.12); mini-MIAS MLO median 1.22-1.31 but 5th percentile 0.76: a quarter of
#: real MLO films hide their pectoral muscle, so a low ratio says nothing and gives no view.
PECTORAL_RATIO = 1.15


def view_from_image(image: np.ndarray, mask: np.ndarray) -> tuple[str | None, float]:
    """("MLO" or None, the ratio) for a prepared film (chest wall on the left) whose header
    names no view: MLO when the upper fifth of the breast's chest-wall fifth is clearly
    brighter than the breast (``PECTORAL_RATIO``); None otherwise (CC and MLO films with a
    faint pectoral muscle look alike, so no CC call is made from the image)."""
    h, w = image.shape
    corner = mask[: max(1, h // 5), : max(2, w // 5)]
    x = image.astype(np.float32)
    vals = x[: max(1, h // 5), : max(2, w // 5)][corner]
    if vals.size < 4 or not mask.any():
        return None, 0.0
    ratio = float(np.median(vals) / max(float(np.median(x[mask])), 1e-6))
    return ("MLO" if ratio >= PECTORAL_RATIO else None), ratio


def _side_from_intensity(image: np.ndarray) -> tuple[str, float]:
    h, w = image.shape
    left = float(image[:, : w // 2].mean())
    right = float(image[:, w - w // 2:].mean())
    total = left + right
    return ("left" if left >= right else "right"), (abs(left - right) / total if total else 0.0)


# -- the pipeline -----------------------------------------------------------------------

def preprocess(image: np.ndarray, laterality: str | None = None,
               config: PreprocessConfig = PreprocessConfig()) -> Preprocessed:
    """Run the configured steps on a 2-D uint8/uint16 image.

    ``laterality``: 'L', 'R' or None (inferred from the image). Raises ValueError when
    no breast is found. Returns the image (uint16, or uint8 for ``bits=8``), the
    transform list, the final laterality and an ``info`` dict for ``record.preprocessing``.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected uint8 or uint16 pixels, got {image.dtype}")
    if laterality not in (None, "L", "R"):
        raise ValueError(f"laterality must be 'L', 'R' or None, got {laterality!r}")
    h, w = image.shape
    scale16 = 257.0 if image.dtype == np.uint8 else 1.0
    info: dict[str, Any] = {"steps": [], "source_size": [h, w]}
    transforms: list[Transform] = []

    # 1. segmentation on a small copy
    mask_small, f = None, 1
    if config.segment:
        small, f = downsample(image, config.work_size)
        mask_small = segment_breast(small, config.threshold_scale)
        frac = float(mask_small.mean())
        if frac < config.min_breast_fraction:
            raise ValueError(f"no breast found (mask covers {frac:.1%} of the image)")
        info["steps"].append("segment")
        info["breast_fraction"] = round(frac, 4)

    # 2. which side is the chest wall on?
    side, conf = chest_wall_side(mask_small) if mask_small is not None else _side_from_intensity(image)
    expected = None if laterality is None else ("left" if laterality == "R" else "right")
    if expected is not None and conf < 0.15:
        side_used, source = expected, "label"
    else:
        side_used, source = side, "image"
    if expected is not None and conf >= 0.15 and side != expected:
        info["laterality_conflict"] = True  # label disagrees with the image; the image decides the flip
    final_lat = laterality or ("R" if side_used == "left" else "L")
    info["chest_wall_side"] = side_used
    info["side_confidence"] = round(conf, 3)
    info["laterality_source"] = "label" if laterality is not None else "image"
    info["side_source"] = source

    flip = bool(config.normalise_laterality and side_used == "right")
    if flip:
        transforms.append({"op": "flip", "width": w})
        info["steps"].append("flip")
    info["flipped"] = flip

    # 3. crop to the breast's bounding box (in full-resolution, post-flip coordinates)
    if config.crop and mask_small is not None:
        rows = np.flatnonzero(mask_small.any(axis=1))
        cols = np.flatnonzero(mask_small.any(axis=0))
        y0, y1 = int(rows[0]) * f, (int(rows[-1]) + 1) * f
        x0, x1 = int(cols[0]) * f, (int(cols[-1]) + 1) * f
        if y1 >= (h // f) * f:
            y1 = h
        if x1 >= (w // f) * f:
            x1 = w
        if flip:
            x0, x1 = w - x1, w - x0
        transforms.append({"op": "crop", "box": [x0, y0, x1, y1]})
        info["steps"].append("crop")
        info["crop"] = [x0, y0, x1, y1]

    # 4. resize keeping the aspect ratio, pad to the target
    geo = list(transforms)
    out = apply_transforms(image, geo)
    ch, cw = out.shape
    if config.resize:
        th, tw = config.size
        s = min(th / ch, tw / cw)
        nh, nw = min(th, max(1, round(ch * s))), min(tw, max(1, round(cw * s)))
        resize_t = {"op": "resize", "from": [ch, cw], "to": [nh, nw]}
        pad_t = {"op": "pad", "offset": [(th - nh) // 2, 0], "size": [th, tw]}
        out = apply_transforms(out, [resize_t, pad_t])
        transforms += [resize_t, pad_t]
        info["steps"] += ["resize", "pad"]
        info["scale"] = [nh / ch, nw / cw]
        info["pad"] = pad_t["offset"]

    # 5. background removal: breast mask mapped to the output geometry
    if config.remove_background and mask_small is not None:
        breast = _mask_on_output(mask_small, f, transforms, out.shape)
        out = np.where(breast, out, 0.0)
        info["steps"].append("remove_background")
    out = np.clip(out * scale16, 0, 65535)
    result = np.rint(out).astype(np.uint16)
    if config.bits == 8:
        result = ((result.astype(np.uint32) + 128) // 257).astype(np.uint8)
    info["transforms"] = transforms
    info["output_size"] = list(result.shape)
    return Preprocessed(image=result, transforms=transforms, laterality=final_lat, info=info)


def _mask_on_output(mask_small: np.ndarray, f: int, transforms: Sequence[Transform],
                    out_shape: tuple[int, int]) -> np.ndarray:
    """The low-resolution breast mask resampled (bilinear, smoothed) onto the output grid."""
    from scipy import ndimage as ndi

    soft = ndi.gaussian_filter(mask_small.astype(np.float32), 0.7)  # round off the block edges
    ys, xs = source_coordinates(transforms, out_shape)
    valid = np.isfinite(ys)[:, None] & np.isfinite(xs)[None, :]

    def weights(c: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = np.clip(np.nan_to_num(c / f - 0.5), 0, n - 1)
        i0 = np.minimum(np.floor(c).astype(np.intp), n - 1)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, (c - i0).astype(np.float32)

    y0, y1, wy = weights(ys, soft.shape[0])
    x0, x1, wx = weights(xs, soft.shape[1])
    # separable bilinear; np.take rather than fancy indexing: same values, ~2.5x faster
    rows = np.take(soft, y0, 0) * (1 - wy)[:, None] + np.take(soft, y1, 0) * wy[:, None]
    vals = np.take(rows, x0, 1)
    vals *= (1 - wx)[None, :]
    vals += np.take(rows, x1, 1) * wx[None, :]
    return valid & (vals >= 0.5)
