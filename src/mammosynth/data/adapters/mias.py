"""mini-MIAS: ``Info.txt`` rows ``REFNUM BG CLASS [SEVERITY X Y RADIUS]`` beside ``mdbNNN.pgm``.

* X, Y: abnormality centre with the origin at the BOTTOM-left corner; the box is
  centre +- radius (converted to top-left origin with the real image height, clipped).
* Several rows per film become several findings; rows without coordinates (some
  CALC, ``*NOTE 3*``) give a finding without a box; NORM gives no finding.
* mdb(2k-1) and mdb(2k) are the two breasts of one woman (same patient id).
* Laterality is not in Info.txt: it is inferred from the image during preprocessing.
* Pixel spacing 0.2 mm (200 micron digitisation), MLO views.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Iterator

from ..schema import MIAS_DENSITY
from .base import LabelReject, LayoutError, RawFinding, SourceItem, image_files, parse_float, read_label_text, rel

NAME = "mias"
DATASET = "mini-MIAS"
KINDS = {"CIRC": "mass", "SPIC": "mass", "MISC": "mass", "CALC": "calcification",
         "ARCH": "distortion", "ASYM": "asymmetry", "NORM": None}
SEVERITY = {"B": "benign", "M": "malignant"}
SPACING_MM = (0.2, 0.2)
_REF = re.compile(r"^mdb(\d{3,6})$", re.IGNORECASE)  # bounded: a 5,000-digit number is junk


def info_file(source: Path) -> Path | None:
    for name in ("Info.txt", "info.txt", "INFO.TXT"):
        if (source / name).is_file():
            return source / name
    return None


def detect(source: Path) -> bool:
    info = info_file(source)
    if info is None:
        return False
    with open(info, "rb") as f:
        head = f.read(2048).decode("latin-1")
    return bool(re.search(r"^\s*mdb\d{3}", head, re.IGNORECASE | re.MULTILINE))


def _parse_row(tokens: list[str]) -> tuple[str, RawFinding | None]:
    """(background letter, finding or None for NORM); raises ValueError with the reason."""
    if len(tokens) < 3:
        raise ValueError(f"expected REFNUM BG CLASS ..., got {len(tokens)} field(s)")
    bg, cls = tokens[1].upper(), tokens[2].upper()
    if bg not in MIAS_DENSITY:
        raise ValueError(f"unknown background tissue code {tokens[1]!r} (expected F, G or D)")
    if cls not in KINDS:
        raise ValueError(f"unknown class code {tokens[2]!r} (expected one of {sorted(KINDS)})")
    if KINDS[cls] is None:
        if len(tokens) > 3:
            raise ValueError(f"NORM row has extra fields {tokens[3:]}")
        return bg, None
    if len(tokens) < 4:
        raise ValueError(f"{cls} row without severity (expected B or M)")
    sev = tokens[3].upper()
    if sev not in SEVERITY:
        raise ValueError(f"unknown severity code {tokens[3]!r} (expected B or M)")
    codes = {"class": cls, "severity": sev, "background": bg}
    rest = tokens[4:]
    if not rest or rest[0].startswith("*"):  # no coordinates ("*NOTE 3*")
        if rest:
            codes["note"] = " ".join(rest)
        return bg, RawFinding(kind=KINDS[cls], pathology=SEVERITY[sev], source_codes=codes)
    if len(rest) != 3:
        raise ValueError(f"expected X Y RADIUS, got {rest}")
    x = parse_float(rest[0], "X")
    y = parse_float(rest[1], "Y")
    r = parse_float(rest[2], "RADIUS")
    if r <= 0 or x < 0 or y < 0:
        raise ValueError(f"coordinates must be non-negative and radius positive, got {rest}")
    codes.update(x=x, y=y, radius=r)
    return bg, RawFinding(kind=KINDS[cls], pathology=SEVERITY[sev], box=(x - r, y - r, x + r, y + r),
                          box_origin="bottom", source_codes=codes)


def scan(source: Path) -> Iterator[SourceItem | LabelReject]:
    info = info_file(source)
    if info is None:
        raise LayoutError(f"{source}: no Info.txt; not a mini-MIAS folder")
    films: dict[str, dict] = {}
    bad: dict[str, str] = {}
    with io.StringIO(read_label_text(info)) as f:  # UTF-8 (BOM or not), else Latin-1
        for n, line in enumerate(f, 1):
            tokens = line.split()
            if not tokens or tokens[0].startswith("#") or (n == 1 and tokens[0].upper() == "REFNUM"):
                continue
            where = f"{info.name}:{n}"
            m = _REF.match(tokens[0])
            if "\0" in line or len(line) > 4096:
                yield LabelReject(where, "bad label row: binary data or a line over 4,096 characters")
                continue
            if not m:
                yield LabelReject(where, f"bad label row: reference {tokens[0][:40]!r} is not mdbNNN")
                continue
            ref = tokens[0].lower()
            try:
                bg, finding = _parse_row(tokens)
            except ValueError as exc:
                yield LabelReject(where, f"bad label row for {ref}: {exc}")
                bad[ref] = where
                continue
            film = films.setdefault(ref, {"bg": bg, "findings": [], "line": where, "num": int(m.group(1))})
            if film["bg"] != bg:
                yield LabelReject(where, f"bad label row for {ref}: background {bg} differs from earlier row {film['bg']}")
                bad[ref] = where
                continue
            if finding is not None:
                film["findings"].append(finding)
    on_disk = {p.stem.lower(): p for p in image_files(source) if _REF.match(p.stem)}
    for ref in sorted(set(films) | set(bad)):
        path = on_disk.get(ref)
        if path is None:
            where = films[ref]["line"] if ref in films else bad[ref]
            yield LabelReject(f"{ref}.pgm", f"missing file: named by label row {where}")
            continue
        if ref in bad:
            yield LabelReject(rel(source, path), f"labels incomplete: row {bad[ref]} was rejected")
            continue
        film = films[ref]
        woman = (film["num"] + 1) // 2  # mdb(2k-1) and mdb(2k): one woman
        yield SourceItem(
            image_id=ref, path=path, source_file=rel(source, path), patient_raw=f"mias-{woman:04d}",
            laterality=None, view="MLO", density=MIAS_DENSITY[film["bg"]], density_source=film["bg"],
            findings=film["findings"], pixel_spacing_mm=SPACING_MM,
        )
    for ref, path in sorted(on_disk.items()):
        if ref not in films and ref not in bad:
            yield LabelReject(rel(source, path), f"unlabelled: no row in {info.name}")


# -- a MIAS-style stand-in (tests, benchmarks without the real films) ---------------------

def synthetic_film(size: int = 1024, chest_wall: str = "left", lesion: tuple[float, float, float] | None = None,
                   seed: int = 0, label: bool = True):
    """A uint8 MLO-like film: breast strip with its chest wall on one side, a bright film
    label in a corner, optional round lesion ``(x, y_from_top, radius)``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    s = size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    strip0, strip1 = int(0.25 * s), int(0.75 * s)
    depth = 0.38 * s
    cx = strip0 if chest_wall == "left" else strip1
    d = np.abs(xx - cx) / depth
    breast = (d ** 2 + ((yy - 0.45 * s) / (0.52 * s)) ** 2 < 1) & (xx >= strip0) & (xx < strip1)
    img = np.where(breast, 150 - 60 * d + rng.normal(0, 6, (s, s)), rng.normal(8, 3, (s, s)))
    img[:, :strip0] = 0
    img[:, strip1:] = 0
    if lesion is not None:
        lx, ly, lr = lesion
        img[(xx - lx) ** 2 + (yy - ly) ** 2 < lr ** 2] += 60
    if label:  # film label in the far corner, away from the breast
        lx0 = strip1 - int(0.08 * s) if chest_wall == "left" else strip0 + int(0.02 * s)
        img[int(0.03 * s):int(0.09 * s), lx0:lx0 + int(0.05 * s)] = 240
    return np.clip(img, 0, 255).astype(np.uint8)


def write_mias_like(root, n: int = 8, size: int = 1024, seed: int = 0):
    """Write ``n`` synthetic films ``mdb001.pgm``.. and an ``Info.txt`` in MIAS conventions
    (odd numbers: chest wall on the right, like the real films). Returns the folder."""
    from PIL import Image

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(1, n + 1):
        side = "right" if i % 2 else "left"
        lesion = None
        if i % 3 == 1:
            lx = 0.6 * size if side == "right" else 0.4 * size
            lesion = (lx, 0.45 * size, 0.03 * size)
        Image.fromarray(synthetic_film(size, side, lesion, seed=seed + i)).save(root / f"mdb{i:03d}.pgm")
        bg = "FGD"[i % 3]
        if lesion is None:
            rows.append(f"mdb{i:03d} {bg} NORM ")
        else:
            x, y, r = lesion
            rows.append(f"mdb{i:03d} {bg} CIRC B {x:.0f} {size - y:.0f} {r:.0f}")
    (root / "Info.txt").write_text("\n".join(rows) + "\n")
    return root
