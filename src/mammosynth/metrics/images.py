"""Decode once per evaluation: :class:`EvalImages`.

Every metric used to read and resize each image on its own (the texture features, the
classifier inputs, FRD's PNGs, MS-SSIM, the report's thumbnails): a 162-film evaluation
decoded every film five or more times. An :class:`EvalImages` wraps one prepared dataset
for one evaluation and

* decodes each image at most once (uint16 -> float32 in [0, 1] at its stored size), on
  first use, so a set whose features all come from the cache is never decoded;
* finds each breast mask once (:func:`mammosynth.data.preprocess.breast_masks`, as
  ingest finds it);
* keeps one resized view per (size, resampling filter), filled on first use and shared by
  every metric that asks for it (classifier inputs, texture features, FRD, diversity).

Several EvalImages of one evaluation share a :class:`DecodeStore`, keyed by file, so the
real set and its train / test splits (the same files) are decoded once between them.

An EvalImages looks like a :class:`~mammosynth.data.prepared.PreparedDataset` to the
metrics (``len``, ``[i]`` -> record, ``records``, ``root``, ``content_hash``, ``path_of``)
except that :meth:`EvalImages.image` returns the float32 image; metric code takes either
through :func:`as_eval_images`.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

RESAMPLING = ("bilinear", "box")


def to01(img: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float image -> float32 in [0, 1] at its own size (NaN/inf refused)."""
    arr = np.asarray(img)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {arr.shape}")
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / np.float32(65535.0)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    x = arr.astype(np.float32)
    if not np.isfinite(x).all():
        raise ValueError("image contains NaN or infinity")
    return x


def resize(x: np.ndarray, size: tuple[int, int], resample: str = "bilinear") -> np.ndarray:
    """A float32 [0, 1] image resized to ``size`` (H, W) with PIL's ``resample`` filter, clipped to [0, 1].

    ``bilinear`` (antialiased) is what the texture features, FRD and MS-SSIM use; ``box``
    (block means) what the classifier inputs use.
    """
    from PIL import Image

    if resample not in RESAMPLING:
        raise ValueError(f"resample must be one of {RESAMPLING}, got {resample!r}")
    h, w = int(size[0]), int(size[1])
    if x.shape != (h, w):
        method = Image.Resampling.BILINEAR if resample == "bilinear" else Image.Resampling.BOX
        x = np.asarray(Image.fromarray(np.ascontiguousarray(x, dtype=np.float32), mode="F").resize((w, h), method))
    return np.clip(x, 0.0, 1.0).astype(np.float32, copy=False)


class DecodeStore:
    """Decoded images and breast masks by file, shared by the EvalImages of one evaluation.

    ``decodes`` counts the files read (each at most once while the store lives),
    ``seconds`` the time spent reading them.
    """

    def __init__(self) -> None:
        self.images: dict[Path, np.ndarray] = {}
        self.masks: dict[Path, np.ndarray] = {}
        self.decodes = 0
        self.seconds = 0.0
        self._lock = threading.Lock()

    def image(self, ds: Any, i: int) -> np.ndarray:
        path = ds.path_of(i)
        hit = self.images.get(path)
        if hit is None:
            t = time.perf_counter()
            try:
                hit = to01(ds.image(i))
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from exc
            hit.setflags(write=False)  # shared: nobody may change it in place
            with self._lock:
                self.images[path] = hit
                self.decodes += 1
                self.seconds += time.perf_counter() - t
        return hit


class EvalImages:
    """One prepared dataset's images for one evaluation: decoded once, masks once, views once per size."""

    def __init__(self, ds: Any, store: DecodeStore | None = None, name: str = ""):
        if isinstance(ds, EvalImages):
            raise TypeError("EvalImages of an EvalImages: use as_eval_images()")
        self.dataset = ds
        self.store = store if store is not None else DecodeStore()
        self.name = name or Path(str(getattr(ds, "root", "images"))).name
        self._views: dict[tuple[int, int, str], dict[int, np.ndarray]] = {}

    # -- the PreparedDataset interface the metrics use --------------------------------
    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Any:
        return self.dataset[i]

    def __iter__(self):
        return iter(self.dataset)

    def __repr__(self) -> str:
        return f"EvalImages({self.dataset!r})"

    @property
    def records(self) -> list[Any]:
        return self.dataset.records

    @property
    def root(self) -> Path:
        return self.dataset.root

    @property
    def split(self) -> str | None:
        return getattr(self.dataset, "split", None)

    @property
    def content_hash(self) -> str:
        return self.dataset.content_hash

    @property
    def info(self) -> dict[str, Any]:
        return self.dataset.info

    @property
    def kind(self) -> str:
        return self.dataset.kind

    def path_of(self, i: int) -> Path:
        return self.dataset.path_of(i)

    def counts(self) -> dict[str, dict[str, int]]:
        return self.dataset.counts()

    # -- decoded pixels ----------------------------------------------------------------
    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as float32 in [0, 1] at its stored size (read-only; decoded on first use)."""
        return self.store.image(self.dataset, int(i))

    def stack(self, indices: Iterable[int] | None = None, desc: str = "") -> np.ndarray:
        """Images ``[N, H, W]`` at stored size (all, or ``indices``); ValueError when sizes differ."""
        from ..utils import progress

        idx = list(range(len(self))) if indices is None else [int(i) for i in indices]
        imgs = [self.image(i) for i in progress(idx, total=len(idx), desc=desc or f"decoding {self.name}")]
        shapes = {im.shape for im in imgs}
        if len(shapes) > 1:
            raise ValueError(f"{self.root}: images have different sizes {sorted(shapes)[:3]}; resize them first")
        return np.stack(imgs) if imgs else np.zeros((0, 1, 1), np.float32)

    def mask(self, i: int) -> np.ndarray:
        """Breast mask of image ``i`` (bool, stored size), found once."""
        path = self.path_of(int(i))
        hit = self.store.masks.get(path)
        if hit is None:
            hit = self.masks([i])[0]
        return hit

    def masks(self, indices: Sequence[int] | None = None) -> np.ndarray:
        """Breast masks ``[N, H, W]`` (all, or ``indices``), each found once, as ingest finds them."""
        from ..data.preprocess import breast_masks

        idx = list(range(len(self))) if indices is None else [int(i) for i in indices]
        todo = [i for i in idx if self.path_of(i) not in self.store.masks]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i in todo:
            by_shape.setdefault(self.image(i).shape, []).append(i)
        for group in by_shape.values():  # breast_masks works on a stack of one size
            for i, m in zip(group, breast_masks(np.stack([self.image(i) for i in group]))):
                m.setflags(write=False)
                self.store.masks[self.path_of(i)] = m
        out = [self.store.masks[self.path_of(i)] for i in idx]
        return np.stack(out) if out else np.zeros((0, 1, 1), bool)

    def resized(self, i: int, size: tuple[int, int], resample: str = "bilinear") -> np.ndarray:
        """Image ``i`` resized to ``size`` (H, W), computed once per (size, filter) and shared."""
        view = self._views.setdefault((int(size[0]), int(size[1]), resample), {})
        hit = view.get(int(i))
        if hit is None:
            hit = resize(self.image(i), size, resample)
            hit.setflags(write=False)
            view[int(i)] = hit
        return hit

    def view(self, size: tuple[int, int], resample: str = "bilinear", indices: Iterable[int] | None = None,
             desc: str = "") -> np.ndarray:
        """``[N, H, W]`` float32 stack of :meth:`resized` images (all, or ``indices``)."""
        from ..utils import progress

        idx = list(range(len(self))) if indices is None else [int(i) for i in indices]
        out = np.empty((len(idx), int(size[0]), int(size[1])), dtype=np.float32)
        for n, i in enumerate(progress(idx, total=len(idx), desc=desc or f"{self.name} at {size[0]}x{size[1]}")):
            out[n] = self.resized(i, size, resample)
        return out


def as_eval_images(ds: Any, store: DecodeStore | None = None) -> EvalImages:
    """``ds`` itself when it is an EvalImages, else a new one over it (decoding once from now on)."""
    return ds if isinstance(ds, EvalImages) else EvalImages(ds, store)


__all__ = ["DecodeStore", "EvalImages", "as_eval_images", "resize", "to01", "RESAMPLING"]
