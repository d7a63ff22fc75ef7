"""Synthetic DICOM: a valid MG For Presentation object marked synthetic, pixels intact."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest

from mammosynth.io.dicom import read_dicom
from mammosynth.provenance import mark_image, write_synthetic_dicom
from mammosynth.provenance.dicom import MG_FOR_PRESENTATION, check_mg_dicom, is_synthetic_dicom
from mammosynth.provenance.watermark import detect_watermark

from prov_helpers import CKPT, breast_image, synthetic_record


@pytest.mark.parametrize("view, code, lat, orient", [("CC", "399162004", "R", ["A", "R"]),
                                                     ("MLO", "399368009", "L", ["A", "FL"])])
def test_dicom_round_trip(tmp_path, view, code, lat, orient):
    rec = synthetic_record(4, view=view, laterality=lat)
    marked, _ = mark_image(breast_image(seed=2), rec, rec.generation)
    path = tmp_path / "x.dcm"
    write_synthetic_dicom(path, marked, rec)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.MediaStorageSOPClassUID == MG_FOR_PRESENTATION == ds.SOPClassUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.Modality == "MG" and ds.PresentationIntentType == "FOR PRESENTATION"
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY"] and ds.ConversionType == "SYN"
    assert ds.ImageLaterality == lat and ds.ViewPosition == view
    assert ds.ViewCodeSequence[0].CodeValue == code and ds.ViewCodeSequence[0].CodingSchemeDesignator == "SCT"
    assert list(ds.PatientOrientation) == orient
    assert str(ds.PatientName) == "SYNTHETIC^synp0004" and ds.PatientID.startswith("SYN-")
    assert ds.BurnedInAnnotation == "NO" and ds.Manufacturer == "mammosynth"
    assert "seed 7" in ds.DerivationDescription and CKPT in ds.DerivationDescription
    assert any("mammosynth" in v for v in ds.SoftwareVersions)
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.BitsStored == 16 and ds.PixelRepresentation == 0
    assert check_mg_dicom(path) == []
    assert is_synthetic_dicom(ds)[0]
    assert np.array_equal(ds.pixel_array, marked)
    back, meta = read_dicom(path)  # the project's reader applies the (identity) window
    assert np.array_equal(back, marked) and meta["view"] == view and meta["laterality"] == lat
    det = detect_watermark(ds.pixel_array, crops=False)
    assert det.found and det.payload & 0xFFFFFFFF == 4


def test_uids_fresh_per_file_and_grouped_per_patient(tmp_path):
    rec = synthetic_record(1)
    img = breast_image(seed=1)
    write_synthetic_dicom(tmp_path / "a.dcm", img, rec)
    write_synthetic_dicom(tmp_path / "b.dcm", img, rec)
    a, b = pydicom.dcmread(tmp_path / "a.dcm"), pydicom.dcmread(tmp_path / "b.dcm")
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert a.StudyInstanceUID == b.StudyInstanceUID
    c = synthetic_record(2)
    write_synthetic_dicom(tmp_path / "c.dcm", img, c)
    assert pydicom.dcmread(tmp_path / "c.dcm").StudyInstanceUID != a.StudyInstanceUID


def test_check_names_missing_attributes(tmp_path):
    rec = synthetic_record(0)
    write_synthetic_dicom(tmp_path / "a.dcm", breast_image(), rec)
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    del ds.ImageLaterality
    ds.Modality = "CR"
    problems = check_mg_dicom(ds)
    assert any("ImageLaterality" in p for p in problems) and any("Modality" in p for p in problems)


def test_eight_bit_input_and_bad_input(tmp_path):
    rec = synthetic_record(0)
    img8 = breast_image(dtype=np.uint8)
    write_synthetic_dicom(tmp_path / "a.dcm", img8, rec)
    assert np.array_equal(pydicom.dcmread(tmp_path / "a.dcm").pixel_array, img8.astype(np.uint16) * 257)
    with pytest.raises(ValueError, match="2-D"):
        write_synthetic_dicom(tmp_path / "b.dcm", np.zeros((4, 4, 3), np.uint16), rec)
    assert not (tmp_path / "b.dcm").exists()


def test_dicom_set_is_signed_and_verifies(tmp_path, keydir):
    from mammosynth.provenance import verify_set
    from prov_helpers import write_set

    root = write_set(tmp_path / "dset", n=2, key=keydir, fmt="dicom")
    assert sorted(p.name for p in (root / "images").iterdir()) == ["syn_0000.dcm", "syn_0001.dcm"]
    assert verify_set(root, keydir).ok


def test_unknown_view_is_written_with_a_warning(tmp_path):
    rec = synthetic_record(0, view="other")
    with pytest.warns(UserWarning, match="no DICOM view code"):
        write_synthetic_dicom(tmp_path / "o.dcm", breast_image(), rec)
    problems = check_mg_dicom(tmp_path / "o.dcm")
    assert problems == ["Mammography Image: ViewCodeSequence (type 1) missing"]
