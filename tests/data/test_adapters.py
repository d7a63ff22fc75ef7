"""Layout adapters: MIAS, CBIS-DDSM, VinDr, INbreast, RSNA, folder; auto detection; end to end."""
from __future__ import annotations

import plistlib

import numpy as np
import pytest
from PIL import Image

from mammosynth.data.adapters import LabelReject, SourceItem, detect_layout, get_adapter
from mammosynth.data.adapters.mias import synthetic_film
from mammosynth.data.ingest import IngestConfig, ingest
from mammosynth.data.prepared import PreparedDataset
from mammosynth.data.preprocess import PreprocessConfig
from mammosynth.data.schema import condition_value

FAST = IngestConfig(workers=1, preprocess=PreprocessConfig(size=(64, 40), work_size=32))


def scan(source, layout):
    out = list(get_adapter(layout).scan(source))
    return [x for x in out if isinstance(x, SourceItem)], [x for x in out if isinstance(x, LabelReject)]


def write_dicom(path, pixels, photometric="MONOCHROME2", laterality="L", view="MLO", patient="PAT-SECRET-1"):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^Jane", patient, "19600101"
    ds.InstitutionName = "General Hospital"
    ds.PatientAge = "061Y"
    ds.ImageLaterality, ds.ViewPosition = laterality, view
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def film12(side="left", lesion=None, seed=0, mono1=False):
    f = synthetic_film(96, side, lesion, seed=seed).astype(np.uint16) * 16
    return (4095 - f) if mono1 else f


# -- MIAS -------------------------------------------------------------------------------

def test_mias_rows(tmp_path):
    for n in (1, 2, 3, 5):
        Image.fromarray(np.zeros((100, 100), np.uint8)).save(tmp_path / f"mdb{n:03d}.pgm")
    (tmp_path / "Info.txt").write_text(
        "mdb001 G CIRC B 50 30 10\n"
        "mdb001 G SPIC M 20 90 15\n"
        "mdb002 F NORM \n"
        "mdb003 D CALC M *NOTE 3*\n"
        "mdb004 F ARCH B 10 10 5\n"
        "mdb005 F XXXX B 1 2 3\n"
        "mdb006 F ASYM M 1 two 3\n")
    items, rejects = scan(tmp_path, "mias")
    by = {i.image_id: i for i in items}
    assert set(by) == {"mdb001", "mdb002", "mdb003"}
    f1 = by["mdb001"].findings
    assert [f.kind for f in f1] == ["mass", "mass"] and [f.pathology for f in f1] == ["benign", "malignant"]
    assert f1[0].box == (40, 20, 60, 40) and f1[0].box_origin == "bottom"
    assert f1[0].source_codes["class"] == "CIRC"
    assert by["mdb002"].findings == [] and by["mdb002"].density == "A" and by["mdb002"].density_source == "F"
    assert by["mdb003"].findings[0].box is None and by["mdb003"].findings[0].kind == "calcification"
    assert by["mdb001"].patient_raw == by["mdb002"].patient_raw != by["mdb003"].patient_raw
    reasons = {r.source_file: r.reason for r in rejects}
    assert "missing file" in reasons["mdb004.pgm"]
    assert "unknown class code 'XXXX'" in reasons["Info.txt:6"]
    assert "not a number" in reasons["Info.txt:7"]
    assert "labels incomplete" in reasons["mdb005.pgm"]


def test_mias_box_converted_from_bottom_origin(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    img = synthetic_film(128, "left", (48, 70, 6), seed=3)  # lesion centre y=70 from the top
    Image.fromarray(img).save(src / "mdb002.pgm")
    (src / "Info.txt").write_text(f"mdb002 G CIRC B 48 {128 - 70} 6\n")
    res = ingest(src, "mias", tmp_path / "out", FAST)
    rec = PreparedDataset(tmp_path / "out")[0]
    x0, y0, x1, y1 = (int(round(v)) for v in rec.findings[0].box)
    im = PreparedDataset(tmp_path / "out").image(0).astype(float)
    assert res.exit_code == 0 and im[y0:y1, x0:x1].mean() > im[im > 0].mean()
    assert rec.pixel_spacing_mm[0] > 0.2  # spacing recorded after the resize


# -- CBIS-DDSM --------------------------------------------------------------------------

CBIS_MASS = ("patient_id,breast_density,left or right breast,image view,abnormality id,abnormality type,"
             "mass shape,mass margins,assessment,pathology,subtlety,image file path,cropped image file path,"
             "ROI mask file path\n")


def test_cbis_ddsm_end_to_end(tmp_path):
    src = tmp_path / "cbis"
    write_dicom(src / "Mass-Training_P_00001_LEFT_CC/1/000000.dcm", film12("right", (60, 40, 5)), laterality="L")
    mask = np.zeros((96, 96), np.uint16)
    mask[35:46, 55:66] = 4095
    write_dicom(src / "Mass-Training_P_00001_LEFT_CC_1/1/000001.dcm", mask)
    write_dicom(src / "Mass-Training_P_00001_LEFT_CC_1/1/000000.dcm", film12("right", seed=5))  # "cropped"
    (src / "mass_case_description_train_set.csv").write_text(
        CBIS_MASS
        + "P_00001,3,LEFT,CC,1,mass,OVAL,CIRCUMSCRIBED,4,MALIGNANT,4,Mass-Training_P_00001_LEFT_CC/1/000000.dcm,"
          "Mass-Training_P_00001_LEFT_CC_1/1/000001.dcm,Mass-Training_P_00001_LEFT_CC_1/1/000000.dcm\n"
        + "P_00002,2,RIGHT,MLO,1,mass,OVAL,CIRCUMSCRIBED,4,BENIGN,4,missing/000000.dcm,,\n"
        + "P_00003,2,RIGHT,MLO,1,lump,OVAL,CIRCUMSCRIBED,4,BENIGN,4,x/000000.dcm,,\n")
    assert detect_layout(src) == "cbis-ddsm"
    res = ingest(src, "auto", tmp_path / "out", FAST)
    assert res.added == 1 and res.exit_code == 3
    reasons = " | ".join(r["reason"] for r in res.rejects)
    assert "missing file" in reasons and "unknown abnormality type 'lump'" in reasons
    ds = PreparedDataset(tmp_path / "out")
    r = ds[0]
    assert (r.laterality, r.view, r.density, r.findings[0].pathology) == ("L", "CC", "C", "malignant")
    m = ds.mask(0, 0)
    assert m is not None and m.shape == (64, 40) and m.any()
    ys, xs = np.nonzero(m)
    x0, y0, x1, y1 = r.findings[0].box
    assert x0 - 1 <= xs.min() and xs.max() < x1 + 1 and y0 - 1 <= ys.min() and ys.max() < y1 + 1
    assert r.preprocessing["flipped"] is True  # L breast, chest wall on the right in the source


# -- VinDr ------------------------------------------------------------------------------

def test_vindr_end_to_end_no_phi(tmp_path):
    src = tmp_path / "vindr"
    write_dicom(src / "images/st1/im1.dicom", film12("left", (40, 50, 5)), laterality="R")
    write_dicom(src / "images/st1/im2.dicom", film12("left", seed=2, mono1=True), photometric="MONOCHROME1",
                laterality="R", view="CC")
    write_dicom(src / "images/st9/stray.dicom", film12("left", seed=4))
    hdr = "study_id,series_id,image_id,laterality,view_position,height,width,breast_birads,breast_density,split\n"
    (src / "breast-level_annotations.csv").write_text(
        hdr + "st1,se,im1,R,MLO,96,96,BI-RADS 4,DENSITY B,training\n"
        "st1,se,im2,R,CC,96,96,BI-RADS 1,DENSITY B,training\n")
    (src / "finding_annotations.csv").write_text(
        "study_id,series_id,image_id,laterality,view_position,height,width,breast_birads,breast_density,"
        "finding_categories,finding_birads,xmin,ymin,xmax,ymax,split\n"
        "st1,se,im1,R,MLO,96,96,BI-RADS 4,DENSITY B,\"['Mass', 'Skin Thickening']\",BI-RADS 4,35,45,45,55,training\n"
        "st1,se,im2,R,CC,96,96,BI-RADS 1,DENSITY B,['No Finding'],,,,,,training\n"
        "st1,se,im2,R,CC,96,96,BI-RADS 1,DENSITY B,['Alien'],,,,,,training\n")
    assert detect_layout(src) == "vindr"
    res = ingest(src, "vindr", tmp_path / "out", FAST)
    reasons = {r["source_file"]: r["reason"] for r in res.rejects}
    assert "unknown finding category 'Alien'" in reasons["finding_annotations.csv:4"]
    assert "unlabelled" in reasons["images/st9/stray.dicom"]
    assert res.added == 1 and res.exit_code == 3
    ds = PreparedDataset(tmp_path / "out")
    r = ds[0]
    assert [f.kind for f in r.findings] == ["mass"] and r.density == "B" and r.age == 61.0
    assert r.findings[0].source_codes == {"category": "Mass", "finding_birads": "BI-RADS 4",
                                          "associated": ["Skin Thickening"]}
    assert r.source_file == "images/st1/im1.dicom"
    text = (tmp_path / "out/manifest.jsonl").read_text() + (tmp_path / "out/dataset.json").read_text()
    for secret in ("Doe", "PAT-SECRET", "19600101", "General Hospital", "st1"):
        assert secret not in text.replace("images/st1/", "")


def test_vindr_row_findings_never_turn_a_flagged_image_negative():
    from mammosynth.data.adapters.vindr import row_findings

    box = (1.0, 2.0, 3.0, 4.0)
    (f,) = row_findings(["Suspicious Lymph Node"], box, "BI-RADS 3")
    assert (f.kind, f.box, f.source_codes["category"]) == ("unspecified", box, ["Suspicious Lymph Node"])
    kinds = [f.kind for f in row_findings(["Mass", "Suspicious Calcification", "Other"], box, "")]
    assert kinds == ["mass", "calcification"]
    assert row_findings(["No Finding"], None, "") == []
    with pytest.raises(ValueError, match="unknown finding category 'Alien'"):
        row_findings(["Mass", "Alien"], box, "")


# -- INbreast ---------------------------------------------------------------------------

def roi_plist(rois):
    return plistlib.dumps({"Images": [{"ImageIndex": 0, "NumberOfROIs": len(rois), "ROIs": [
        {"Name": name, "NumberOfPoints": len(pts), "Point_px": [f"({x}, {y})" for x, y in pts]}
        for name, pts in rois]}]})


def test_inbreast_end_to_end(tmp_path):
    src = tmp_path / "inb"
    write_dicom(src / "AllDICOMs/111_abcd_MG_R_CC_ANON.dcm", film12("left", (40, 50, 5)), laterality="R")
    write_dicom(src / "AllDICOMs/222_abcd_MG_R_MLO_ANON.dcm", film12("left", seed=3), laterality="R")
    write_dicom(src / "AllDICOMs/333_efgh_MG_L_CC_ANON.dcm", film12("right", seed=4), laterality="L")
    (src / "AllXML").mkdir()
    (src / "AllXML/111.xml").write_bytes(roi_plist([("Mass", [(35, 45), (45, 45), (45, 55), (35, 55)]),
                                                    ("Calcification", [(30, 30)]), ("Point 1", [(1, 1)])]))
    (src / "AllXML/333.xml").write_bytes(roi_plist([("Blob", [(1, 1), (5, 5)])]))
    (src / "INbreast.csv").write_text(
        "Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads\n"
        "removed;52;R;CC;2001;111;2;4c\nremoved;52;R;MLO;2001;222;2;1\nremoved;;L;CC;2001;333;5;1\n"
        "removed;;L;MLO;2001;444;1;1\n")
    assert detect_layout(src) == "inbreast"
    res = ingest(src, "inbreast", tmp_path / "out", FAST)
    reasons = " | ".join(f"{r['source_file']}: {r['reason']}" for r in res.rejects)
    assert "unknown density '5'" in reasons and "missing file" in reasons
    assert res.added == 2
    ds = PreparedDataset(tmp_path / "out")
    by = {r.image_id: r for r in ds}
    kinds = sorted(f.kind for f in by["inbreast-111"].findings)
    assert kinds == ["calcification", "mass"] and by["inbreast-111"].age == 52.0
    assert by["inbreast-111"].patient_id == by["inbreast-222"].patient_id  # same woman
    assert by["inbreast-111"].split == by["inbreast-222"].split


# -- RSNA -------------------------------------------------------------------------------

def test_rsna_end_to_end(tmp_path):
    src = tmp_path / "rsna"
    write_dicom(src / "train_images/10/1.dcm", film12("left"), laterality="R")
    write_dicom(src / "train_images/10/2.dcm", film12("right", seed=2), laterality="L")
    write_dicom(src / "train_images/11/3.dcm", film12("left", seed=3), laterality="R")
    (src / "train_images/11/4.dcm").write_bytes(b"DICM but truncated")
    (src / "train.csv").write_text(
        "site_id,patient_id,image_id,laterality,view,age,cancer,biopsy,invasive,BIRADS,implant,density,machine_id\n"
        "1,10,1,R,CC,55.0,0,0,0,1,0,B,49\n1,10,2,L,MLO,55.0,0,0,0,1,0,B,49\n"
        "1,11,3,R,CC,60.0,1,1,1,,0,,49\n1,11,4,R,MLO,60.0,0,0,0,,0,,49\n1,11,5,Q,MLO,60.0,0,0,0,,0,,49\n")
    assert detect_layout(src) == "rsna"
    res = ingest(src, "rsna", tmp_path / "out", FAST)
    reasons = {r["source_file"]: r["reason"] for r in res.rejects}
    assert reasons["train_images/11/4.dcm"].startswith("unreadable image")
    assert "unknown laterality 'Q'" in reasons["train.csv:6"]
    assert res.added == 3 and res.exit_code == 3 and len(reasons) == 2
    recs = {r.source_file: r for r in PreparedDataset(tmp_path / "out")}
    assert {r.laterality for r in recs.values()} == {"L", "R"}
    assert all(r.preprocessing["flipped"] == (r.laterality == "L") for r in recs.values())
    a, b, c = (recs[f"train_images/{p}.dcm"] for p in ("10/1", "10/2", "11/3"))
    assert a.patient_id == b.patient_id != c.patient_id and a.patient_id != "10"
    # cancer=1: a malignant lesion of unspecified kind, no box; a positive, unknown on the finding axis
    assert a.findings == b.findings == () and b.malignant is False
    (f,) = c.findings
    assert (f.kind, f.pathology, f.box) == ("unspecified", "malignant", None)
    assert f.source_codes == {"cancer": "1", "biopsy": "1", "invasive": "1"}  # empty BIRADS left out
    assert c.malignant is True and condition_value(c, "finding") is None and condition_value(a, "finding") == "none"


# -- folder -----------------------------------------------------------------------------

def test_folder_with_and_without_csv(tmp_path):
    src = tmp_path / "f"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(synthetic_film(96, "left", (40, 50, 5), seed=1)).save(src / "sub/a.png")
    Image.fromarray(synthetic_film(96, "right", seed=2)).save(src / "b.png")
    Image.fromarray(synthetic_film(96, "left", seed=3)).save(src / "c.png")
    assert detect_layout(src) == "folder"
    items, rejects = scan(src, "folder")
    assert len(items) == 3 and not rejects
    (src / "labels.csv").write_text(
        "file,patient_id,laterality,view,density,age,finding,pathology,x0,y0,x1,y1\n"
        "sub/a.png,w1,R,MLO,C,50,mass,malignant,35,45,45,55\n"
        "sub/a.png,w1,R,MLO,C,50,calc,benign,,,,\n"
        "b.png,w1,L,MLO,3,50,none,,,,,\n"
        "gone.png,w2,L,CC,,,,,,,,\n"
        "b.png,w1,L,MLO,3,50,blob,,,,,\n")
    res = ingest(src, "folder", tmp_path / "out", FAST)
    reasons = {r["source_file"]: r["reason"] for r in res.rejects}
    assert "missing file" in reasons["gone.png"]
    assert "unlabelled" in reasons["c.png"]
    assert "unknown finding kind" in reasons["labels.csv:6"] and "labels incomplete" in reasons["b.png"]
    recs = list(PreparedDataset(tmp_path / "out"))
    assert len(recs) == 1 and [f.kind for f in recs[0].findings] == ["mass", "calcification"]
    assert recs[0].density == "C" and recs[0].findings[1].box is None


def test_cbis_swapped_mask_uses_cropped_path(tmp_path):
    src = tmp_path / "cbis"
    write_dicom(src / "Calc-Test_P_00009_RIGHT_MLO/1/000000.dcm", film12("left", (40, 50, 5)), laterality="R")
    mask = np.zeros((96, 96), np.uint16)
    mask[45:56, 35:46] = 4095
    write_dicom(src / "Calc-Test_P_00009_RIGHT_MLO_1/1/000000.dcm", film12("left", seed=8))  # not a mask
    write_dicom(src / "Calc-Test_P_00009_RIGHT_MLO_1/1/000001.dcm", mask)
    (src / "calc_case_description_test_set.csv").write_text(
        "patient_id,breast density,left or right breast,image view,abnormality id,abnormality type,calc type,"
        "calc distribution,assessment,pathology,subtlety,image file path,cropped image file path,"
        "ROI mask file path\n"
        "P_00009,2,RIGHT,MLO,1,calcification,PLEOMORPHIC,CLUSTERED,4,BENIGN_WITHOUT_CALLBACK,3,"
        "Calc-Test_P_00009_RIGHT_MLO/1/000000.dcm,Calc-Test_P_00009_RIGHT_MLO_1/1/000001.dcm,"
        "Calc-Test_P_00009_RIGHT_MLO_1/1/000000.dcm\n")
    res = ingest(src, "cbis-ddsm", tmp_path / "out", FAST)
    assert res.added == 1, res.rejects
    r = PreparedDataset(tmp_path / "out")[0]
    assert r.findings[0].kind == "calcification" and r.findings[0].pathology == "benign"
    assert r.density == "B" and r.findings[0].mask is not None


def test_dicom_folder_monochrome1_matches_monochrome2(tmp_path):
    src = tmp_path / "dcm"
    write_dicom(src / "a.dcm", film12("left", seed=1), laterality="R", patient="P1")
    write_dicom(src / "b.dcm", film12("left", seed=1, mono1=True), photometric="MONOCHROME1",
                laterality="R", patient="P1")
    res = ingest(src, "folder", tmp_path / "out", FAST)
    assert res.added == 2 and res.exit_code == 0
    ds = PreparedDataset(tmp_path / "out")
    a, b = ds.image(0).astype(int), ds.image(1).astype(int)
    assert np.abs(a - b).max() <= 257  # inversion restores the same picture
    assert ds[0].preprocessing["inverted"] is False and ds[1].preprocessing["inverted"] is True
    assert ds[0].patient_id == ds[1].patient_id and "P1" not in ds[0].patient_id
    assert ds[0].bit_depth == 12 and ds[0].laterality == "R" and ds[0].view == "MLO"


def test_unknown_layout_and_missing_source(tmp_path):
    with pytest.raises(ValueError, match="unknown layout"):
        get_adapter("nope")
    with pytest.raises(FileNotFoundError):
        ingest(tmp_path / "nothing", "auto", tmp_path / "out", FAST)
