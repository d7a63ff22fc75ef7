"""Synthetic images as DICOM Digital Mammography X-Ray Image - For Presentation objects.

:func:`write_synthetic_dicom` fills the modules of the MG IOD (PS3.3 A.26.1): Patient,
General Study, General Series, DX Series, General
Equipment, General Image, Image Pixel, DX Anatomy Imaged, DX Image, DX Detector,
Mammography Image, VOI LUT, Acquisition Context, SOP Common; and marks the object as
synthetic: ImageType ``DERIVED\\SECONDARY``, ConversionType ``SYN``, DerivationDescription
naming model and seed, PatientName ``SYNTHETIC^<id>``, Manufacturer ``mammosynth``,
ImageComments / SeriesDescription warning that it is not for clinical use.

Conventions: pixels are 16-bit MONOCHROME2 (brighter = more attenuating), stored as given
(the watermark is in them); the window is the identity (centre 32768, width 65536), so
:func:`mammosynth.io.dicom.read_dicom` returns the stored values unchanged. Images follow
the prepared orientation (chest wall at the left edge), hence PatientOrientation
``A\\<laterality>`` for CC and ``A\\F<laterality>`` for MLO. A record whose view is
``other`` has no code in CID 4014, so its object is written without ViewCodeSequence (a
warning says it is not fully conformant). ImagerPixelSpacing is nominal: the record's,
else 200 mm over the image height. Study/Series UIDs derive from the run and the synthetic patient (images
of one set group into studies); the SOP Instance UID is fresh per file.

:func:`check_mg_dicom` checks the required (type 1 and 2) attributes of those modules: no
DICOM validator with offline standard data is available here (``dicom-validator`` downloads
the standard's DocBook XML on first use).
"""
from __future__ import annotations

import datetime as _dt
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..data.schema import ImageRecord

MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
#: view -> (SNOMED CT code, meaning, ViewPosition)
VIEW_CODES = {"CC": ("399162004", "cranio-caudal", "CC"), "MLO": ("399368009", "medio-lateral oblique", "MLO")}
BREAST_CODE = ("76752008", "SCT", "Breast")

#: (keyword, type) per module, checked by :func:`check_mg_dicom`. Type "1": present and
#: non-empty; "2": present (may be empty).
REQUIRED: dict[str, list[tuple[str, str]]] = {
    "SOP Common": [("SOPClassUID", "1"), ("SOPInstanceUID", "1")],
    "Patient": [("PatientName", "2"), ("PatientID", "2"), ("PatientBirthDate", "2"), ("PatientSex", "2")],
    "General Study": [("StudyInstanceUID", "1"), ("StudyDate", "2"), ("StudyTime", "2"),
                      ("ReferringPhysicianName", "2"), ("StudyID", "2"), ("AccessionNumber", "2")],
    "General Series": [("Modality", "1"), ("SeriesInstanceUID", "1"), ("SeriesNumber", "2")],
    "DX Series": [("PresentationIntentType", "1")],
    "General Equipment": [("Manufacturer", "2")],
    "General Image": [("InstanceNumber", "2"), ("PatientOrientation", "1")],
    "Image Pixel": [("SamplesPerPixel", "1"), ("PhotometricInterpretation", "1"), ("Rows", "1"),
                    ("Columns", "1"), ("BitsAllocated", "1"), ("BitsStored", "1"), ("HighBit", "1"),
                    ("PixelRepresentation", "1"), ("PixelData", "1")],
    "DX Anatomy Imaged": [("ImageLaterality", "1"), ("AnatomicRegionSequence", "1")],
    "DX Image": [("ImageType", "1"), ("PixelIntensityRelationship", "1"), ("PixelIntensityRelationshipSign", "1"),
                 ("RescaleIntercept", "1"), ("RescaleSlope", "1"), ("RescaleType", "1"),
                 ("PresentationLUTShape", "1"), ("LossyImageCompression", "1"), ("BurnedInAnnotation", "1"),
                 ("ContentDate", "1"), ("ContentTime", "1")],
    "DX Detector": [("DetectorType", "2"), ("ImagerPixelSpacing", "1")],
    "Mammography Image": [("PositionerType", "1"), ("OrganExposed", "1"), ("ViewCodeSequence", "1")],
    "VOI LUT": [("WindowCenter", "1"), ("WindowWidth", "1")],
    "Acquisition Context": [("AcquisitionContextSequence", "2")],
}


def _code(value: str, scheme: str, meaning: str) -> Any:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _uid(*parts: Any) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["mammosynth"] + [str(p) for p in parts])


def build_dataset(image: np.ndarray, record: ImageRecord, now: _dt.datetime | None = None) -> Any:
    """The pydicom FileDataset (with file meta) of one synthetic image."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"{record.image_id}: expected a 2-D image, got shape {image.shape}")
    if image.dtype == np.uint8:
        image = image.astype(np.uint16) * 257
    elif image.dtype != np.uint16:
        raise ValueError(f"{record.image_id}: expected uint8 or uint16 pixels, got {image.dtype}")
    gen = record.generation or {}
    now = now or _dt.datetime.now(_dt.timezone.utc)
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    run = gen.get("run") or "unknown-run"
    ckpt = gen.get("checkpoint_sha256") or "unknown"

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MG_FOR_PRESENTATION
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"MAMMOSYNTH_{__version__}"[:16]

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    # SOP common
    ds.SOPClassUID = MG_FOR_PRESENTATION
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    # patient (synthetic)
    ds.PatientName = f"SYNTHETIC^{record.patient_id}"
    ds.PatientID = f"SYN-{record.patient_id}"
    ds.IssuerOfPatientID = "mammosynth (synthetic, no real patient)"
    ds.PatientBirthDate = ""
    ds.PatientSex = "F"
    if record.age is not None:
        ds.PatientAge = f"{int(record.age):03d}Y"
    # study / series
    ds.StudyInstanceUID = _uid("study", ckpt, run, record.patient_id)
    ds.StudyDate, ds.StudyTime = date, time
    ds.ReferringPhysicianName = ""
    ds.StudyID = "SYNTHETIC"
    ds.AccessionNumber = ""
    ds.StudyDescription = "SYNTHETIC mammography (mammosynth)"
    ds.Modality = "MG"
    ds.SeriesInstanceUID = _uid("series", ckpt, run, record.patient_id, gen.get("seed"))
    ds.SeriesNumber = 1
    ds.SeriesDescription = "SYNTHETIC - NOT FOR CLINICAL USE"
    ds.PresentationIntentType = "FOR PRESENTATION"
    # equipment
    ds.Manufacturer = "mammosynth"
    ds.ManufacturerModelName = "mammosynth generative model"
    ds.SoftwareVersions = [f"mammosynth {__version__}", f"model sha256 {ckpt[:16]}"]
    ds.ConversionType = "SYN"
    # general image
    index = gen.get("index")
    ds.InstanceNumber = int(index) + 1 if isinstance(index, int) else 1
    col_dir = ("F" if record.view == "MLO" else "") + record.laterality
    ds.PatientOrientation = ["A", col_dir]
    ds.ContentDate, ds.ContentTime = date, time
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = (f"Synthetic image generated by mammosynth {__version__}: model checkpoint sha256 "
                                f"{ckpt}, run {run}, seed {gen.get('seed')}, index {index}")[:1024]
    ds.BurnedInAnnotation = "NO"
    ds.RecognizableVisualFeatures = "NO"
    ds.LossyImageCompression = "00"
    ds.ImageComments = "SYNTHETIC IMAGE generated by a generative model; not a real patient. NOT FOR CLINICAL USE."
    if gen.get("edited"):
        _mark_edited(ds, record, gen)
    ds.QualityControlImage = "NO"
    # anatomy / mammography image
    ds.ImageLaterality = record.laterality
    ds.AnatomicRegionSequence = Sequence([_code(*BREAST_CODE)])
    ds.PositionerType = "MAMMOGRAPHIC"
    ds.OrganExposed = "BREAST"
    if record.view in VIEW_CODES:
        value, meaning, position = VIEW_CODES[record.view]
        view = _code(value, "SCT", meaning)
        view.ViewModifierCodeSequence = Sequence([])
        ds.ViewCodeSequence = Sequence([view])
        ds.ViewPosition = position
    else:
        ds.ViewPosition = ""
    ds.BreastImplantPresent = "NO"
    # DX image / detector
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = -1  # higher values = less X-ray intensity (denser)
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.PresentationLUTShape = "IDENTITY"
    ds.WindowCenter, ds.WindowWidth = 32768, 65536
    ds.VOILUTFunction = "LINEAR"
    ds.WindowCenterWidthExplanation = "FULL RANGE"
    ds.DetectorType = ""
    h, w = image.shape
    spacing = record.pixel_spacing_mm or (200.0 / h, 200.0 / h)
    ds.ImagerPixelSpacing = [f"{spacing[0]:.6g}", f"{spacing[1]:.6g}"]
    ds.AcquisitionContextSequence = Sequence([])
    # image pixel
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(h), int(w)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(image, dtype="<u2").tobytes()
    return ds


def _mark_edited(ds: Any, record: ImageRecord, gen: dict[str, Any]) -> None:
    """An edited real film (:mod:`mammosynth.edit`): still DERIVED/SECONDARY and ConversionType
    SYN, with what was changed in DerivationDescription and the source film referenced in
    SourceImageSequence (its SOP Instance UID derived from the source set's content hash and
    image id: prepared sets keep no DICOM UIDs)."""
    from pydicom.sequence import Sequence
    from pydicom.dataset import Dataset

    src, op = gen.get("source_image_id"), gen.get("operation")
    ds.DerivationDescription = (f"Real film EDITED by mammosynth {__version__}: {op} ({gen.get('route')} route), "
                                f"seed {gen.get('seed')}; source image {src} (sha256 {gen.get('source_sha256')}) "
                                f"of dataset {gen.get('source_content_hash')}")[:1024]
    item = Dataset()
    item.ReferencedSOPClassUID = MG_FOR_PRESENTATION
    item.ReferencedSOPInstanceUID = _uid("source", gen.get("source_content_hash"), src)
    ds.SourceImageSequence = Sequence([item])
    ds.StudyInstanceUID = _uid("edited-study", gen.get("source_content_hash"), record.patient_id)
    ds.SeriesInstanceUID = _uid("edited-series", gen.get("source_content_hash"), record.patient_id, op, gen.get("seed"))
    ds.ImageComments = (f"EDITED IMAGE: a real film with a {op} edit made by mammosynth; partly synthetic. "
                        "NOT FOR CLINICAL USE.")


def write_synthetic_dicom(path: str | os.PathLike, image: np.ndarray, record: ImageRecord) -> None:
    """Write one (already watermarked) synthetic image as an MG For Presentation DICOM file."""
    from pydicom.dataset import FileDataset

    path = Path(path)
    ds = build_dataset(image, record)
    problems = check_mg_dicom(ds)
    if record.view not in VIEW_CODES:  # no CID 4014 code for an unknown view: written without one
        problems = [p for p in problems if "ViewCodeSequence" not in p]
        warnings.warn(f"view {record.view!r} has no DICOM view code; ViewCodeSequence (type 1) "
                      "is omitted, so the object is not fully MG-conformant", stacklevel=2)
    if problems:
        raise ValueError(f"{path}: DICOM object incomplete: {'; '.join(problems)}")
    fds = FileDataset(str(path), ds, file_meta=ds.file_meta, preamble=b"\0" * 128)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fds.save_as(tmp, enforce_file_format=True)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_mg_dicom(ds_or_path: Any) -> list[str]:
    """Problems with an MG For Presentation object (empty list when the checks pass)."""
    import pydicom

    ds = pydicom.dcmread(ds_or_path) if isinstance(ds_or_path, (str, os.PathLike)) else ds_or_path
    problems = []
    for module, attrs in REQUIRED.items():
        for kw, typ in attrs:
            if kw not in ds:
                problems.append(f"{module}: {kw} (type {typ}) missing")
            elif typ == "1" and (ds[kw].value is None or ds[kw].value == "" or
                                 (hasattr(ds[kw].value, "__len__") and len(ds[kw].value) == 0)):
                problems.append(f"{module}: {kw} (type 1) empty")
    if ds.get("SOPClassUID") != MG_FOR_PRESENTATION:
        problems.append(f"SOPClassUID {ds.get('SOPClassUID')} is not MG For Presentation")
    if ds.get("Modality") != "MG":
        problems.append(f"Modality {ds.get('Modality')!r}, expected 'MG'")
    if ds.get("PresentationIntentType") != "FOR PRESENTATION":
        problems.append("PresentationIntentType is not FOR PRESENTATION")
    if ds.get("ImageLaterality") not in ("L", "R", "U", "B"):
        problems.append(f"ImageLaterality {ds.get('ImageLaterality')!r} invalid")
    if ds.get("PhotometricInterpretation") not in ("MONOCHROME1", "MONOCHROME2"):
        problems.append("PhotometricInterpretation must be MONOCHROME1/2")
    if "PixelData" in ds and "Rows" in ds and "Columns" in ds and "BitsAllocated" in ds:
        want = int(ds.Rows) * int(ds.Columns) * int(ds.BitsAllocated) // 8
        if len(ds.PixelData) != want + (want % 2):
            problems.append(f"PixelData has {len(ds.PixelData)} bytes, expected {want}")
    return problems


def is_synthetic_dicom(ds: Any) -> tuple[bool, list[str]]:
    """Whether a DICOM dataset is marked synthetic; the reasons found."""
    from ..io.dicom import synthetic_markers

    reasons = synthetic_markers(ds)  # one definition, shared with the ingest check
    return bool(reasons), reasons
