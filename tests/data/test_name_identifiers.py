"""Identifiers never travel through file names (issue 20 section 4): a file or folder name
holding an identifying value of its DICOM (PatientID, AccessionNumber, PatientName), or any
name with ``--hash-names``, becomes a salted hash in image ids, stored files, manifest,
rejects and dataset.json; the source path goes only to ``OUT.PRIVATE-names.jsonl``."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from mammosynth.cli import main
from mammosynth.data.adapters.mias import synthetic_film
from mammosynth.data.ingest import IngestConfig, ingest, private_names_path
from mammosynth.data.prepared import PreparedDataset
from mammosynth.data.preprocess import PreprocessConfig

FAST = IngestConfig(workers=1, preprocess=PreprocessConfig(size=(64, 40), work_size=32))
SECRETS = ("MRN4471902", "ACC998877", "Doe", "Jane", "SMITH")


def write_dicom(path, pixels, patient="MRN4471902", accession="ACC998877", name="Doe^Jane", pixel_data=True):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.AccessionNumber = name, patient, accession
    ds.ImageLaterality, ds.ViewPosition = "L", "CC"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if pixel_data:
        ds.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def all_output_text(out):
    return b"\n".join(p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()).decode("latin-1")


def test_identifier_in_dicom_name_is_hashed(tmp_path):
    src = tmp_path / "src"
    film = synthetic_film(128, "left").astype(np.uint16) * 16
    write_dicom(src / "MRN4471902_L_CC.dcm", film)
    write_dicom(src / "ACC998877" / "view1.dcm", film)  # accession number in the folder name
    write_dicom(src / "DOE_JANE_R_MLO.dcm", film)  # the patient's name in the file name
    write_dicom(src / "plain" / "scan01.dcm", film, patient="OTHER-7", accession="X1", name="Roe^Rick")
    write_dicom(src / "MRN4471902_broken.dcm", film, pixel_data=False)  # rejected: no pixels
    res = ingest(src, "folder", tmp_path / "out", FAST)
    assert res.added == 4 and res.rejected == 1
    text = all_output_text(tmp_path / "out")
    for secret in SECRETS:
        assert secret.lower() not in text.lower(), secret
    ids = sorted(r.image_id for r in PreparedDataset(tmp_path / "out"))
    assert "plain__scan01" in ids and sum(i.startswith("img-") for i in ids) == 3
    private = private_names_path(tmp_path / "out")
    assert private.parent == tmp_path and not str(private).startswith(str(tmp_path / "out") + "/")
    rows = [json.loads(x) for x in private.read_text().splitlines()]
    assert {r["source_file"] for r in rows} == {"MRN4471902_L_CC.dcm", "ACC998877/view1.dcm",
                                                "DOE_JANE_R_MLO.dcm", "MRN4471902_broken.dcm"}
    assert all(r["id"].startswith("img-") for r in rows)
    # a rerun finds the hashed images done
    again = ingest(src, "folder", tmp_path / "out", FAST)
    assert again.added == 0 and len(PreparedDataset(tmp_path / "out")) == 4


def test_hash_names_hashes_every_name(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(synthetic_film(128, "left")).save(src / "SMITH_left.png")
    (src / "SMITH_bad.png").write_text("not an image")
    rc = main(["ingest", str(src), "--layout", "folder", "--out", str(tmp_path / "out"), "--size", "64", "40",
               "--workers", "1", "--hash-names"])
    assert rc == 3
    assert "smith" not in all_output_text(tmp_path / "out").lower()
    private = private_names_path(tmp_path / "out").read_text()
    assert "SMITH_left.png" in private and "SMITH_bad.png" in private


def test_identifier_in_source_folder_name_withheld(tmp_path):
    src = tmp_path / "MRN4471902"
    write_dicom(src / "scan01.dcm", synthetic_film(128, "left").astype(np.uint16) * 16)
    res = ingest(src, "folder", tmp_path / "out", FAST)
    assert res.added == 1
    text = all_output_text(tmp_path / "out")
    assert "mrn4471902" not in text.lower()
    assert PreparedDataset(tmp_path / "out")[0].image_id.startswith("img-")
