"""A deterministic bad-input corpus for ingest (issue 20 section 7), and the check that runs it.

:func:`build_corpus` writes, under ROOT, three sources and a sentinel folder:

* ``folder/`` (layout ``folder``, with ``labels.csv`` naming every file): good films in every
  format; corrupt, truncated, zero-byte and text-as-image files; decompression bombs of
  each format (a tiny file claiming 20000 x 20000 pixels); odd modes (colour, colour
  palette, 1-bit, float, CMYK); DICOMs without pixels, with a wrong bit depth, in colour, or
  named after their patient; junk (1x1, 2x2, 1x4000, 4000x1, constant); a mammosynth
  synthetic; hostile label rows (oversized field, binary bytes, huge numbers, ``../`` and
  absolute paths, masks outside); symlinks to files outside and to ``/etc/hostname``;
* ``mias/`` (layout ``mias``): two good films and hostile ``Info.txt`` rows;
* ``vindr/`` (layout ``vindr``): one good DICOM, nested/``eval``-bait categories and a
  study id that walks out;
* ``outside/``: the sentinel files that nothing may open.

Each input is a :class:`Case` with the outcome expected (``ingest`` or ``reject`` with a
piece of the reason). :func:`run_corpus` ingests every source and compares.
"""
from __future__ import annotations

import io
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

SECRETS = ("MRN4471902", "ACC998877", "Doe^Jane", "DOE_JANE", "Jane")
BOMB = 20000  # claimed side of every bomb: 400 megapixels


@dataclass(frozen=True)
class Case:
    source: str  # sub-source: folder, mias, vindr
    key: str  # source_file as ingest reports it (a path relative to the source, or FILE:LINE)
    category: str
    expect: str  # "ingest" or "reject"
    reason: str = ""  # a piece of the reject reason


@dataclass
class Corpus:
    root: Path
    cases: list[Case] = field(default_factory=list)
    layouts: dict[str, str] = field(default_factory=lambda: {"folder": "folder", "mias": "mias", "vindr": "vindr"})

    def add(self, *a, **k) -> None:
        self.cases.append(Case(*a, **k))


# -- writers -------------------------------------------------------------------------------

def film(size: int = 128, seed: int = 0, side: str = "left") -> np.ndarray:
    from mammosynth.data.adapters.mias import synthetic_film

    return synthetic_film(size, side, seed=seed)


def png_bytes(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", **kw)
    return buf.getvalue()


def png_bomb(w: int = BOMB, h: int = BOMB) -> bytes:
    """A valid-looking PNG (IHDR w x h, 8-bit grey) with a tiny zlib stream of zero rows."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    comp = zlib.compressobj(9)
    row = b"\0" * (w + 1)
    data = b"".join(comp.compress(row) for _ in range(64)) + comp.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def jpeg_bomb(side: int = BOMB) -> bytes:
    """A small JPEG whose SOF0 header claims side x side pixels."""
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    i = data.index(b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", side, side)
    return bytes(data)


def tiff_bomb(w: int = BOMB, h: int = BOMB) -> bytes:
    """A deflate TIFF whose tags claim w x h 8-bit pixels (the strip holds 1000 zero bytes)."""
    data = zlib.compress(b"\0" * 1000, 9)
    tags = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 8), (262, 3, 1, 1),
            (273, 4, 1, 0), (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, len(data))]
    data_off = 8 + 2 + 12 * len(tags) + 4
    out = bytearray(b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", len(tags)))
    for tag, typ, count, value in tags:
        value = data_off if tag == 273 else value
        out += struct.pack("<HHI", tag, typ, count) + (struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value))
    return bytes(out + struct.pack("<I", 0) + data)


def dicom(path: Path, pixels: np.ndarray | None, patient: str = "ANON-0001", accession: str = "A0",
          name: str = "Anon^Anon", bits: int = 12, photometric: str = "MONOCHROME2", rows_cols=None,
          extra: dict | None = None) -> Path:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{zlib.crc32(path.name.encode())}"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.AccessionNumber = name, patient, accession
    ds.ImageLaterality, ds.ViewPosition = "L", "CC"
    shape = rows_cols or (pixels.shape if pixels is not None else (64, 64))
    ds.Rows, ds.Columns = shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = 16 if bits > 8 else 8
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, max(0, bits - 1), 0
    for k, v in (extra or {}).items():
        setattr(ds, k, v)
    if pixels is not None:
        ds.PixelData = pixels.astype(np.uint16 if bits > 8 else np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


# -- the corpus ----------------------------------------------------------------------------

def _outside(root: Path) -> Path:
    d = root / "outside"
    d.mkdir(parents=True, exist_ok=True)
    Image.fromarray(film(seed=90)).save(d / "film.png")
    m = np.zeros((128, 128), np.uint8)
    m[40:60, 40:60] = 255
    Image.fromarray(m).save(d / "mask.png")
    return d


def _folder_images(c: Corpus, src: Path) -> list[str]:
    """Every image file of ``folder/`` with its case; returns the names for labels.csv."""
    f8 = film(seed=1)
    f16 = film(seed=2).astype(np.uint16) * 257
    good = {
        "good/png8.png": png_bytes(f8), "good/png16.png": png_bytes(f16), "good/pgm8.pgm": None,
        "good/jpeg.jpg": None, "good/tiff16.tif": None, "good/grey_rgb.png": png_bytes(np.stack([f8] * 3, -1)),
        "good/grey_alpha.png": None, "good/grey_palette.png": None,
    }
    for name, data in good.items():
        p = src / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            p.write_bytes(data)
        elif name.endswith(".pgm"):
            Image.fromarray(f8).save(p)
        elif name.endswith(".jpg"):
            Image.fromarray(f8).save(p, quality=95)
        elif name.endswith(".tif"):
            import tifffile

            tifffile.imwrite(p, f16)
        elif "alpha" in name:
            Image.fromarray(np.stack([f8, np.full_like(f8, 255)], -1), mode="LA").save(p)
        else:
            im = Image.fromarray((f8 // 64).astype(np.uint8), mode="P")
            im.putpalette([v for g in (0, 80, 160, 240) for v in (g, g, g)])
            im.save(p)
        c.add("folder", name, "good", "ingest")
    dicom(src / "good/dicom.dcm", film(seed=3).astype(np.uint16) * 16)
    c.add("folder", "good/dicom.dcm", "good", "ingest")

    def bad(name: str, data: bytes, category: str, reason: str) -> None:
        p = src / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        c.add("folder", name, category, "reject", reason)

    whole = {"png": png_bytes(f8), "tif": None, "pgm": None, "jpg": None}
    buf = io.BytesIO()
    Image.fromarray(f8).save(buf, format="PPM")
    whole["pgm"] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(f8).save(buf, format="JPEG")
    whole["jpg"] = buf.getvalue()
    buf = io.BytesIO()
    import tifffile

    tifffile.imwrite(buf, f16)
    whole["tif"] = buf.getvalue()
    dcm_bytes = dicom(src / "tmp.dcm", film(seed=4).astype(np.uint16) * 16).read_bytes()
    (src / "tmp.dcm").unlink()
    whole["dcm"] = dcm_bytes
    rng = np.random.default_rng(0)
    for ext, data in whole.items():
        bad(f"corrupt/truncated_{ext}.{ext}", data[: len(data) // 3], "corrupt", "")
        if ext != "pgm":  # raw PGM has no integrity check: random pixels are a (noise) image
            flipped = bytearray(data)
            flipped[16:] = rng.integers(0, 256, len(data) - 16, dtype=np.uint8).tobytes()
            bad(f"corrupt/garbage_{ext}.{ext}", bytes(flipped), "corrupt", "")
        bad(f"empty/zero_{ext}.{ext}", b"", "empty", "empty file")
        bad(f"text/text_as_image_{ext}.{ext}", b"patient notes: nothing to see here\n" * 20, "text_as_image", "")
    for ext, data in {"png": png_bomb(), "jpg": jpeg_bomb(), "tif": tiff_bomb(),
                      "pgm": f"P5\n{BOMB} {BOMB}\n255\n".encode() + b"\0" * 4096}.items():
        bad(f"bomb/bomb_{ext}.{ext}", data, "bomb", "exceeds the limit")
    dicom(src / "bomb/bomb_dcm.dcm", None, rows_cols=(BOMB, BOMB), extra={"PixelData": b"\0" * 4096})
    c.add("folder", "bomb/bomb_dcm.dcm", "bomb", "reject", "exceeds the limit")

    colour = np.stack([f8, f8[::-1], f8], -1)
    bad("mode/colour.png", png_bytes(colour), "odd_mode", "colour")
    im = Image.fromarray((f8 // 64).astype(np.uint8), mode="P")
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    bad("mode/colour_palette.png", buf.getvalue(), "odd_mode", "colour palette")
    buf = io.BytesIO()
    Image.fromarray(f8 > 100).save(buf, format="PNG")
    bad("mode/one_bit.png", buf.getvalue(), "odd_mode", "1-bit")
    buf = io.BytesIO()
    tifffile.imwrite(buf, f8.astype(np.float32))
    bad("mode/float.tif", buf.getvalue(), "odd_mode", "pixel type")
    buf = io.BytesIO()
    Image.fromarray(colour).convert("CMYK").save(buf, format="JPEG")
    bad("mode/cmyk.jpg", buf.getvalue(), "odd_mode", "mode CMYK")

    px = film(seed=5).astype(np.uint16) * 16
    dicom(src / "dicom/no_pixels.dcm", None)
    c.add("folder", "dicom/no_pixels.dcm", "dicom", "reject", "no pixel data")
    dicom(src / "dicom/bits32.dcm", px, bits=16, extra={"BitsStored": 32})
    c.add("folder", "dicom/bits32.dcm", "dicom", "reject", "BitsStored 32")
    dicom(src / "dicom/rgb.dcm", px, photometric="RGB")
    c.add("folder", "dicom/rgb.dcm", "dicom", "reject", "photometric")
    ids = dict(patient="MRN4471902", accession="ACC998877", name="Doe^Jane")
    dicom(src / "names/MRN4471902_L_CC.dcm", px, **ids)
    c.add("folder", "names/MRN4471902_L_CC.dcm", "identifier_in_name", "ingest")
    dicom(src / "names/ACC998877/view.dcm", px, **ids)
    c.add("folder", "names/ACC998877/view.dcm", "identifier_in_name", "ingest")
    dicom(src / "names/DOE_JANE_R.dcm", px, **ids)
    c.add("folder", "names/DOE_JANE_R.dcm", "identifier_in_name", "ingest")
    dicom(src / "names/MRN4471902_broken.dcm", None, **ids)
    c.add("folder", "names/MRN4471902_broken.dcm", "identifier_in_name", "reject", "no pixel data")

    for name, shape in {"1x1": (1, 1), "2x2": (2, 2), "1x4000": (1, 4000), "4000x1": (4000, 1)}.items():
        bad(f"junk/{name}.png", png_bytes(np.full(shape, 200, np.uint8)), "junk", "smaller than the minimum")
    bad("junk/constant.png", png_bytes(np.full((256, 160), 30000, np.uint16)), "junk", "constant image")
    return sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file())


def _synthetic(c: Corpus, src: Path) -> str:
    from mammosynth import provenance
    from mammosynth.data.schema import ImageRecord
    from mammosynth.io.images import write_image

    rec = ImageRecord(image_id="syn0", patient_id="s", laterality="R", view="CC", synthetic=True,
                      generation={"index": 0, "checkpoint_sha256": "ab" * 32, "run": "corpus"})
    marked, text = provenance.mark_image(film(256, seed=6).astype(np.uint16) * 257, rec, rec.generation)
    write_image(src / "synthetic/generated.png", marked, text=text)
    c.add("folder", "synthetic/generated.png", "synthetic", "reject", "synthetic: mammosynth")
    return "synthetic/generated.png"


def _folder(c: Corpus, outside: Path) -> None:
    src = c.root / "folder"
    src.mkdir(parents=True, exist_ok=True)
    names = _folder_images(c, src) + [_synthetic(c, src)]
    (src / "rows").mkdir()
    for i in range(6):  # files that hostile rows name (each row rejected, then its file)
        Image.fromarray(film(seed=20 + i)).save(src / f"rows/r{i}.png")
    rows = [b"file,patient_id,finding,pathology,x0,y0,x1,y1,mask"] + [n.encode() + b",,,,,,,," for n in names]
    hostile = [
        (b"rows/r0.png," + b"x" * 200_000 + b",,,,,,,", "field larger than"),
        (b"rows/r1.png,p1,mass,benign," + b"9" * 5000 + b",1,2,3,", "too long"),
        (b"rows/r2.png,p2,mass,\x00\xff\xfe,,,,,", "binary data"),
        (b"rows/r3.png,p3,mass,benign,,,,,../outside/mask.png", "outside the source"),
        (b"rows/r4.png,p4,mass,benign,,,,," + str(outside / "mask.png").encode(), "outside the source"),
        (b"rows/r5.png,p5,mass,extraterrestrial,,,,,", "unknown pathology"),
        (b"../outside/film.png,,,,,,,,", "outside the source"),
        (str(outside / "film.png").encode() + b",,,,,,,,", "outside the source"),
        (b"/etc/passwd,,,,,,,,", "outside the source"),
        (b"links/film_link.png,,,,,,,,", "outside the source"),
        (b"links/etc_link.png,,,,,,,,", "outside the source"),
    ]
    (src / "links").mkdir()
    (src / "links/film_link.png").symlink_to(outside / "film.png")
    (src / "links/etc_link.png").symlink_to("/etc/hostname")
    (src / "links/dir_link").symlink_to(outside, target_is_directory=True)  # never walked
    first = len(rows) + 1
    for k, (row, reason) in enumerate(hostile):
        rows.append(row)
        category = "traversal_symlink" if "outside" in reason else "label_row"
        c.add("folder", f"labels.csv:{first + k}", category, "reject", reason)
    for i in range(6):  # rows the csv reader could not split name no file: those files are unlabelled
        c.add("folder", f"rows/r{i}.png", "label_row", "reject", "unlabelled" if i in (0, 2) else "labels incomplete")
    (src / "labels.csv").write_bytes(b"\n".join(rows) + b"\n")


def _mias(c: Corpus) -> None:
    from mammosynth.data.adapters.mias import write_mias_like

    src = write_mias_like(c.root / "mias", n=2, size=128)
    c.add("mias", "mdb001.pgm", "good", "ingest")
    c.add("mias", "mdb002.pgm", "good", "ingest")
    rows = [("mdb" + "7" * 5000 + " G NORM", "line over"), ("mdb" + "7" * 4000 + " G NORM", "not mdbNNN"),
            ("mdb003 G CIRC B " + "9" * 4000 + " 5 5", "too long"), ("mdb004 G CIRC B 1e999 5 5", "not finite"),
            ("mdb005 \x00\x01 NORM", "binary data")]
    with open(src / "Info.txt", "a", encoding="latin-1") as f:
        for k, (row, reason) in enumerate(rows):
            f.write(row + "\n")
            c.add("mias", f"Info.txt:{3 + k}", "label_row", "reject", reason)


def _vindr(c: Corpus, outside: Path) -> None:
    src = c.root / "vindr"
    dicom(src / "images/st1/im1.dicom", film(seed=7).astype(np.uint16) * 16)
    dicom(src / "images/st2/im2.dicom", film(seed=8).astype(np.uint16) * 16)
    (outside / "evil.dicom").write_bytes((src / "images/st1/im1.dicom").read_bytes())
    hdr = "study_id,image_id,laterality,view_position,breast_density,finding_categories,xmin,ymin,xmax,ymax"
    rows = [("st1,im1,R,MLO,DENSITY B,['No Finding'],,,,", None),
            ('st2,im2,R,MLO,DENSITY B,"' + "[" * 50_000 + "]" * 50_000 + '",,,,', "finding_categories"),
            ("../../outside,evil,L,CC,DENSITY B,['No Finding'],,,,", "not a plain name"),
            ("st2,im2,R,MLO,DENSITY B,\"[__import__('os').system('touch /tmp/pwned')]\",,,,", "finding_categories")]
    (src / "finding_annotations.csv").write_text(hdr + "\n" + "\n".join(r for r, _ in rows) + "\n")
    c.add("vindr", "images/st1/im1.dicom", "good", "ingest")
    for k, (_, reason) in enumerate(rows[1:]):
        c.add("vindr", f"finding_annotations.csv:{3 + k}", "traversal_symlink" if "plain" in reason else "label_row",
              "reject", reason)


def build_corpus(root: str | Path) -> Corpus:
    """Write the corpus under ``root`` (deterministic: same files every time)."""
    c = Corpus(Path(root))
    outside = _outside(c.root)
    _folder(c, outside)
    _mias(c)
    _vindr(c, outside)
    return c


# -- running it ------------------------------------------------------------------------------

@dataclass
class CorpusRun:
    outcomes: dict[tuple[str, str], tuple[str, str]]  # (source, key) -> (ingested|rejected, reason)
    tracebacks: dict[str, str]  # source -> exception escaping ingest
    opened_outside: list[str]
    leaked: list[str]  # identifying values found in the output
    mismatches: list[str]

    def counts(self, cases: list[Case]) -> dict[str, Counter]:
        per: dict[str, Counter] = {}
        for case in cases:
            n = per.setdefault(case.category, Counter())
            n["inputs"] += 1
            got = self.outcomes.get((case.source, case.key), ("missing", ""))[0]
            n[got] += 1
            n["tracebacks"] += int(case.source in self.tracebacks)
        return per


def run_corpus(c: Corpus, out: str | Path, workers: int = 1) -> CorpusRun:
    """Ingest every source of the corpus into ``out/<source>`` and compare with the cases."""
    import json

    from mammosynth.data.ingest import IngestConfig, ingest, private_names_path
    from mammosynth.data.prepared import PreparedDataset
    from mammosynth.data.preprocess import PreprocessConfig
    from open_spy import watch_opens

    out = Path(out)
    cfg = IngestConfig(workers=workers, preprocess=PreprocessConfig(size=(64, 40), work_size=32))
    outcomes: dict[tuple[str, str], tuple[str, str]] = {}
    tracebacks: dict[str, str] = {}
    with watch_opens(c.root / "outside") as opened:
        for name, layout in c.layouts.items():
            dest = out / name
            try:
                res = ingest(c.root / name, layout, dest, cfg)
            except Exception as exc:  # noqa: BLE001 - counted, the point of the corpus
                tracebacks[name] = f"{type(exc).__name__}: {exc}"[:300]
                continue
            private = private_names_path(dest)
            names = {}
            if private.is_file():
                names = {json.loads(x)["id"]: json.loads(x)["source_file"] for x in private.read_text().splitlines()}
            for r in res.rejects:
                key = names.get(r["source_file"], r["source_file"])
                outcomes[(name, key)] = ("rejected", r["reason"])
            for rec in PreparedDataset(dest):
                outcomes[(name, rec.source_file or names.get(rec.image_id, rec.image_id))] = ("ingested", "")
    leaked = []
    shared = [p for name in c.layouts for p in sorted((out / name).rglob("*")) if p.is_file()]  # the datasets
    blob = b"\n".join(p.read_bytes() for p in shared).decode("latin-1").lower()
    for secret in SECRETS:
        if secret.lower() in blob:
            leaked.append(secret)
    mismatches = []
    for case in c.cases:
        got, reason = outcomes.get((case.source, case.key), ("missing", ""))
        want = "ingested" if case.expect == "ingest" else "rejected"
        if got != want or (case.reason and case.reason not in reason) or "unexpected error" in reason:
            mismatches.append(f"{case.source}/{case.key} [{case.category}]: expected {want} {case.reason!r}, "
                              f"got {got} {reason[:160]!r}")
    return CorpusRun(outcomes, tracebacks, list(opened), leaked, mismatches)
