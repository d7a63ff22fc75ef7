"""Ingest a real repository into a prepared dataset.

>>> from mammosynth import ingest, IngestConfig, PreprocessConfig      # doctest: +SKIP
>>> res = ingest("mias-dev", layout="mias", out="prepared",
...              config=IngestConfig(preprocess=PreprocessConfig(size=(256, 160))))
>>> res.added, res.rejected, res.exit_code

A layout adapter (:mod:`mammosynth.data.adapters`) turns SOURCE into items with raw
labels; each item is read (raster or DICOM), preprocessed
(:mod:`mammosynth.data.preprocess`), its boxes and masks mapped through the recorded
transforms, and written with :class:`~mammosynth.data.prepared.DatasetWriter`.
Anything that cannot be used goes to ``rejects.jsonl`` with its reason; nothing stops
the run. A rerun skips finished images. Patient ids are salted hashes and the split is
patient-level (:func:`~mammosynth.data.prepared.split_for_patient`).
"""
from __future__ import annotations

import multiprocessing as mp
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ..io.images import ImageReadError, read_image
from ..utils import num_workers, progress
from .adapters import LabelReject, Note, SourceItem, detect_layout, get_adapter
from .prepared import DatasetWriter, split_for_patient
from .preprocess import PreprocessConfig, map_box, map_mask, preprocess, scaled_spacing, unmap_box
from .schema import Finding, ImageRecord, hash_patient_id

EXIT_OK, EXIT_FAIL, EXIT_PARTIAL = 0, 1, 3


@dataclass(frozen=True)
class IngestConfig:
    """Ingestion settings (the CLI reuses these defaults)."""

    preprocess: PreprocessConfig = PreprocessConfig()
    workers: int | None = 2  # process pool size; None: all available cores; 1: no pool
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    salt: str = "mammosynth"  # patient-id hash salt (not stored in the dataset)
    limit: int | None = None  # ingest at most this many images (quick looks)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        split_for_patient("x", tuple(self.split_fractions))  # validates the fractions


@dataclass
class IngestResult:
    """What one ingest run did."""

    path: Path
    layout: str
    added: int = 0
    skipped: int = 0  # finished in an earlier run
    rejects: list[dict[str, str]] = field(default_factory=list)  # this run's rejects
    total: int = 0  # images in the prepared dataset after the run
    counts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the adapter reported about SOURCE

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    @property
    def exit_code(self) -> int:
        """0: everything ingested; 3: partial (some rejects); 1: nothing in the dataset."""
        if self.total == 0:
            return EXIT_FAIL
        return EXIT_PARTIAL if self.rejects else EXIT_OK

    def summary(self, max_reasons: int = 10) -> str:
        lines = [f"ingest {self.layout}: {self.added} added, {self.skipped} already done, "
                 f"{self.rejected} rejected; {self.total} images in {self.path}"]
        reasons = Counter(_reason_kind(r["reason"]) for r in self.rejects)
        for reason, n in reasons.most_common(max_reasons):
            lines.append(f"  rejected {n:4d} x {reason}")
        for key in ("density", "finding", "laterality", "split"):
            if key in self.counts:
                lines.append(f"  {key}: " + ", ".join(f"{k}={v}" for k, v in sorted(self.counts[key].items())))
        lines += [f"  note: {n}" for n in self.notes]
        if self.rejects:
            lines.append(f"  details: {self.path / 'rejects.jsonl'}")
        return "\n".join(lines)


def _reason_kind(reason: str) -> str:
    """The reason without its per-file detail, for the summary's counts."""
    import re

    head = reason.split(":")[0].split(" (")[0]
    return re.sub(r" (for|in|row) \S+$", "", head)[:60]


# -- per-item work (runs in worker processes) -------------------------------------------

def _finding_box(f: Any, shape: tuple[int, int]) -> tuple[float, float, float, float] | None:
    if f.box is None:
        return None
    h, w = shape
    x0, y0, x1, y1 = (float(v) for v in f.box)
    if f.box_origin == "bottom":
        y0, y1 = h - y1, h - y0
    x0, x1 = max(0.0, x0), min(float(w), x1)
    y0, y1 = max(0.0, y0), min(float(h), y1)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"finding box {f.box} lies outside the {w}x{h} image")
    return (x0, y0, x1, y1)


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    arr, _ = read_image(path)
    if arr.shape != shape:
        raise ValueError(f"ROI mask {path.name} is {arr.shape[1]}x{arr.shape[0]}, image is {shape[1]}x{shape[0]}")
    if len(np.unique(arr)) > 2:
        raise ValueError(f"ROI mask {path.name} is not binary")
    m = arr > 0
    if not m.any():
        raise ValueError(f"ROI mask {path.name} is empty")
    return m


def process_item(item: SourceItem, pcfg: PreprocessConfig, salt: str,
                 fractions: tuple[float, float, float]) -> tuple[str, Any]:
    """Read, preprocess and label one item: ``("ok", (record, image, masks))`` or ``("reject", reason)``."""
    try:
        try:
            arr, meta = read_image(item.path)
        except ImageReadError as exc:
            return "reject", f"unreadable image: {exc.reason}"
        if meta.get("bit_depth") not in (8, 10, 12, 14, 16):
            return "reject", f"wrong bit depth {meta.get('bit_depth')}"
        laterality = item.laterality or meta.get("laterality")
        src_masks: dict[int, np.ndarray] = {}
        boxes = []
        for k, f in enumerate(item.findings):
            box = _finding_box(f, arr.shape)
            if f.mask_path is not None:
                try:
                    m = _read_mask(f.mask_path, arr.shape)
                except ValueError:
                    if f.mask_fallback is None:
                        raise
                    m = _read_mask(f.mask_fallback, arr.shape)
                src_masks[k] = m
                ys, xs = np.nonzero(m)
                box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
            boxes.append(box)
        try:
            pre = preprocess(arr, laterality, pcfg)
        except ValueError as exc:
            return "reject", f"preprocessing failed: {exc}"
        findings, out_masks, dropped, clipped = [], {}, [], []
        for k, (f, box) in enumerate(zip(item.findings, boxes)):
            new_box = map_box(box, pre.transforms) if box is not None else None
            if box is not None and new_box is None:
                dropped.append(k)
            elif new_box is not None and not np.allclose(unmap_box(new_box, pre.transforms), box, atol=1e-6):
                clipped.append(k)  # part of the box lay outside the breast crop
            findings.append(Finding(kind=f.kind, pathology=f.pathology, box=new_box,
                                    source_codes=dict(f.source_codes)))
            if k in src_masks:
                out_masks[k] = map_mask(src_masks[k], pre.transforms)
        by_side = item.extra.get("findings_by_side")
        if by_side is not None:  # labels per breast, the side known only now (CMMD, box-less findings)
            if pre.laterality not in by_side:
                return "reject", f"no label for the {pre.laterality} breast (side from the {pre.info['laterality_source']})"
            findings = [Finding(kind=f.kind, pathology=f.pathology, source_codes=dict(f.source_codes))
                        for f in by_side[pre.laterality]]
        info = dict(pre.info)
        if dropped:
            info["boxes_outside_breast"] = dropped
        if clipped:
            info["boxes_clipped"] = clipped
        for key in ("windowing", "inverted", "photometric"):
            if key in meta:
                info[key] = meta[key]
        info.update(item.extra.get("preprocessing", {}))
        if item.patient_hashed:
            patient = item.patient_hashed
        else:
            raw = item.patient_raw or meta.get("patient_id_raw")
            info["patient_from"] = "label" if item.patient_raw else ("dicom" if raw else "image")
            patient = hash_patient_id(item.extra.get("dataset", "source"), raw or item.image_id, salt=salt)
        spacing = item.pixel_spacing_mm or meta.get("pixel_spacing_mm")
        record = ImageRecord(
            image_id=item.image_id, patient_id=patient, laterality=pre.laterality,
            view=item.view or meta.get("view") or "other", density=item.density,
            density_source=item.density_source, findings=tuple(findings),
            age=item.age if item.age is not None else meta.get("age"),
            source_dataset=item.extra.get("dataset", "unknown"), source_file=item.source_file,
            pixel_spacing_mm=scaled_spacing(spacing, pre.transforms), bit_depth=int(meta["bit_depth"]),
            preprocessing=info, split=item.split or split_for_patient(patient, fractions),
        )
        return "ok", (record, pre.image, out_masks)
    except (ValueError, OSError) as exc:
        return "reject", str(exc)
    except Exception as exc:  # a bad file must never stop the run
        return "reject", f"unexpected error ({type(exc).__name__}: {exc})"


def _work(args: tuple) -> tuple[str, Any]:
    return process_item(*args)


def _results(jobs: list[tuple], workers: int) -> Iterator[tuple[str, Any]]:
    if workers <= 1 or len(jobs) <= 1:
        for j in jobs:
            yield _work(j)
        return
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
        yield from ex.map(_work, jobs, chunksize=max(1, min(8, len(jobs) // (4 * workers))))


# -- the public entry point -------------------------------------------------------------

def ingest(source: str | os.PathLike, layout: str = "auto", out: str | os.PathLike = "prepared",
           config: IngestConfig = IngestConfig()) -> IngestResult:
    """Ingest SOURCE (a repository in ``layout``) into the prepared dataset ``out``.

    Never stops on a bad input: unreadable, truncated, non-image, wrong-bit-depth or
    unlabelled files and bad label rows go to ``rejects.jsonl``. Raises ValueError /
    FileNotFoundError only for a wrong SOURCE/layout or an ``out`` written with other
    settings.
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: source not found")
    if layout == "auto":
        layout = detect_layout(source)
    adapter = get_adapter(layout)
    out = Path(out)
    if out.resolve() == source.resolve() or source.resolve() in out.resolve().parents:
        raise ValueError(f"{out}: the output must lie outside the source {source}")
    pcfg = config.preprocess
    settings = {"layout": layout, "preprocess": pcfg.to_dict(),
                "split_fractions": list(config.split_fractions), "patient_ids": "salted sha256"}
    kind = adapter.dataset_kind(source) if hasattr(adapter, "dataset_kind") else "real"
    writer = DatasetWriter(out, kind=kind, source={"layout": layout, "dataset": adapter.DATASET, "path": str(source)},
                           settings=settings, fmt="png8" if pcfg.bits == 8 else "png16")
    result = IngestResult(path=out, layout=layout)

    def reject(source_file: str, reason: str) -> None:
        writer.reject(source_file, reason)
        result.rejects.append({"source_file": source_file, "reason": reason})

    jobs: list[tuple] = []
    seen: set[str] = set()
    for entry in adapter.scan(source):
        if isinstance(entry, LabelReject):
            reject(entry.source_file, entry.reason)
            continue
        if isinstance(entry, Note):
            result.notes.append(entry.text)
            continue
        if entry.image_id in seen:
            reject(entry.source_file, f"duplicate image id {entry.image_id}")
            continue
        seen.add(entry.image_id)
        if writer.has(entry.image_id):
            result.skipped += 1
            continue
        if config.limit is not None and len(jobs) >= config.limit:
            continue
        entry.extra.setdefault("dataset", adapter.DATASET)
        jobs.append((entry, pcfg, config.salt, tuple(config.split_fractions)))
    workers = num_workers(config.workers)
    try:
        for job, (status, payload) in zip(jobs, progress(_results(jobs, workers), total=len(jobs), desc=f"ingest {layout}")):
            item = job[0]
            if status != "ok":
                reject(item.source_file, payload)
                continue
            record, image, masks = payload
            writer.add(record, image, masks=masks)
            result.added += 1
    finally:
        info = writer.close(extra={"ingest": {"layout": layout, "rejects_this_run": len(result.rejects),
                                              "notes": result.notes}})
    result.total = len(writer.records)
    result.counts = info["counts"]
    return result


def iter_items(source: str | os.PathLike, layout: str = "auto") -> Iterable[SourceItem | LabelReject]:
    """The adapter's raw items for SOURCE (for inspection and tests)."""
    source = Path(source)
    return get_adapter(detect_layout(source) if layout == "auto" else layout).scan(source)


__all__ = ["IngestConfig", "IngestResult", "PreprocessConfig", "ingest", "iter_items", "process_item"]
