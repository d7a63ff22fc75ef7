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

import hashlib
import json
import multiprocessing as mp
import os
import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ..io.images import ImageReadError, read_image
from ..io.dicom import dicom_identifiers
from ..io.paths import confine
from ..utils import num_workers, progress
from .adapters import LabelReject, Note, SourceItem, detect_layout, get_adapter
from .geometry import map_box, map_mask, scaled_spacing, unmap_box
from .prepared import DatasetWriter, split_for_patient
from .preprocess import PreprocessConfig, breast_masks, preprocess, view_from_image
from .schema import Finding, ImageRecord, hash_patient_id

EXIT_OK, EXIT_FAIL, EXIT_PARTIAL = 0, 1, 3
#: Images with a side shorter than this are not mammograms (1x1, 2x2, 1x4000 strips...).
MIN_IMAGE_SIDE = 32


@dataclass(frozen=True)
class IngestConfig:
    """Ingestion settings (the CLI reuses these defaults)."""

    preprocess: PreprocessConfig = PreprocessConfig()
    workers: int | None = 2  # process pool size; None: all available cores; 1: no pool
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    salt: str = "mammosynth"  # patient-id and name hash salt (not stored in the dataset)
    limit: int | None = None  # ingest at most this many images (quick looks)
    allow_synthetic: bool = False  # keep inputs marked as mammosynth synthetics (recorded synthetic)
    hash_names: bool = False  # always replace file/folder names by salted hashes

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
    synthetic_kept: int = 0  # inputs with mammosynth markings kept (allow_synthetic), this run

    @property
    def synthetic_refused(self) -> int:
        """Inputs refused because they carry mammosynth's synthetic markings (this run)."""
        return sum(1 for r in self.rejects if r["reason"].startswith("synthetic: mammosynth"))

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
        if self.synthetic_refused:
            lines.append(f"  {self.synthetic_refused} synthetic image(s) refused: they carry mammosynth's markings "
                         "(--allow-synthetic keeps them, recorded as synthetic)")
        if self.synthetic_kept:
            lines.append(f"  {self.synthetic_kept} synthetic image(s) kept (--allow-synthetic), recorded synthetic: true")
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


PRIVATE_NAMES_SUFFIX = ".PRIVATE-names.jsonl"
#: Layouts of public collections whose file/folder names are the collection's own
#: de-identified subject ids (CBIS ``P_00001``, CMMD ``D1-0001``...), equal to the DICOM
#: PatientID by design: their names are kept unless ``hash_names``. ``folder`` and
#: ``prepared`` (hospital exports, anything else) are always checked.
DEIDENTIFIED_LAYOUTS = frozenset({"mias", "cbis-ddsm", "vindr", "inbreast", "rsna", "cmmd"})
_LABEL_LINE = re.compile(r"^[\w.-]+\.(csv|txt|CSV|TXT):\d+$")  # "labels.csv:12": names no patient


def private_names_path(out: str | os.PathLike) -> Path:
    """Where the withheld source names of ``out`` go: ``OUT.PRIVATE-names.jsonl`` beside the
    dataset, never inside it (the dataset folder is what gets shared)."""
    out = Path(out)
    return out.parent / (out.name + PRIVATE_NAMES_SUFFIX)


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(text).lower())


def name_holds_identifier(name: str, values: Iterable[str], min_chars: int = 3) -> bool:
    """Whether a file/folder path holds one of a file's identifying values (compared without
    case and punctuation, so ``Doe^Jane`` matches ``DOE_JANE``; values under ``min_chars``
    letters/digits are too common to count)."""
    flat = _norm(name)
    return any(len(v) >= min_chars and v in flat for v in map(_norm, values))


def hashed_name(salt: str, source_file: str) -> str:
    """The salted-hash image id that replaces a withheld name (stable across reruns)."""
    return "img-" + hashlib.sha256(f"{salt}\x00name\x00{source_file}".encode()).hexdigest()[:16]


def scrub(text: str, words: Iterable[str], replacement: str) -> str:
    """``text`` with every word (case-insensitive, longest first) replaced."""
    for w in sorted({str(w) for w in words if w and len(_norm(w)) >= 3}, key=len, reverse=True):
        text = re.sub(re.escape(w), replacement, text, flags=re.IGNORECASE)
    return text


def junk_reason(arr: np.ndarray) -> str | None:
    """Why an image cannot be a mammogram (too small, constant), or None."""
    h, w = arr.shape
    if min(h, w) < MIN_IMAGE_SIDE:
        return f"not a mammogram: {w}x{h} image is smaller than the minimum of {MIN_IMAGE_SIDE} px a side"
    lo, hi = int(arr.min()), int(arr.max())
    if lo == hi:
        return f"not a mammogram: constant image (every pixel is {lo}); no breast found"
    return None


def _reduced_for_watermark(arr: np.ndarray, cap: int = 256) -> np.ndarray:
    """Block-mean reduction to at most ``cap`` px a side (same dtype; 256 = the detector's own
    working size, so it does no further resizing): the watermark lives in low frequencies,
    and summing whole rows first, in integers, keeps this a few ms on a full-field film."""
    k = int(np.ceil(max(arr.shape) / cap))
    if k <= 1:
        return arr
    h, w = (arr.shape[0] // k) * k, (arr.shape[1] // k) * k
    bands = arr[:h, :w].reshape(h // k, k, w).sum(axis=1, dtype=np.uint32)  # k whole rows at a time
    small = bands.reshape(h // k, w // k, k).sum(axis=2, dtype=np.uint64)
    return ((small + (k * k) // 2) // (k * k)).astype(arr.dtype)


def _precheck_config() -> Any:
    """The watermark detector cut down for a check on every input: no crop hypotheses (set
    by the caller), 4 blur-gain hypotheses instead of 16, one hypothesis decoded with up to
    2 bit flips (137 codewords: false-positive bound 3.2e-8 an image, vs 1.8e-6 for the full
    search). It still finds the mark after JPEG 50 or a 0.5x resize at 256x160 (measured on
    8 images each); ``mammosynth detect`` keeps the full search."""
    from ..provenance.watermark import WatermarkConfig

    return WatermarkConfig(decode_top=1, chase_flips=2, gain_grid=(0.0, 5e-4))


def synthetic_evidence(arr: np.ndarray, meta: dict[str, Any]) -> dict[str, Any] | None:
    """mammosynth's own markings on an input, checked before preprocessing: text chunks
    (PNG/TIFF/JPEG), DICOM SYN/SYNTHETIC marks and the invisible watermark (a cut-down
    search, :func:`_precheck_config`, on a copy reduced to 256 px a side). None when unmarked."""
    from ..provenance.markings import markings_from_text
    from ..provenance.watermark import MIN_SIDE, detect_watermark

    found: dict[str, Any] = {"detected_on_ingest": []}
    marks = markings_from_text(meta.get("text") or {})
    if marks:
        found["detected_on_ingest"].append("metadata")
        found["provenance"] = marks["provenance"]
    if meta.get("synthetic_markers"):
        found["detected_on_ingest"].append("dicom")
        found["dicom"] = list(meta["synthetic_markers"])
    small = _reduced_for_watermark(arr)
    if min(small.shape) >= MIN_SIDE:
        det = detect_watermark(small, _precheck_config(), crops=False)
        if det.found:
            found["detected_on_ingest"].append("watermark")
            found["watermark"] = {"payload": f"{det.payload:016x}", "p_value": det.p_value}
    return found if found["detected_on_ingest"] else None


def process_item(item: SourceItem, pcfg: PreprocessConfig, salt: str,
                 fractions: tuple[float, float, float], kind: str = "real",
                 allow_synthetic: bool = False, hash_names: bool = False,
                 check_names: bool = True) -> tuple[str, Any]:
    """Read, preprocess and label one item.

    Returns ``("ok", (record, image, masks, private))`` or ``("reject", reason)``, or, when
    the item's name is withheld, ``("reject", (reason, private))``. ``private`` is None or
    ``{"id", "source_file"}``: the name went to a salted hash (``hash_names``, or the
    file/folder name holds an identifying value of its DICOM) and the pair belongs in the
    private names file only (``check_names=False``: only with ``hash_names``). ``kind``: the dataset's kind; into a ``real`` set an input
    carrying mammosynth's markings is refused (``allow_synthetic``: kept, recorded
    synthetic with its provenance).
    """
    seen: list[str] = []  # the file's identifying values, once read (compared, never stored)
    try:
        status, payload = _process(item, pcfg, salt, fractions, kind, allow_synthetic, seen)
    except (ValueError, OSError) as exc:
        status, payload = "reject", str(exc)
    except Exception as exc:  # a bad file must never stop the run
        status, payload = "reject", f"unexpected error ({type(exc).__name__}: {exc})"
    if status == "reject" and not seen and item.path.suffix.lower() in (".dcm", ".dicom", ""):
        seen = dicom_identifiers(item.path)  # the header may still name the patient
    name = f"{item.extra.get('source_name', '')}/{item.source_file}"  # the source folder's own name counts
    if not (hash_names or (check_names and name_holds_identifier(name, seen))):
        return (status, payload) if status == "reject" else (status, (*payload, None))
    private = {"id": hashed_name(salt, item.source_file), "source_file": item.source_file}
    if status == "reject":
        words = [item.source_file, str(item.path), item.path.name, item.path.stem, item.image_id, *seen]
        return "reject", (scrub(payload, words, private["id"]), private)
    record, image, masks = payload
    return "ok", (record.replace(image_id=private["id"], source_file=None), image, masks, private)


def _process(item: SourceItem, pcfg: PreprocessConfig, salt: str, fractions: tuple[float, float, float],
             kind: str, allow_synthetic: bool, seen: list[str]) -> tuple[str, Any]:
    """The work of :func:`process_item`; fills ``seen`` with the file's identifying values."""
    try:
        arr, meta = read_image(item.path)
    except ImageReadError as exc:
        return "reject", f"unreadable image: {exc.reason}"
    seen += [str(v) for v in meta.pop("identifiers_raw", [])]
    if meta.get("bit_depth") not in (8, 10, 12, 14, 16):
        return "reject", f"wrong bit depth {meta.get('bit_depth')}"
    junk = junk_reason(arr)
    if junk:
        return "reject", junk
    synthetic = synthetic_evidence(arr, meta) if kind == "real" else None
    if synthetic is not None and not allow_synthetic:
        return "reject", (f"synthetic: mammosynth markings found ({', '.join(synthetic['detected_on_ingest'])}); "
                          "refused as real (--allow-synthetic keeps it, recorded as synthetic)")
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
    view = item.view or meta.get("view") or "other"
    if item.extra.get("view_from_image") and view == "other":  # the header names no view (CMMD)
        guess, ratio = view_from_image(pre.image, breast_masks(pre.image[None])[0])
        info["view_from_image"] = {"view": guess, "pectoral_ratio": round(ratio, 3)}
        view = guess or "other"
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
        view=view, density=item.density,
        density_source=item.density_source, findings=tuple(findings),
        age=item.age if item.age is not None else meta.get("age"),
        source_dataset=item.extra.get("dataset", "unknown"), source_file=item.source_file,
        pixel_spacing_mm=scaled_spacing(spacing, pre.transforms), bit_depth=int(meta["bit_depth"]),
        preprocessing=info, split=item.split or split_for_patient(patient, fractions),
        synthetic=synthetic is not None, generation=synthetic,
    )
    return "ok", (record, pre.image, out_masks)


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


def _outside_paths(source: Path, item: SourceItem) -> str | None:
    """The reason when the item's image or a mask resolves outside SOURCE (every adapter's
    paths pass here before anything opens them), else None."""
    paths = [item.path] + [p for f in item.findings for p in (f.mask_path, f.mask_fallback) if p is not None]
    # adapters name files as SOURCE/..., relative to the working directory when SOURCE is
    # relative (``ingest ../data/mias``): compare absolute paths, never SOURCE/SOURCE/...
    root = Path(source).absolute()
    for p in paths:
        try:
            confine(root, Path(p).absolute())
        except ValueError as exc:
            return str(exc)
    return None


class PrivateNames:
    """The private mapping of withheld names (hash id -> source path), one JSON line each,
    beside the dataset (never inside it), created owner-only (0600)."""

    def __init__(self, path: Path, source: Path):
        self.path, self.source = path, source
        self.used = False
        self._done: set[str] = set()
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    self._done.add(json.loads(line)["id"])
                except (ValueError, KeyError, TypeError):
                    continue

    def add(self, private: dict[str, str], rejected: bool = False) -> None:
        self.used = True
        if private["id"] in self._done:
            return
        self._done.add(private["id"])
        entry = {"id": private["id"], "source_file": private["source_file"], "source": str(self.source),
                 "rejected": rejected,
                 "note": "PRIVATE: maps withheld names to source paths; do not share with the dataset"}
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


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
    names = PrivateNames(private_names_path(out), source)

    def reject(source_file: str, reason: str, private: dict[str, str] | None = None) -> None:
        if private is None and config.hash_names and not _LABEL_LINE.match(source_file):
            private = {"id": hashed_name(config.salt, source_file), "source_file": source_file}
            reason = scrub(reason, [source_file, Path(source_file).name, Path(source_file).stem], private["id"])
        if private is not None:
            names.add(private, rejected=True)
            source_file = private["id"]
        reason = reason if len(reason) <= 1000 else reason[:1000] + "..."  # hostile rows stay readable
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
        outside = _outside_paths(source, entry)
        if outside:
            reject(entry.source_file, outside)
            continue
        if config.hash_names:  # known before reading: reruns find the hashed ids done
            entry.image_id = hashed_name(config.salt, entry.source_file)
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
        entry.extra["source_name"] = source.resolve().name
        jobs.append((entry, pcfg, config.salt, tuple(config.split_fractions), kind,
                     config.allow_synthetic, config.hash_names, layout not in DEIDENTIFIED_LAYOUTS))
    workers = num_workers(config.workers)
    try:
        for job, (status, payload) in zip(jobs, progress(_results(jobs, workers), total=len(jobs), desc=f"ingest {layout}")):
            item = job[0]
            if status != "ok":
                reason, private = payload if isinstance(payload, tuple) else (payload, None)
                reject(item.source_file, reason, private)
                continue
            record, image, masks, private = payload
            if private is not None:
                names.add(private)
            if writer.has(record.image_id):  # withheld name found done by an earlier run
                result.skipped += 1
                continue
            writer.add(record, image, masks=masks)
            result.added += 1
            result.synthetic_kept += int(record.synthetic and kind == "real")
    finally:
        if names.used or config.hash_names:  # the source path may hold a name too
            writer.source["path"] = f"(withheld: see {names.path.name} beside the dataset)"
        kept = sum(1 for r in writer.records if r.synthetic) if kind == "real" else 0
        info = writer.close(extra={"ingest": {"layout": layout, "rejects_this_run": len(result.rejects),
                                              "synthetic_refused_this_run": result.synthetic_refused,
                                              "synthetic_kept": kept, "notes": result.notes}})
    result.total = len(writer.records)
    result.counts = info["counts"]
    return result


def iter_items(source: str | os.PathLike, layout: str = "auto") -> Iterable[SourceItem | LabelReject]:
    """The adapter's raw items for SOURCE (for inspection and tests)."""
    source = Path(source)
    return get_adapter(detect_layout(source) if layout == "auto" else layout).scan(source)


__all__ = ["IngestConfig", "IngestResult", "PreprocessConfig", "hashed_name", "ingest", "iter_items",
           "name_holds_identifier", "private_names_path", "process_item", "synthetic_evidence"]
