"""The training set in memory: images at the training resolution plus label tensors.

Images are resized once at load (aspect preserved, chest wall kept at the left edge,
vertically centred, black padding) and kept as float16 in [-1, 1].

Unknown labels (e.g. density ``unknown``) are stored as -1 and *masked*: the
discriminator's projection term ignores that axis for that image. Labels for fakes
are drawn from the empirical joint distribution (the label vector of a random training
image), with unknown entries drawn from that axis's marginal frequencies.

The batch order is a pure function of ``(seed, step, rank)``: epoch ``e`` visits the
images in ``randperm(N, seed=hash(seed, e))`` order and rank ``r`` takes its slice of
each global batch, so a resumed run sees exactly the same batches.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.prepared import PreparedDataset
from ..data.schema import condition_value

if TYPE_CHECKING:
    from ..data.outline import ShapeReference
    from .resample import ResampleConfig


def open_training_set(spec: str) -> PreparedDataset:
    """``PATH[:split]``; without a split, the ``train`` split when the dataset has splits."""
    ds = PreparedDataset(spec)
    if ds.split is None and any(r.split is not None for r in ds.records):
        ds = PreparedDataset(spec, split="train")
        if len(ds) == 0:
            raise ValueError(f"{ds.root}: has splits but no 'train' images; name a split as PATH:SPLIT")
    if len(ds) == 0:
        raise ValueError(f"{spec}: no images to train on")
    return ds


def fit_image(img: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """uint16 HxW -> float [1, H, W] in [-1, 1] at ``size``: aspect kept, chest wall left,
    centred vertically, black padding."""
    return fit_unit(torch.from_numpy(img.astype(np.float32) / 65535.0), size)


def fit_unit(img: torch.Tensor, size: tuple[int, int], max_scale: float | None = None) -> torch.Tensor:
    """:func:`fit_image` of a float HxW image in [0, 1]; scaled by at most ``max_scale``."""
    h, w = size
    x = img.float()[None, None]
    s = min(h / img.shape[0], w / img.shape[1], max_scale or float("inf"))
    nh, nw = max(1, round(img.shape[0] * s)), max(1, round(img.shape[1] * s))
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    out = torch.zeros(1, 1, h, w)
    top = (h - nh) // 2
    out[:, :, top:top + nh, :nw] = x
    return out[0] * 2 - 1


#: share of the training films whose breast must fit the content width unscaled; the
#: widest few are scaled down into it (mini-MIAS at 128x128: 96 columns hold 96 % of them)
CONTENT_QUANTILE = 0.95
#: a pixel above this (in [-1, 1]) is content: the ingest sets the background to exactly 0
#: (-1 here), and float16 keeps ~0.001 near -1
_BACKGROUND = -0.999


def content_extents(images: torch.Tensor) -> torch.Tensor:
    """Per image ``[N, 1, H, W]`` in [-1, 1]: one past the rightmost column holding any
    pixel above the background (0 for an empty image)."""
    cols = (images > _BACKGROUND).flatten(1, 2).any(dim=1)  # [N, W]
    w = cols.shape[1]
    last = w - torch.flip(cols.to(torch.uint8), dims=[1]).argmax(dim=1)
    return torch.where(cols.any(dim=1), last, torch.zeros_like(last))


def content_width_for(images: torch.Tensor, quantile: float = CONTENT_QUANTILE) -> int:
    """The narrowest multiple of H/8 that holds the breasts of ``quantile`` of the films
    (chest wall left, so the breast runs from column 0), and at least H/2 and 16; 0 when
    that is the whole width.
    Images whose background is not exactly empty (no ingest) fill their frames: 0."""
    h, w = images.shape[-2:]
    step = h // 8
    ext = content_extents(images).double()
    need = float(torch.quantile(ext, quantile)) if len(ext) else w
    # at least half the height, and 16 columns (the strand input's 15-px dashes need them)
    width = max(-(-int(np.ceil(need)) // step) * step, h // 2, 16)
    return 0 if width >= w else width


def fit_content(images: torch.Tensor, width: int) -> torch.Tensor:
    """``[N, 1, H, W]`` -> ``[N, 1, H, width]``: the left ``width`` columns. An image whose
    breast reaches further is scaled down (aspect kept) to fit, centred vertically, as
    the ingest would have placed it in an ``H x width`` frame."""
    h = images.shape[-2]
    out = images[..., :width].clone()
    ext = content_extents(images)
    for i in torch.nonzero(ext > width).flatten().tolist():
        out[i] = fit_unit((images[i, 0, :, :int(ext[i])].float() + 1) / 2, (h, width)).to(out.dtype)
    return out


def _mix(*parts: int) -> int:
    """Deterministic 63-bit seed from integers (SplitMix-style)."""
    v = 0x9E3779B97F4A7C15
    for p in parts:
        v = (v ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        v ^= v >> 31
    return v & 0x7FFFFFFFFFFFFFFF


def step_generator(seed: int, step: int, rank: int, stream: int = 0) -> torch.Generator:
    """The CPU generator for one training step of one rank (latents, augmentation, labels)."""
    return torch.Generator().manual_seed(_mix(seed, step, rank, stream))


@dataclass
class TrainingData:
    images: torch.Tensor  # [N, 1, H, W] float16 (or float32) in [-1, 1]
    labels: dict[str, torch.Tensor]  # axis -> [N] long, -1 = unknown
    label_axes: dict[str, tuple[str, ...]]
    label_freq: dict[str, dict[str, float]]
    info: dict[str, Any] = field(default_factory=dict)
    _perms: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def films(self) -> torch.Tensor:
        """The films themselves, without their resampled copies (which follow them)."""
        return self.images[:int(self.info.get("films", len(self)))]

    def batch_indices(self, seed: int, step: int, rank: int, world: int, batch: int) -> torch.Tensor:
        """Indices of this rank's share of global batch ``step`` (``batch`` per rank)."""
        n = len(self)
        start = (step * world + rank) * batch
        out = []
        for k in range(start, start + batch):
            epoch, pos = divmod(k, n)
            if epoch not in self._perms:
                if len(self._perms) > 4:
                    self._perms.pop(min(self._perms))
                self._perms[epoch] = torch.randperm(n, generator=torch.Generator().manual_seed(_mix(seed, epoch, 77)))
            out.append(int(self._perms[epoch][pos]))
        return torch.tensor(out, dtype=torch.long)

    def with_content_width(self, width: int) -> "TrainingData":
        """These films in an ``H x width`` frame (:func:`fit_content`); ``width`` 0: as they are."""
        if not width or width >= self.images.shape[-1]:
            return self
        return TrainingData(fit_content(self.images, width), self.labels, self.label_axes, self.label_freq,
                            {**self.info, "content_width": width})

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.images[idx].float(), {a: y[idx] for a, y in self.labels.items()}

    def sample_labels(self, n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """Labels for ``n`` fakes: joint empirical draw, unknowns from the marginals."""
        if not self.label_axes:
            return {}
        idx = torch.randint(0, len(self), (n,), generator=gen)
        out = {}
        for a, classes in self.label_axes.items():
            y = self.labels[a][idx].clone()
            probs = torch.tensor([self.label_freq[a][c] for c in classes], dtype=torch.float64)
            fill = torch.multinomial(probs, n, replacement=True, generator=gen)
            out[a] = torch.where(y >= 0, y, fill)
        return out


def label_frequencies(ds: PreparedDataset) -> dict[str, dict[str, float]]:
    """Class frequencies among known labels, for every condition axis with any known label
    (conditioned or not: sampling uses them to label or mix generated images)."""
    from ..data.schema import CONDITION_AXES

    freq = {}
    for a, classes in CONDITION_AXES.items():
        vals = [condition_value(r, a) for r in ds.records]
        known = [v for v in vals if v is not None]
        if known:
            freq[a] = {c: known.count(c) / len(known) for c in classes}
    return freq


def load_training_data(spec: str, resolution: tuple[int, int], condition: tuple[str, ...],
                       show_progress: bool = True, dtype: torch.dtype = torch.float16,
                       resample: "ResampleConfig | None" = None, seed: int = 0) -> TrainingData:
    """Load ``PATH[:split]`` fully into memory at ``resolution`` with label tensors
    (images as ``dtype``: float16 halves the memory, float32 keeps 16-bit precision).

    With ``resample``, each film stored at least twice ``resolution`` is followed by its
    resampled copies (:mod:`~mammosynth.training.resample`, drawn from ``seed``), after all
    the films: ``data.films`` counts the films, ``info["resample"]`` says what was made."""
    from ..utils import progress
    from .resample import copy_generator, resampled_copies

    ds = open_training_set(spec)
    label_axes = {}
    from ..data.schema import CONDITION_AXES

    for a in condition:
        if a not in CONDITION_AXES:
            raise ValueError(f"unknown condition axis {a!r}; expected some of {tuple(CONDITION_AXES)}")
        label_axes[a] = CONDITION_AXES[a]
    imgs = torch.empty(len(ds), 1, *resolution, dtype=dtype)
    labels = {a: torch.full((len(ds),), -1, dtype=torch.long) for a in label_axes}
    copies: list[torch.Tensor] = []
    copied: list[int] = []  # the film of each copy
    small = 0  # films stored too small for copies
    it = progress(range(len(ds)), total=len(ds), desc="load", disable=None if show_progress else True)
    for i in it:
        stored = ds.image(i)
        imgs[i] = fit_image(stored, resolution).to(dtype)
        for a, classes in label_axes.items():
            v = condition_value(ds.records[i], a)
            if v is not None:
                labels[a][i] = classes.index(v)
        if resample is not None and resample.copies:
            made = resampled_copies(torch.from_numpy(stored.astype(np.float32) / 65535.0), resolution, resample,
                                    copy_generator(seed, i))
            small += not made
            copies += [c.to(dtype) for c in made]
            copied += [i] * len(made)
    if copies:
        imgs = torch.cat([imgs, torch.stack(copies)])
        idx = torch.tensor(copied, dtype=torch.long)
        labels = {a: torch.cat([y, y[idx]]) for a, y in labels.items()}
    freq = label_frequencies(ds)
    for a in label_axes:
        if a not in freq:
            raise ValueError(f"{ds.root}: cannot condition on {a!r}: no training image has a known {a} label")
    info = {"path": str(ds.root), "split": ds.split, "content_hash": ds.content_hash,
            "manifest_sha256": ds.info.get("manifest_sha256"), "images": len(ds), "films": len(ds)}
    if resample is not None and resample.copies:
        info["resample"] = {"copies": len(copies), "per_film": resample.copies,
                            "films_copied": len(ds) - small, "films_too_small": small}
    return TrainingData(imgs, labels, label_axes, freq, info)


def film_outlines(images: torch.Tensor, source: str = "the training films", chunk: int = 64) -> "ShapeReference":
    """The outlines of training films ``[N, 1, H, W]`` in [-1, 1] (the full frame), segmented
    as the pipeline segments generated images; ValueError (naming ``source``) when too few
    hold a breast."""
    from ..data.outline import ShapeReference
    from ..data.preprocess import breast_masks

    masks = np.concatenate([breast_masks(((images[s:s + chunk, 0].float() + 1) / 2).clamp(0, 1).numpy())
                            for s in range(0, len(images), chunk)]) if len(images) else np.zeros((0, 1, 1), bool)
    return ShapeReference.from_masks(masks, source=source)


def shape_reference(images: torch.Tensor) -> dict[str, Any] | None:
    """:func:`film_outlines` as the dict every checkpoint stores for the shape gate at
    sampling; None when too few films hold a breast (the gate is then off)."""
    try:
        return film_outlines(images).to_dict()
    except ValueError:
        return None
