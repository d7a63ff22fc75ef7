"""``edit()``: edit the films of a prepared dataset into a new, marked and signed set.

>>> from mammosynth.edit import EditConfig, edit                       # doctest: +SKIP
>>> edit("prepared:test", "edited", EditConfig(insert="mass-spiculated:malignant"))  # doctest: +SKIP

Each source film gives at most one edited film, ``<source id>-<op><seed>`` (``-ins0``,
``-rem0``, ``-den0``), a record of kind ``synthetic`` that keeps the source's woman, view,
laterality, age and split, and carries

* the findings after the edit (insert: one more, with its mask and box; remove: one fewer;
  density: the new density), masks of the kept findings copied;
* ``generation``: ``edited: true``, the source image id, file hash and dataset content hash,
  the operation, route, seed and every edit parameter (the film's estimated gain, blur,
  noise...), and ``edit.edit_mask``: the file of the edit mask (``edit_masks/<id>.png``),
  outside which every pixel is the source's, bit for bit.

Marking: the in-file text markings and, for ``fmt="dicom"``, DICOM ``DERIVED``/``ConversionType
SYN`` with the source referenced (:mod:`mammosynth.provenance`); the finished set is signed
(``provenance.json``). The invisible watermark is **not** embedded: it changes every pixel
of the film, which the bit-for-bit rule forbids (the text records why).

Bad input for one film (a box outside the breast, a lesion larger than the breast, a
removal on a film without that finding, a density edit on a film without a breast) is an
:class:`~.editors.EditError`: it goes to ``rejects.jsonl`` naming the image, and the run
goes on. A rerun skips finished films.
"""
from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import __version__
from ..data.prepared import DatasetWriter, PreparedDataset, parse_dataset_spec
from ..data.schema import DENSITIES, ImageRecord
from ..io.images import read_image, write_image
from .editors import OPERATIONS, ROUTES, EditError, EditOutcome, EditRequest, Editor, Site, make_editor
from .film import film_breast

FORMATS = ("png16", "tiff", "dicom")  # 16-bit only: an 8-bit copy would change every pixel
OP_TAG = {"insert": "ins", "remove": "rem", "density": "den"}
EDIT_MASK_DIR = "edit_masks"
NO_WATERMARK = ("not embedded: the watermark changes every pixel, and an edited film keeps the source's "
                "pixels outside the edit mask bit for bit")


@dataclass(frozen=True)
class EditConfig:
    """One edit run (``mammosynth edit`` reuses these defaults). Exactly one of
    ``insert``, ``remove`` and ``density``."""

    insert: str | None = None  # KIND[:PATHOLOGY], e.g. "mass-spiculated:malignant"
    remove: str | None = None  # a finding kind, "any", or a finding index ("0")
    density: str | None = None  # target ACR density A-D
    strength: float = 0.5  # density: SDEdit noise level in (0, 1]
    guidance: float | None = None  # learned routes: classifier-free guidance; None = the run's sampling default
    route: str = "auto"  # auto | physics | diffusion
    model: str | None = None  # diffusion run / saved pipeline for the learned routes
    box: tuple[int, int, int, int] | None = None  # insert: (x0, y0, x1, y1) for every film
    sites: str | None = None  # insert: CSV image_id,x0,y0,x1,y1[,mask] (mask: PNG path) per film
    size_mm: float | None = None  # insert: a mass's diameter (spiculated: its core's); None = drawn
    normal_only: bool = False  # insert: only films without findings
    seed: int = 0
    feather_px: int = 3
    fmt: str = "png16"
    key: str | None = None  # signing key (directory or private PEM); None = the default pair
    limit: int | None = None  # edit at most this many films (the first it may edit, in manifest order)

    def __post_init__(self) -> None:
        given = [op for op in OPERATIONS if getattr(self, op) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of --insert, --remove, --density (got {given or 'none'})")
        if self.route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, got {self.route!r}")
        if self.density is not None and self.density not in DENSITIES[:4]:
            raise ValueError(f"--density must be one of {DENSITIES[:4]}, got {self.density!r}")
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"--strength must be in (0, 1], got {self.strength}")
        if self.guidance is not None and not self.guidance >= 0:
            raise ValueError(f"--guidance must be >= 0, got {self.guidance}")
        if self.fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.fmt!r}")
        if self.seed < 0 or self.feather_px < 1 or (self.limit is not None and self.limit < 1):
            raise ValueError("seed must be >= 0, feather_px >= 1 and limit >= 1")
        if self.box is not None:
            if len(self.box) != 4:
                raise ValueError(f"box must be (x0, y0, x1, y1), got {self.box!r}")
            object.__setattr__(self, "box", tuple(int(v) for v in self.box))
        if (self.box is not None or self.sites is not None or self.size_mm is not None) and self.insert is None:
            raise ValueError("--box, --sites and --size place and size insertions; they need --insert")

    @property
    def operation(self) -> str:
        return next(op for op in OPERATIONS if getattr(self, op) is not None)

    def to_settings(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("key")
        d.pop("limit")
        if d["guidance"] is None:  # the run's default: sets written before the option resume unchanged
            d.pop("guidance")
        return d


@dataclass(frozen=True)
class EditResult:
    """What one :func:`edit` run did."""

    out: Path
    edited: int  # films edited by this run
    skipped: int  # already edited by an earlier run, or not selected (normal_only)
    rejected: tuple[dict[str, str], ...]  # {"source_file": image id, "reason": ...}


def select_films(records: Sequence[ImageRecord], config: EditConfig) -> tuple[list[tuple[int, ImageRecord]], int]:
    """The films a run edits, as (manifest index, record) in manifest order: the first
    ``limit`` of those it may edit (``normal_only`` insertions pass over films with
    findings), and how many it passed over on the way. ``--limit 60 --normal-only`` thus
    edits 60 normal films (it used to count the passed-over ones toward the 60)."""
    chosen: list[tuple[int, ImageRecord]] = []
    passed = 0
    for index, rec in enumerate(records):
        if config.limit and len(chosen) >= config.limit:
            break
        if config.normal_only and config.insert is not None and rec.findings:
            passed += 1
            continue
        chosen.append((index, rec))
    return chosen, passed


def edited_id(source_id: str, config: EditConfig) -> str:
    return f"{source_id}-{OP_TAG[config.operation]}{config.seed}"


def _rng(seed: int, image_id: str) -> np.random.Generator:
    key = int(hashlib.sha256(image_id.encode()).hexdigest()[:8], 16)
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(key,)))


def read_sites(path: str | os.PathLike) -> dict[str, Site]:
    """``image_id,x0,y0,x1,y1[,mask]`` rows (header required); a bad row names FILE:LINE."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: sites file not found")
    out: dict[str, Site] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.DictReader(f), 2):
            try:
                box = None
                if (row.get("x0") or "").strip():
                    box = tuple(int(float(row[k])) for k in ("x0", "y0", "x1", "y1"))
                mask = None
                if (row.get("mask") or "").strip():
                    mpath = Path(row["mask"].strip())
                    mask = read_image(mpath if mpath.is_absolute() else path.parent / mpath)[0] > 0
                if box is None and mask is None:
                    raise ValueError("neither a box nor a mask")
                out[row["image_id"].strip()] = Site(box, mask)
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                raise ValueError(f"{path}:{n}: bad site row ({exc})") from exc
    return out


def _finding_to_remove(record: ImageRecord, spec: str) -> int:
    """Index of the finding ``spec`` names (kind, "any" or an index); EditError when absent."""
    if spec.isdigit():
        k = int(spec)
        if k >= len(record.findings):
            raise EditError(f"{record.image_id}: has no finding {k} to remove ({len(record.findings)} findings)")
        return k
    for k, f in enumerate(record.findings):
        if spec in ("any", f.kind):
            return k
    raise EditError(f"{record.image_id}: has no {'' if spec == 'any' else spec + ' '}finding to remove")


def _request(ds: PreparedDataset, record: ImageRecord, config: EditConfig, sites: dict[str, Site]) -> EditRequest:
    """Read one film and check what does not depend on the route."""
    image = ds.image(record)
    masks = {k: m for k in range(len(record.findings)) if (m := ds.mask(record, k)) is not None}
    req = EditRequest(image, record, masks, _rng(config.seed, record.image_id), strength=config.strength)
    if config.insert is not None:
        site = sites.get(record.image_id)
        req.site = site if site is not None else Site(config.box) if config.box is not None else None
    elif config.remove is not None:
        req.finding = _finding_to_remove(record, config.remove)
        f = record.findings[req.finding]
        if req.finding not in masks and f.box is None:
            raise EditError(f"{record.image_id}: finding {req.finding} ({f.kind}) has neither a mask nor a box "
                            "to remove")
    else:
        if not film_breast(image).any():
            raise EditError(f"{record.image_id}: no breast mask (nothing brighter than the background): "
                            "a density edit needs one")
        req.density = config.density
    return req


def _record(source: ImageRecord, ds: PreparedDataset, outcome: EditOutcome, config: EditConfig, index: int,
            new_id: str, mask_file: str, editor_settings: dict[str, Any]) -> ImageRecord:
    generation = {
        "edited": True,
        "operation": config.operation,
        "route": editor_settings.get("route"),
        "source_image_id": source.image_id,
        "source_file": source.file,
        "source_sha256": source.sha256,
        "source_dataset": str(ds.root),
        "source_content_hash": ds.content_hash,
        "seed": config.seed,
        "index": index,
        "edit": {**outcome.params, "edit_mask": mask_file, "edit_pixels": int(outcome.edit_mask.sum())},
        "mammosynth_version": __version__,
    }
    return source.replace(image_id=new_id, findings=outcome.findings, synthetic=True, generation=generation,
                          density=outcome.density or source.density, file=None, sha256=None)


def edit(prepared: str | os.PathLike | PreparedDataset, out: str | os.PathLike,
         config: EditConfig = EditConfig(insert="mass"), *, editor: Editor | None = None) -> EditResult:
    """Edit every film of ``prepared`` (``PATH[:split]``) into the synthetic set ``out``.

    ``editor``: a route of your own (any :class:`~.editors.Editor` for ``config.operation``);
    default: :func:`~.editors.make_editor` of ``config``.
    """
    from .. import provenance
    from ..provenance.markings import synthetic_text
    from ..utils import progress

    ds = prepared if isinstance(prepared, PreparedDataset) else PreparedDataset(prepared)
    if editor is not None and editor.operation != config.operation:
        raise ValueError(f"editor {type(editor).__name__} does {editor.operation!r}, the config asks for "
                         f"{config.operation!r}")
    # a configuration no route can run fails before anything is written
    editor = editor if editor is not None else make_editor(config)
    sites = read_sites(config.sites) if config.sites else {}
    out = Path(out)
    if out.resolve() == Path(parse_dataset_spec(ds.root)[0]).resolve():
        raise ValueError(f"{out}: is the source dataset; write the edited films elsewhere")
    source = {"edited_from": str(ds.root), "split": ds.split, "kind": ds.kind, "content_hash": ds.content_hash,
              "editor": editor.settings()}
    writer = DatasetWriter(out, kind="synthetic", source=source, settings=config.to_settings(), fmt=config.fmt)
    file_writer = provenance.write_synthetic_dicom if config.fmt == "dicom" else None
    chosen, skipped = select_films(ds.records, config)
    edited = 0
    try:
        for index, rec in progress(chosen, total=len(chosen), desc=f"edit {out.name}"):
            new_id = edited_id(rec.image_id, config)
            if writer.has(new_id):
                skipped += 1
                continue
            try:
                outcome = editor.apply(_request(ds, rec, config, sites))
            except EditError as exc:
                writer.reject(rec.image_id, str(exc))
                continue
            except (ValueError, OSError) as exc:  # an unreadable film or mask
                writer.reject(rec.image_id, f"{rec.image_id}: cannot be read ({exc})")
                continue
            mask_file = f"{EDIT_MASK_DIR}/{new_id}.png"
            write_image(out / mask_file, outcome.edit_mask.astype(np.uint8) * 255, fmt="png8")
            record = _record(rec, ds, outcome, config, index, new_id, mask_file, editor.settings())
            text = synthetic_text(record, record.generation, watermark={"scheme": None, "reason": NO_WATERMARK})
            writer.add(record, outcome.image, masks=outcome.masks, text=text, file_writer=file_writer)
            edited += 1
    finally:
        writer.close(extra={"edit": {"operation": config.operation, **editor.settings()}})
    provenance.finalize_synthetic_set(out, key=config.key)
    return EditResult(out, edited, skipped, tuple(writer.rejects))
