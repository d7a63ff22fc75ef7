"""The TCIA download tool's (NBIA Data Retriever) ``metadata.csv``, shared by the
CBIS-DDSM and CMMD layouts.

A download is ``<manifest>/metadata.csv`` beside ``<manifest>/<Collection>/<Subject>/
<date>-<study>-<5 digits>/<n>.000000-<description>-<5 digits>/1-N.dcm``. One row per
series: ``Series UID``, ``Collection``, ``Subject ID``, ``Study UID``, ``Series
Description`` ("full mammogram images", "cropped images", "ROI mask images"...),
``Number of Images`` and ``File Location`` (``.\\CBIS-DDSM\\<Subject>\\...``, Windows
separators, relative to the folder of ``metadata.csv``). The folder names are made up
by the tool, so this file is the only map from UIDs to folders.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...io.paths import is_inside
from .base import LabelReject, csv_columns, label_files, read_csv

NAME = "metadata.csv"
COLUMNS = {"Series UID", "Subject ID", "File Location"}


@dataclass(frozen=True)
class Series:
    uid: str
    subject: str
    description: str
    folder: Path  # None-safe: may not exist (a partial download)
    collection: str = ""
    study_uid: str = ""

    def dicoms(self) -> list[Path]:
        """The series' DICOM files (``1-1.dcm``, ``1-2.dcm``...), sorted."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.suffix.lower() in (".dcm", ".dicom") and p.is_file())


def find_metadata(source: Path) -> Path | None:
    """``metadata.csv`` with the NBIA columns in SOURCE or one folder below it."""
    for p in label_files(source, NAME) + label_files(source, f"*/{NAME}"):
        if p.is_file() and COLUMNS <= set(csv_columns(p)):
            return p
    return None


def collection(path: Path) -> str:
    """The collection named in the first row of a ``metadata.csv`` ('' when absent)."""
    for _, row in read_csv(path):
        return "" if isinstance(row, LabelReject) else row.get("Collection", "")
    return ""


def location(csv_path: Path, text: str) -> Path:
    """``File Location`` (``.\\CBIS-DDSM\\Subject\\...``) as a path under the CSV's folder."""
    parts = [p for p in text.replace("\\", "/").split("/") if p not in ("", ".")]
    return csv_path.parent.joinpath(*parts)


def read_series(csv_path: Path) -> dict[str, Series]:
    """Series UID -> :class:`Series` for every row of ``metadata.csv``."""
    out: dict[str, Series] = {}
    for _, row in read_csv(csv_path):
        if isinstance(row, LabelReject):  # an unusable row: its series is simply unknown
            continue
        uid = row.get("Series UID", "")
        if not uid:
            continue
        folder = location(csv_path, row.get("File Location", ""))
        if not is_inside(csv_path.parent, folder):
            continue  # a File Location walking out of the download is never listed
        out[uid] = Series(uid=uid, subject=row.get("Subject ID", ""), description=row.get("Series Description", ""),
                          folder=folder,
                          collection=row.get("Collection", ""), study_uid=row.get("Study UID", ""))
    return out
