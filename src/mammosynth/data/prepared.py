"""The prepared-dataset format: the one on-disk format every stage reads and writes.

::

    PREPARED/
      dataset.json      schema version, kind, source, preprocessing/generation settings,
                        counts, SHA-256 of every stored file
      manifest.jsonl    one ImageRecord per line (see :mod:`mammosynth.data.schema`)
      images/           one image per record (16-bit PNG by default; PNG8/TIFF/DICOM allowed)
      masks/            optional 8-bit lesion masks (0/255), referenced by findings
      rejects.jsonl     optional: inputs that could not be used, with the reason

:class:`DatasetWriter` appends records idempotently (a rerun skips finished images,
never silently overwrites one), writes every file atomically, and finalises
``dataset.json``. :class:`PreparedDataset` reads it back, optionally one split only
(``PATH:train``).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .. import __version__
from ..io.images import read_image, write_image
from ..utils import atomic_file, check_output_dir, disk_full_names
from .schema import SCHEMA_VERSION, SPLITS, ImageRecord

MANIFEST = "manifest.jsonl"
DATASET_JSON = "dataset.json"
REJECTS = "rejects.jsonl"
DATASET_KINDS = ("real", "phantom", "synthetic")
FORMAT_SUFFIX = {"png16": ".png", "png8": ".png", "tiff": ".tif", "dicom": ".dcm"}


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text to a temporary file beside ``path`` then rename it into place."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def parse_dataset_spec(spec: str | os.PathLike) -> tuple[Path, str | None]:
    """Split ``"PATH[:split]"`` into the path and the split name (or None)."""
    text = str(spec)
    head, sep, tail = text.rpartition(":")
    if sep and tail in SPLITS and head:
        return Path(head), tail
    return Path(text), None


def split_for_patient(patient_id: str, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), salt: str = "split") -> str:
    """Deterministic patient-level split: the same patient always lands in the same split."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    u = int(hashlib.sha256(f"{salt}\x00{patient_id}".encode()).hexdigest()[:12], 16) / float(1 << 48)
    if u < fractions[0]:
        return "train"
    if u < fractions[0] + fractions[1]:
        return "val"
    return "test"


class PreparedDataset:
    """A prepared dataset on disk, optionally restricted to one split.

    >>> ds = PreparedDataset("prepared:train")      # doctest: +SKIP
    >>> img = ds.image(0)                            # uint16 HxW
    """

    def __init__(self, path: str | os.PathLike, split: str | None = None):
        root, spec_split = parse_dataset_spec(path)
        if split is not None and spec_split is not None and split != spec_split:
            raise ValueError(f"conflicting splits {spec_split!r} and {split!r} for {path}")
        split = split or spec_split
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.root = root
        self.split = split
        info_path = root / DATASET_JSON
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: not a prepared dataset (directory not found)")
        if not info_path.is_file():
            raise FileNotFoundError(f"{info_path}: missing; {root} is not a finished prepared dataset")
        try:
            self.info: dict[str, Any] = json.loads(info_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{info_path}: not valid JSON ({exc})") from exc
        version = self.info.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"{info_path}: schema_version {version!r} not supported (expected {SCHEMA_VERSION})")
        records = read_manifest(root / MANIFEST)
        if split is not None:
            records = [r for r in records if r.split == split]
        self.records: list[ImageRecord] = records

    # -- access ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.records)

    def __getitem__(self, i: int) -> ImageRecord:
        return self.records[i]

    def __repr__(self) -> str:
        s = f":{self.split}" if self.split else ""
        return f"PreparedDataset({str(self.root)!r}{s}, n={len(self)}, kind={self.kind!r})"

    @property
    def kind(self) -> str:
        return self.info.get("kind", "real")

    @property
    def content_hash(self) -> str:
        """SHA-256 over the stored files' hashes and the split: a cache key for features."""
        files = self.info.get("files", {})
        h = hashlib.sha256()
        for r in self.records:
            h.update(f"{r.file}:{files.get(r.file, r.sha256)}\n".encode())
        return h.hexdigest()

    def path_of(self, record: ImageRecord | int) -> Path:
        r = self.records[record] if isinstance(record, int) else record
        if r.file is None:
            raise ValueError(f"{self.root}: record {r.image_id} has no stored file")
        return self.root / r.file

    def image(self, record: ImageRecord | int) -> np.ndarray:
        """The stored image as uint16 (8-bit files are scaled up)."""
        from ..io.images import to_uint16

        arr, _ = read_image(self.path_of(record))
        return to_uint16(arr)

    def images(self, indices: Iterable[int] | None = None) -> Iterator[np.ndarray]:
        for i in range(len(self)) if indices is None else indices:
            yield self.image(i)

    def mask(self, record: ImageRecord | int, finding: int = 0) -> np.ndarray | None:
        """Boolean mask of one finding, or None when the finding has no mask."""
        r = self.records[record] if isinstance(record, int) else record
        f = r.findings[finding]
        if f.mask is None:
            return None
        arr, _ = read_image(self.root / f.mask)
        return arr > 0

    def counts(self) -> dict[str, dict[str, int]]:
        return summarise(self.records)


def read_manifest(path: str | os.PathLike, repair: bool = False) -> list[ImageRecord]:
    """Read ``manifest.jsonl``; a bad line raises ValueError naming file and line.

    A last line without its newline that does not parse is the row a full disk or a kill
    cut in half: it is skipped with a note on stderr (its image is not part of the set and
    a rerun writes it again), and with ``repair`` cut from the file.
    """
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    data = path.read_bytes()
    lines = data.split(b"\n")
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        try:
            out.append(ImageRecord.from_dict(json.loads(line.decode("utf-8"))))
        except (ValueError, TypeError, KeyError) as exc:
            if n == len(lines):  # no newline after it: a torn append
                keep = len(data) - len(raw)
                action = "repaired: cut it" if repair else "skipped it"
                print(f"mammosynth: note: {path}:{n}: torn last row (an interrupted write, e.g. a full "
                      f"disk); {action}, its image will be written again", file=sys.stderr)
                if repair:
                    with open(path, "r+b") as f:
                        f.truncate(keep)
                break
            raise ValueError(f"{path}:{n}: bad manifest row ({exc})") from exc
    return out


def append_line(path: Path, text: str) -> None:
    """Append one line so that a failed write (full disk) leaves the file as it was:
    one ``write`` on an O_APPEND descriptor, cut back to its old size on error."""
    data = text.encode("utf-8")
    with disk_full_names(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            size = os.fstat(fd).st_size
            try:
                done = 0
                while done < len(data):
                    done += os.write(fd, data[done:])
            except BaseException:
                os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)


def summarise(records: Iterable[ImageRecord]) -> dict[str, dict[str, int]]:
    """Label counts per axis (density, finding, view, laterality, split)."""
    records = list(records)
    return {
        "images": {"total": len(records)},
        "density": dict(Counter(r.density for r in records)),
        "finding": dict(Counter(r.finding_kind for r in records)),
        "view": dict(Counter(r.view for r in records)),
        "laterality": dict(Counter(r.laterality for r in records)),
        "split": dict(Counter(r.split or "none" for r in records)),
    }


class DatasetWriter:
    """Write a prepared dataset, resumably.

    Opening an existing directory loads its manifest: :meth:`has` tells which images
    are finished so a rerun can skip them; :meth:`add` refuses to overwrite a finished
    image unless ``overwrite=True``. Files are written atomically and the manifest line
    is appended only after the image is on disk, so an interruption loses at most the
    image in flight. :meth:`close` writes ``dataset.json``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        kind: str,
        source: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        fmt: str = "png16",
        overwrite: bool = False,
    ):
        if kind not in DATASET_KINDS:
            raise ValueError(f"kind must be one of {DATASET_KINDS}, got {kind!r}")
        if fmt not in FORMAT_SUFFIX:
            raise ValueError(f"format must be one of {tuple(FORMAT_SUFFIX)}, got {fmt!r}")
        self.root = Path(root)
        self.kind, self.fmt, self.overwrite = kind, fmt, overwrite
        self.source = source or {}
        self.settings = settings or {}
        check_output_dir(self.root)
        with disk_full_names(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "images").mkdir(exist_ok=True)
        info_path = self.root / DATASET_JSON
        if info_path.is_file():
            old = json.loads(info_path.read_text(encoding="utf-8"))
            if old.get("kind") != kind:
                raise ValueError(f"{self.root}: holds a {old.get('kind')!r} dataset, refusing to add {kind!r} images")
            old_settings = old.get("settings", {})
            if old_settings and self.settings and old_settings != json.loads(json.dumps(self.settings)):
                raise ValueError(
                    f"{self.root}: was written with other settings ({old_settings}); "
                    "use a new output directory or --overwrite"
                )
        self._records: dict[str, ImageRecord] = {r.image_id: r for r in read_manifest(self.root / MANIFEST,
                                                                                       repair=True)}
        self._rejects: list[dict[str, Any]] = []
        rej = self.root / REJECTS
        if rej.is_file():
            for line in rej.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    self._rejects.append(json.loads(line))
                except json.JSONDecodeError:  # a torn line of an interrupted run: that input is retried
                    continue

    # -- state ----------------------------------------------------------------------
    def has(self, image_id: str) -> bool:
        """True when ``image_id`` is finished (in the manifest and its file is present)."""
        r = self._records.get(image_id)
        return r is not None and r.file is not None and (self.root / r.file).is_file()

    @property
    def records(self) -> list[ImageRecord]:
        return list(self._records.values())

    @property
    def rejects(self) -> list[dict[str, Any]]:
        return list(self._rejects)

    def reject(self, source_file: str, reason: str) -> None:
        """Record an input that could not be used (kept in ``rejects.jsonl``)."""
        entry = {"source_file": str(source_file), "reason": str(reason)}
        if entry in self._rejects:
            return
        self._rejects.append(entry)
        append_line(self.root / REJECTS, json.dumps(entry) + "\n")

    # -- writing --------------------------------------------------------------------
    def add(
        self,
        record: ImageRecord,
        image: np.ndarray,
        masks: dict[int, np.ndarray] | None = None,
        text: dict[str, str] | None = None,
        file_writer: Callable[[Path, np.ndarray, ImageRecord], None] | None = None,
    ) -> ImageRecord:
        """Store one image (and optional finding masks) and append its manifest row.

        ``masks`` maps finding index -> boolean array; the finding's ``mask`` field is set.
        ``file_writer(path, image, record)`` writes formats :func:`write_image` does not
        (DICOM). Returns the stored record (file, sha256, size filled in). The same as
        :meth:`commit` of :meth:`store`.
        """
        return self.commit(self.store(record, image, masks=masks, text=text, file_writer=file_writer))

    def store(
        self,
        record: ImageRecord,
        image: np.ndarray,
        masks: dict[int, np.ndarray] | None = None,
        text: dict[str, str] | None = None,
        file_writer: Callable[[Path, np.ndarray, ImageRecord], None] | None = None,
    ) -> ImageRecord:
        """The file half of :meth:`add`: write the image (and masks) and return the record
        to :meth:`commit`. Touches only this image's files, so several threads may store
        images at once while one thread commits them; an image stored but never committed
        is not part of the set (a rerun writes it again)."""
        if self.has(record.image_id) and not self.overwrite:
            raise FileExistsError(f"{self.root}: image {record.image_id} already written (use overwrite)")
        image = np.asarray(image)
        if image.ndim != 2:
            raise ValueError(f"{record.image_id}: expected a 2-D image, got shape {image.shape}")
        rel = f"images/{record.image_id}{FORMAT_SUFFIX[self.fmt]}"
        findings = list(record.findings)
        for k, m in (masks or {}).items():
            if not (0 <= k < len(findings)):
                raise ValueError(f"{record.image_id}: mask for finding {k} but record has {len(findings)} findings")
            m = np.asarray(m).astype(bool)
            if m.shape != image.shape:
                raise ValueError(f"{record.image_id}: mask shape {m.shape} differs from image {image.shape}")
            mrel = f"masks/{record.image_id}_{k}.png"
            with disk_full_names(self.root / mrel):
                write_image(self.root / mrel, m.astype(np.uint8) * 255, fmt="png8")
            findings[k] = type(findings[k]).from_dict({**findings[k].to_dict(), "mask": mrel})
        if self.fmt == "dicom":
            if file_writer is None:
                raise ValueError("format 'dicom' needs a file_writer (see mammosynth.provenance.dicom)")
        if file_writer is not None:
            target = self.root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with disk_full_names(target):
                file_writer(target, image, record)
        else:
            with disk_full_names(self.root / rel):
                write_image(self.root / rel, image, fmt=self.fmt, text=text)
        return record.replace(
            file=rel,
            findings=tuple(findings),
            sha256=sha256_file(self.root / rel),
            height=int(image.shape[0]),
            width=int(image.shape[1]),
        )

    def commit(self, stored: ImageRecord) -> ImageRecord:
        """The manifest half of :meth:`add`: append the row of an image :meth:`store` wrote."""
        if stored.file is None or not (self.root / stored.file).is_file():
            raise ValueError(f"{self.root}: image {stored.image_id} has no stored file; store it first")
        if self.has(stored.image_id) and not self.overwrite:
            raise FileExistsError(f"{self.root}: image {stored.image_id} already written (use overwrite)")
        append_line(self.root / MANIFEST, json.dumps(stored.to_dict()) + "\n")  # only after the image is on disk
        self._records[stored.image_id] = stored
        return stored

    def close(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Rewrite the manifest compactly (last row per image wins) and write dataset.json."""
        records = sorted(self._records.values(), key=lambda r: r.image_id)
        atomic_write_text(self.root / MANIFEST, "".join(json.dumps(r.to_dict()) + "\n" for r in records))
        files: dict[str, str] = {}
        for r in records:
            if r.file:
                files[r.file] = r.sha256 or sha256_file(self.root / r.file)
            for f in r.findings:
                if f.mask:
                    files[f.mask] = sha256_file(self.root / f.mask)
        info = {
            "schema_version": SCHEMA_VERSION,
            "kind": self.kind,
            "format": self.fmt,
            "mammosynth_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "source": self.source,
            "settings": self.settings,
            "counts": summarise(records),
            "rejects": len(self._rejects),
            "manifest_sha256": sha256_file(self.root / MANIFEST),
            "files": files,
        }
        if extra:
            info.update(extra)
        atomic_write_text(self.root / DATASET_JSON, json.dumps(info, indent=2) + "\n")
        return info

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
