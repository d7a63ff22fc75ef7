"""The files the public repositories really ship (issue 19): one fixture per trait, written
here in the quirky real form (download-tool trees, metadata.csv, CRLF, ``;``, ``removed``,
bare LF inside quotes, JPEG 2000, MONOCHROME1 padding, xlsx). Never real data."""
from __future__ import annotations

import json
import plistlib

import numpy as np
import pytest

from mammosynth.cli import main
from mammosynth.data.adapters import LabelReject, Note, SourceItem, detect_layout, get_adapter
from mammosynth.data.adapters.mias import synthetic_film
from mammosynth.data.ingest import IngestConfig, ingest
from mammosynth.data.prepared import PreparedDataset
from mammosynth.data.preprocess import PreprocessConfig
from mammosynth.data.schema import hash_patient_id
from mammosynth.io.dicom import read_dicom

FAST = IngestConfig(workers=1, preprocess=PreprocessConfig(size=(64, 40), work_size=32))
MG = "1.2.840.10008.5.1.4.1.1.1.2"
DX = "1.2.840.10008.5.1.4.1.1.1.1"  # what RSNA's file meta says


def scan(source, layout):
    out = list(get_adapter(layout).scan(source))
    return ([x for x in out if isinstance(x, SourceItem)], [x for x in out if isinstance(x, LabelReject)],
            [x.text for x in out if isinstance(x, Note)])


def dcm(path, pixels, photometric="MONOCHROME2", sop_class=MG, in_dataset=True, j2k=False, bits=12, **attrs):
    """A tiny DICOM. ``in_dataset=False``: no Modality / SOP Class in the dataset (only the
    file meta has it, as RSNA's); ``attrs``: any further attributes (PatientID, ...)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    if in_dataset:
        ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop_class, meta.MediaStorageSOPInstanceUID, "MG"
    for k, v in attrs.items():
        setattr(ds, k, v)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    if j2k:
        ds.compress(JPEG2000Lossless, pixels.astype(np.uint16), encoding_plugin="pylibjpeg",
                    generate_instance_uid=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def film(side="left", lesion=None, seed=0, size=96):
    """A 12-bit film with the chest wall on ``side`` (left: a right breast)."""
    return synthetic_film(size, side, lesion, seed=seed, label=False).astype(np.uint16) * 16


def lesion_mask(box, size=96):
    m = np.zeros((size, size), np.uint16)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = 4095
    return m


def write_crlf(path, rows, sep=","):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(sep.join(r) for r in rows) + "\r\n").encode())


# -- CBIS-DDSM --------------------------------------------------------------------------

NBIA_COLS = ["Series UID", "Collection", "3rd Party Analysis", "Data Description URI", "Subject ID", "Study UID",
             "Study Description", "Study Date", "Series Description", "Manufacturer", "Modality", "SOP Class Name",
             "SOP Class UID", "Number of Images", "File Size", "File Location", "Download Timestamp"]
CBIS_COMMON = ["left or right breast", "image view", "abnormality id", "abnormality type"]
CBIS_TAIL = ["assessment", "pathology", "subtlety", "image file path", "cropped image file path", "ROI mask file path"]


class CbisDownload:
    """The NBIA download tree: CBIS-DDSM/<Subject>/<date>-DDSM-NA-<n>/1.000000-<description>-<n>/1-N.dcm."""

    def __init__(self, root):
        self.root, self.meta, self.n = root, [], 0

    def series(self, subject, description, files):
        """Write a series (``files``: 1-1.dcm, 1-2.dcm... pixel arrays); return its CSV path stem."""
        self.n += 1
        study, series = f"1.3.6.1.4.1.9590.100.1.2.{1000 + self.n}", f"1.3.6.1.4.1.9590.100.1.2.{5000 + self.n}"
        folder = f"CBIS-DDSM/{subject}/08-29-2017-DDSM-NA-{90000 + self.n}/1.000000-{description}-{60000 + self.n}"
        for k, px in enumerate(files, start=1):
            dcm(self.root / folder / f"1-{k}.dcm", px, PatientID=subject)  # PatientID = the subject folder name
        self.meta.append([series, "CBIS-DDSM", "NO", "", subject, study, "", "08-29-2017", description, "", "MG", "",
                          MG, str(len(files)), "1 MB", ".\\" + folder.replace("/", "\\"), "2024-01-01"])
        return f"{subject}/{study}/{series}"

    def write_metadata(self):
        write_crlf(self.root / "metadata.csv", [NBIA_COLS] + self.meta)


def cbis_download(root):
    """Three films, two women, one film in both a mass and a calc file, one woman in both
    the official train and test files; ROI folders with the crop and the mask in either order."""
    d = CbisDownload(root)
    small = np.full((20, 20), 2000, np.uint16)  # the cropped lesion: small, not binary
    f1 = film("right", (60, 40, 5), seed=1)  # P_00001 LEFT CC: chest wall right
    box1, box1c = (55, 35, 66, 46), (57, 37, 63, 43)
    full1_mass = d.series("Mass-Training_P_00001_LEFT_CC", "full mammogram images", [f1])
    full1_calc = d.series("Calc-Training_P_00001_LEFT_CC", "full mammogram images", [f1])  # the same film again
    roi1_mass = d.series("Mass-Training_P_00001_LEFT_CC_1", "ROI mask images", [small, lesion_mask(box1)])
    roi1_calc = d.series("Calc-Training_P_00001_LEFT_CC_1", "ROI mask images", [lesion_mask(box1c), small])
    f2 = film("left", (40, 50, 5), seed=2)  # P_00002 RIGHT MLO
    full2 = d.series("Mass-Training_P_00002_RIGHT_MLO", "full mammogram images", [f2])
    crop2 = d.series("Mass-Training_P_00002_RIGHT_MLO_1", "cropped images", [small])
    mask2 = d.series("Mass-Training_P_00002_RIGHT_MLO_1", "ROI mask images", [lesion_mask((35, 45, 46, 56))])
    f3 = film("left", (40, 40, 4), seed=3)  # P_00002 RIGHT CC, in the official test file
    full3 = d.series("Calc-Test_P_00002_RIGHT_CC", "full mammogram images", [f3])
    roi3 = d.series("Calc-Test_P_00002_RIGHT_CC_1", "ROI mask images", [small, lesion_mask((36, 36, 45, 45))])
    d.write_metadata()

    def q(p):  # a quoted path ending with a bare LF inside the quotes, as in the real CSVs
        return f'"{p}\n"'

    mass_hdr = ["patient_id", "breast_density", *CBIS_COMMON, "mass shape", "mass margins", *CBIS_TAIL]
    write_crlf(root / "mass_case_description_train_set.csv", [
        mass_hdr,
        ["P_00001", "3", "LEFT", "CC", "1", "mass", "OVAL", "CIRCUMSCRIBED", "4", "MALIGNANT", "4",
         q(full1_mass + "/000000.dcm"), q(roi1_mass + "/000000.dcm"), q(roi1_mass + "/000001.dcm")],
        ["P_00002", "2", "RIGHT", "MLO", "1", "mass", "IRREGULAR", "SPICULATED", "5", "MALIGNANT", "5",
         q(full2 + "/000000.dcm"), q(crop2 + "/000000.dcm"), q(mask2 + "/000000.dcm")],
    ])
    calc_hdr = ["patient_id", "breast density", *CBIS_COMMON, "calc type", "calc distribution", *CBIS_TAIL]
    write_crlf(root / "calc_case_description_train_set.csv", [
        calc_hdr,
        ["P_00001", "3", "LEFT", "CC", "1", "calcification", "PLEOMORPHIC", "CLUSTERED", "4", "BENIGN", "3",
         q(full1_calc + "/000000.dcm"), q(roi1_calc + "/000000.dcm"), q(roi1_calc + "/000001.dcm")],
    ])
    write_crlf(root / "calc_case_description_test_set.csv", [
        calc_hdr,
        ["P_00002", "0", "RIGHT", "CC", "1", "calcification", "AMORPHOUS", "CLUSTERED", "4",
         "BENIGN_WITHOUT_CALLBACK", "2", q(full3 + "/000000.dcm"), q(roi3 + "/000001.dcm"), q(roi3 + "/000000.dcm")],
    ])
    return root


def test_cbis_download_tree_via_metadata_csv_paths_never_exist_on_disk(tmp_path):
    src = cbis_download(tmp_path / "manifest-1600000000000")
    assert detect_layout(src) == "cbis-ddsm"
    items, rejects, notes = scan(src, "cbis-ddsm")
    assert not rejects and len(items) == 3  # was: 0 of N, every row "missing file"
    for it in items:
        assert "full mammogram images" in it.source_file and it.path.name == "1-1.dcm"


def test_cbis_roi_folder_mask_told_apart_from_crop_not_by_file_number(tmp_path):
    src = cbis_download(tmp_path / "src")
    items, _, _ = scan(src, "cbis-ddsm")
    for it in items:
        for f in it.findings:  # the mask (full image size) is tried first, whichever number it has
            assert f.mask_path is not None
            assert read_dicom(f.mask_path)[0].shape == (96, 96), f.mask_path
    res = ingest(src, "cbis-ddsm", tmp_path / "out", FAST)
    assert res.added == 3 and res.rejected == 0, res.rejects
    ds = PreparedDataset(tmp_path / "out")
    for i, r in enumerate(ds):
        for k, f in enumerate(r.findings):
            assert f.box is not None and ds.mask(i, k) is not None and ds.mask(i, k).any()


def test_cbis_density_column_names_differ_and_density_0_is_unknown(tmp_path):
    src = cbis_download(tmp_path / "src")
    items, rejects, _ = scan(src, "cbis-ddsm")
    by = {(i.patient_raw, i.view): i for i in items}
    assert by[("P_00001", "CC")].density == "C"  # breast_density (mass) and breast density (calc)
    assert by[("P_00002", "MLO")].density == "B"
    assert (by[("P_00002", "CC")].density, by[("P_00002", "CC")].density_source) == ("unknown", "0")
    assert not rejects


def test_cbis_crlf_rows_with_bare_lf_inside_quoted_paths(tmp_path):
    src = cbis_download(tmp_path / "src")
    raw = (src / "mass_case_description_train_set.csv").read_bytes()
    assert b'.dcm\n"' in raw and raw.count(b"\r\n") == 3  # the fixture has the trait
    items, rejects, _ = scan(src, "cbis-ddsm")
    assert len(items) == 3 and not rejects


def test_cbis_woman_is_p_id_not_dicom_patient_id_and_split_holds_across_files(tmp_path):
    src = cbis_download(tmp_path / "src")
    out = tmp_path / "out"
    assert main(["ingest", str(src), "--out", str(out), "--size", "64", "40", "--workers", "1"]) == 0
    recs = list(PreparedDataset(out))
    assert len(recs) == 3
    p2 = [r for r in recs if r.laterality == "R"]  # P_00002: mass train (MLO) and calc test (CC)
    assert len(p2) == 2 and p2[0].patient_id == p2[1].patient_id and p2[0].split == p2[1].split
    # the woman is the CSV's P_xxxxx, not the DICOM PatientID (the subject folder name)
    assert p2[0].patient_id == hash_patient_id("CBIS-DDSM", "P_00002")
    assert all(r.preprocessing["patient_from"] == "label" for r in recs)
    official = sorted(r.preprocessing["source_labels"]["official_split"] for r in recs)
    assert official == ["test", "train", "train"]


def test_cbis_film_in_mass_and_calc_files_merged_not_duplicated_and_split_override_noted(tmp_path):
    src = cbis_download(tmp_path / "src")
    res = ingest(src, "auto", tmp_path / "out", FAST)
    assert res.added == 3 and res.exit_code == 0
    (cc,) = [r for r in PreparedDataset(tmp_path / "out") if r.view == "CC" and r.laterality == "L"]
    assert sorted(f.kind for f in cc.findings) == ["calcification", "mass"]
    assert sorted(f.pathology for f in cc.findings) == ["benign", "malignant"]
    notes = " | ".join(res.notes)
    assert "1 film(s) are named by both a mass and a calc file" in notes
    assert "1 woman/women are in both the official train and test files" in notes
    assert "note: 1 woman/women" in res.summary()


def test_cbis_download_tree_without_metadata_csv_searches_the_subject_folder(tmp_path):
    src = cbis_download(tmp_path / "src")
    (src / "metadata.csv").unlink()
    items, rejects, _ = scan(src, "cbis-ddsm")
    assert len(items) == 3 and not rejects
    for it in items:  # the ROI subject folder has the mask and the crop: both are tried, mask first
        assert all(read_dicom(f.mask_path)[0].shape == (96, 96) for f in it.findings)


# -- INbreast ---------------------------------------------------------------------------

def osirix_plist(rois):
    """An OsiriX ROI plist as INbreast ships it: Point_mm and Center are zeros."""
    return plistlib.dumps({"Images": [{"ImageIndex": 0, "NumberOfROIs": len(rois), "ROIs": [
        {"Name": name, "NumberOfPoints": len(pts), "Center": "(0.000000, 0.000000, 0.000000)",
         "Point_mm": ["(0.000000, 0.000000, 0.000000)"] * len(pts),
         "Point_px": [f"({x:.6f}, {y:.6f})" for x, y in pts], "Area": 0.0}
        for name, pts in rois]}]})


def inbreast_tree(root):
    dcm(root / "AllDICOMs/20586908_6c613a14b80a8591_MG_R_CC_ANON.dcm", film("left", (40, 50, 6), seed=1),
        ImageLaterality="R")
    dcm(root / "AllDICOMs/20586934_6c613a14b80a8591_MG_R_ML_ANON.dcm", film("left", seed=2), ImageLaterality="R")
    dcm(root / "AllDICOMs/22614074_b3c1b2d3e4f5a6b7_MG_L_ML_ANON.dcm", film("right", seed=3), ImageLaterality="L")
    (root / "AllXML").mkdir()
    spic = [(30, 40), (50, 40), (50, 60), (30, 60)]  # encloses the mass
    mass = [(35, 45), (45, 45), (45, 55), (35, 55)]
    (root / "AllXML/20586908.xml").write_bytes(osirix_plist([("Spiculated Region", spic), ("Mass", mass)]))
    write_crlf(root / "INbreast.csv", [
        ["Patient ID", "Patient age", "Laterality", "View", "Acquisition date", "File Name", "ACR", "Bi-Rads"],
        ["removed", "removed", "R", "CC", "201001", "20586908", "2", "4c"],
        ["removed", "removed", "R", "MLO", "201001", "20586934", "   ", "1"],
        ["removed", "removed", "L", "MLO", "201002", "22614074", "1", "2"],
    ], sep=";")
    return root


def test_inbreast_semicolon_crlf_csv_with_removed_and_blank_acr(tmp_path):
    src = inbreast_tree(tmp_path / "inb")
    assert b"\r\nremoved;removed;R;CC;" in (src / "INbreast.csv").read_bytes()  # the fixture has the trait
    assert detect_layout(src) == "inbreast"
    items, rejects, _ = scan(src, "inbreast")
    assert not rejects and len(items) == 3
    by = {i.image_id: i for i in items}
    assert all(i.age is None for i in items)  # 'removed': unknown, not an error
    assert by["inbreast-20586934"].density == "unknown"  # the ACR cell of blanks
    assert by["inbreast-20586908"].density == "B"
    assert by["inbreast-20586908"].patient_raw == by["inbreast-20586934"].patient_raw == "6c613a14b80a8591"


def test_inbreast_ml_in_file_names_is_the_csv_mlo(tmp_path):
    from mammosynth.data.adapters.inbreast import file_name_labels

    src = inbreast_tree(tmp_path / "inb")
    items, _, _ = scan(src, "inbreast")
    assert {i.image_id: i.view for i in items}["inbreast-20586934"] == "MLO"
    assert file_name_labels(src / "AllDICOMs/22614074_b3c1b2d3e4f5a6b7_MG_L_ML_ANON.dcm") == ("L", "MLO")
    res = ingest(src, "inbreast", tmp_path / "out", FAST)
    assert res.added == 3 and res.exit_code == 0
    assert sorted(r.view for r in PreparedDataset(tmp_path / "out")) == ["CC", "MLO", "MLO"]


def test_inbreast_spiculated_region_enclosing_mass_is_one_lesion_from_point_px(tmp_path):
    src = inbreast_tree(tmp_path / "inb")
    items, _, _ = scan(src, "inbreast")
    (f,) = {i.image_id: i for i in items}["inbreast-20586908"].findings  # one spiculated mass, not two
    assert f.kind == "mass" and f.source_codes["spiculated"] is True
    assert f.box == (35.0, 45.0, 45.0, 55.0)  # from Point_px (Point_mm and Center are zeros)
    assert f.source_codes["spiculated_region_box"] == [30.0, 40.0, 50.0, 60.0]


def test_inbreast_spiculated_region_alone_stays_a_mass():
    from mammosynth.data.adapters.base import RawFinding
    from mammosynth.data.adapters.inbreast import merge_spiculated

    region = RawFinding("mass", box=(0, 0, 10, 10), source_codes={"roi_name": "Spiculated Region"})
    apart = RawFinding("mass", box=(20, 20, 30, 30), source_codes={"roi_name": "Mass"})
    assert merge_spiculated([region, apart]) == [region, apart]


# -- RSNA -------------------------------------------------------------------------------

def padded_mono1_film(h=192, w=144, seed=0, chest_wall="left"):
    """MONOCHROME1 12-bit film as RSNA ships it: padded with the maximum over most of the
    image; a dense core and a faint edge (fat and skin, the outer 12 %) at 15 % of it. Returns
    (stored pixels, true breast mask)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    cx = 0 if chest_wall == "left" else w - 1
    r = np.sqrt(((yy - h / 2) / (0.3 * h)) ** 2 + ((xx - cx) / (0.55 * w)) ** 2)
    img = np.zeros((h, w))
    breast, core = r < 1.0, r < 0.88
    img[breast] = 450 + rng.normal(0, 20, breast.sum())
    img[core] = 3000 + rng.normal(0, 150, core.sum())
    return (4095 - np.clip(img, 0, 4095)).astype(np.uint16), breast


def rsna_tree(root):
    views = {"1": "CC", "2": "AT", "3": "LM", "4": "ML", "5": "LMO"}
    for iid in views:
        px, _ = padded_mono1_film(seed=int(iid))
        # no Modality / ViewPosition / SOP Class in the dataset; the file meta says DX; JPEG 2000
        dcm(root / f"train_images/10/{iid}.dcm", px, photometric="MONOCHROME1", sop_class=DX, in_dataset=False,
            j2k=iid == "1", PatientID="10")
    px, _ = padded_mono1_film(seed=9)
    dcm(root / "train_images/11/6.dcm", px, photometric="MONOCHROME1", sop_class=DX, in_dataset=False)
    rows = [["site_id", "patient_id", "image_id", "laterality", "view", "age", "cancer", "biopsy", "invasive",
             "BIRADS", "implant", "density", "difficult_negative_case", "machine_id"]]
    rows += [["1", "10", iid, "R", v, "61.0", "0", "0", "0", "1", "0", "B", "False", "49"] for iid, v in views.items()]
    rows += [["2", "11", "6", "R", "MLO", "", "0", "0", "0", "", "0", "", "False", "48"]]  # site 2: no density, no age
    write_crlf(root / "train.csv", rows)
    return root


def test_rsna_dicoms_without_modality_viewposition_sop_class_and_dx_file_meta(tmp_path):
    import pydicom

    src = rsna_tree(tmp_path / "rsna")
    ds = pydicom.dcmread(src / "train_images/10/2.dcm")
    assert "Modality" not in ds and "ViewPosition" not in ds and "SOPClassUID" not in ds
    assert ds.file_meta.MediaStorageSOPClassUID == DX
    assert detect_layout(src) == "rsna"
    res = ingest(src, "auto", tmp_path / "out", FAST)
    assert res.added == 6 and res.rejected == 0, res.rejects


def test_rsna_jpeg2000_monochrome1_padded_with_the_maximum(tmp_path):
    src = rsna_tree(tmp_path / "rsna")
    arr, meta = read_dicom(src / "train_images/10/1.dcm")
    assert meta["transfer_syntax"] == "1.2.840.10008.1.2.4.90" and meta["inverted"]
    assert (arr == 0).mean() > 0.5  # the padding (the stored maximum) is black after inversion
    ingest(src, "rsna", tmp_path / "out", FAST)
    ds = PreparedDataset(tmp_path / "out")
    for i, r in enumerate(ds):
        assert r.preprocessing["inverted"] and r.preprocessing["breast_fraction"] > 0.2
        assert ds.image(i)[:, 0].max() > 0  # the breast fills the output from the chest wall


def test_rsna_views_at_lm_ml_lmo_no_density_site_2_and_rows_without_age(tmp_path):
    src = rsna_tree(tmp_path / "rsna")
    res = ingest(src, "rsna", tmp_path / "out", FAST)
    assert res.added == 6
    recs = {r.source_file.split("/")[-1]: r for r in PreparedDataset(tmp_path / "out")}
    assert recs["1.dcm"].view == "CC"
    assert {recs[f"{k}.dcm"].preprocessing["source_labels"]["view"] for k in "2345"} == {"AT", "LM", "ML", "LMO"}
    assert all(recs[f"{k}.dcm"].view == "other" for k in "2345")
    assert (recs["6.dcm"].density, recs["6.dcm"].age) == ("unknown", None)
    assert recs["1.dcm"].age == 61.0


def test_rsna_segmentation_keeps_the_skin_line_of_a_faint_breast_edge(tmp_path):
    """Otsu over a padded film sees only breast pixels and falls between the dense core and
    the faint edge; the mask must still reach the skin (it stopped at the core before)."""
    from mammosynth.data.preprocess import preprocess

    px, breast = padded_mono1_film(h=384, w=288, seed=4)
    path = dcm(tmp_path / "faint.dcm", px, photometric="MONOCHROME1")
    arr, _ = read_dicom(path)
    pre = preprocess(arr, "R", PreprocessConfig(size=(128, 96), work_size=64))
    x0, y0, x1, y1 = pre.info["crop"]
    cols, rows = np.flatnonzero(breast.any(0)), np.flatnonzero(breast.any(1))
    assert x1 >= 0.97 * (cols[-1] + 1), (x1, cols[-1] + 1)  # reaches the skin at the nipple side
    assert y0 <= rows[0] + 0.03 * arr.shape[0] and y1 >= 0.97 * (rows[-1] + 1)
    # the background stays out: nothing of the padding beyond the skin is kept
    assert pre.info["breast_fraction"] < breast.mean() + 0.05


# -- VinDr-Mammo ------------------------------------------------------------------------

VINDR_BREAST = ["study_id", "series_id", "image_id", "laterality", "view_position", "height", "width",
                "breast_birads", "breast_density", "split"]
VINDR_FINDING = VINDR_BREAST[:-1] + ["finding_categories", "finding_birads", "xmin", "ymin", "xmax", "ymax", "split"]


def vindr_tree(root):
    dcm(root / "images/s1/a.dicom", film("left", (8, 50, 6), seed=1), ImageLaterality="R", ViewPosition="MLO")
    dcm(root / "images/s1/b.dicom", film("left", seed=2), ImageLaterality="R", ViewPosition="CC")
    write_crlf(root / "breast-level_annotations.csv", [
        VINDR_BREAST,
        ["s1", "se", "a", "R", "MLO", "96", "96", "BI-RADS 4", "DENSITY C", "training"],
        ["s1", "se", "b", "R", "CC", "96", "96", "BI-RADS 4", "DENSITY C", "training"],
    ])
    write_crlf(root / "finding_annotations.csv", [
        VINDR_FINDING,
        # the box extends past the left edge and the right edge
        ["s1", "se", "a", "R", "MLO", "96", "96", "BI-RADS 4", "DENSITY C", "\"['Mass']\"", "BI-RADS 4",
         "-6.5", "44", "120.25", "56", "training"],
        # No Finding on this view of a BI-RADS 4 breast (the finding is on the other view)
        ["s1", "se", "b", "R", "CC", "96", "96", "BI-RADS 4", "DENSITY C", "['No Finding']", "", "", "", "", "",
         "training"],
    ])
    return root


def test_vindr_boxes_outside_the_image_are_clipped_and_reported(tmp_path):
    src = vindr_tree(tmp_path / "vindr")
    assert detect_layout(src) == "vindr"
    items, rejects, notes = scan(src, "vindr")
    (f,) = {i.image_id: i for i in items}["vindr-a"].findings
    assert f.box == (0.0, 44.0, 96.0, 56.0) and f.source_codes["box_unclipped"] == [-6.5, 44.0, 120.25, 56.0]
    assert notes == ["1 finding box(es) extend outside their image: clipped to the image "
                     "(the source box kept as source_codes['box_unclipped'])"]
    res = ingest(src, "vindr", tmp_path / "out", FAST)
    assert res.added == 2 and res.notes == notes and "note: 1 finding box(es)" in res.summary()


def test_vindr_no_finding_row_on_a_birads_4_breast_keeps_the_breast_birads(tmp_path):
    src = vindr_tree(tmp_path / "vindr")
    ingest(src, "vindr", tmp_path / "out", FAST)
    by = {r.image_id: r for r in PreparedDataset(tmp_path / "out")}
    assert by["vindr-b"].findings == ()  # no finding on this view
    assert by["vindr-b"].preprocessing["source_labels"]["breast_birads"] == "BI-RADS 4"
    assert [f.kind for f in by["vindr-a"].findings] == ["mass"]


def test_vindr_dicom_suffix_and_single_quoted_category_lists(tmp_path):
    from mammosynth.data.adapters.vindr import parse_categories

    src = vindr_tree(tmp_path / "vindr")
    items, _, _ = scan(src, "vindr")
    assert sorted(i.path.suffix for i in items) == [".dicom", ".dicom"]
    assert parse_categories("['Mass', 'Suspicious Calcification']") == ["Mass", "Suspicious Calcification"]


# -- CMMD -------------------------------------------------------------------------------

CMMD_COLS = ["ID1", "LeftRight", "Age", "number", "abnormality", "classification", "subtype"]


def write_xlsx(path, rows):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    for r in rows:
        ws.append(r)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def with_pectoral(px):
    """A bright pectoral-muscle triangle in the upper chest-wall corner (chest wall on the right)."""
    out = px.copy()
    n = out.shape[0]
    yy, xx = np.mgrid[0:n, 0:n]
    out[(n - 1 - xx) < 0.45 * n - 1.2 * yy] = int(out.max() * 0.95)
    return out


def cmmd_tree(root):
    """D1-0001: one breast (L), DICOMs with no side or view at all. D1-0002: both breasts;
    one DICOM with PatientOrientation, one with ViewCodeSequence + PatientOrientation, one
    with nothing (the image tells the side). D1-0003: a row, no files. D1-0099: files, no row."""
    from pydicom.dataset import Dataset

    meta = []

    def series(subject, files):
        n = len(meta) + 1
        folder = f"CMMD/{subject}/07-18-2010-NA-NA-{79000 + n}/1.000000-NA-{70000 + n}"
        for k, (px, attrs) in enumerate(files, start=1):
            dcm(root / folder / f"1-{k}.dcm", px, PatientID=subject, **attrs)
        meta.append([f"1.3.6.1.4.1.9590.100.1.2.{n}", "CMMD", "NO", "", subject, f"1.3.6.1.4.1.9590.{n}", "", "",
                     "", "SIEMENS", "MG", "", MG, str(len(files)), "1 MB", ".\\" + folder.replace("/", "\\"), ""])

    cc = Dataset()
    cc.CodeValue, cc.CodingSchemeDesignator, cc.CodeMeaning = "399162004", "SCT", "cranio-caudal"
    series("D1-0001", [(film("right", seed=1), {}), (with_pectoral(film("right", seed=2)), {})])
    series("D1-0002", [(film("left", seed=3), {"PatientOrientation": ["A", "FR"]}),
                       (film("right", seed=4), {"PatientOrientation": ["P", "L"], "ViewCodeSequence": [cc]}),
                       (film("right", seed=5), {})])
    series("D1-0099", [(film("left", seed=6), {})])
    write_crlf(root / "metadata.csv", [NBIA_COLS] + meta)
    write_xlsx(root / "CMMD_clinicaldata_revision.xlsx", [
        CMMD_COLS,
        ["D1-0001", "L", 44, 2, "mass", "Benign", None],
        ["D1-0002", "R", 61, 2, "calcification", "Malignant", "Luminal A"],
        ["D1-0002", "L", 61, 2, "both", "Benign", None],
        ["D1-0003", "R", 50, 2, "mass", "Malignant", "HER2-enriched"],
    ])
    return root


def test_cmmd_xlsx_one_row_per_breast_and_metadata_csv_to_series_folders(tmp_path):
    src = cmmd_tree(tmp_path / "cmmd")
    assert detect_layout(src) == "cmmd"
    out = tmp_path / "out"
    assert main(["ingest", str(src), "--out", str(out), "--size", "64", "40", "--workers", "1"]) == 3
    res = PreparedDataset(out)
    assert len(res) == 5
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    reasons = {r["source_file"]: r["reason"] for r in rejects}
    assert any("missing file" in v and "D1-0003" in v for v in reasons.values())
    assert sum("unlabelled" in v and "D1-0099" in v for v in reasons.values()) == 1
    by_woman = {}
    for r in res:
        by_woman.setdefault(r.source_file.split("/")[1], []).append(r)
    assert {len(v) for v in by_woman.values()} == {2, 3}
    for r in by_woman["D1-0001"]:
        assert (r.laterality, [f.kind for f in r.findings], r.findings[0].pathology) == ("L", ["mass"], "benign")
        assert r.age == 44.0 and r.density == "unknown" and r.findings[0].box is None
    assert len({r.patient_id for r in by_woman["D1-0002"]}) == 1


def test_cmmd_dicoms_without_imagelaterality_and_viewposition_side_and_view_derived(tmp_path):
    src = cmmd_tree(tmp_path / "cmmd")
    res = ingest(src, "cmmd", tmp_path / "out", FAST)
    assert res.added == 5
    recs = {r.source_file.split("/", 1)[1].split("/")[0] + "/" + r.source_file.rsplit("/", 1)[1]: r
            for r in PreparedDataset(tmp_path / "out")}
    a, b, c = recs["D1-0002/1-1.dcm"], recs["D1-0002/1-2.dcm"], recs["D1-0002/1-3.dcm"]
    # PatientOrientation A\FR: right breast, oblique
    assert (a.laterality, a.view, a.preprocessing["source_labels"]["side_from"]) == ("R", "MLO", "PatientOrientation")
    assert [(f.kind, f.pathology, f.source_codes["subtype"]) for f in a.findings] == [
        ("calcification", "malignant", "Luminal A")]
    # ViewCodeSequence CC, PatientOrientation P\L: left breast ('both' -> mass + calcification)
    assert (b.laterality, b.view, b.preprocessing["source_labels"]["view_from"]) == ("L", "CC", "ViewCodeSequence")
    assert sorted(f.kind for f in b.findings) == ["calcification", "mass"]
    # nothing in the header, both breasts labelled: the image tells (chest wall on the right: L)
    assert (c.laterality, c.view, c.preprocessing["source_labels"]["side_from"]) == ("L", "other", "image")
    assert c.preprocessing["laterality_source"] == "image" and len(c.findings) == 2
    one = recs["D1-0001/1-1.dcm"]  # one breast in the table: that side
    assert one.preprocessing["source_labels"]["side_from"] == "clinical row (one breast)"
    # no view in the header: the image tells MLO when a pectoral muscle shows, else nothing
    assert one.view == "other" and one.preprocessing["view_from_image"]["view"] is None
    mlo = recs["D1-0001/1-2.dcm"]
    assert mlo.view == "MLO" and mlo.preprocessing["view_from_image"]["pectoral_ratio"] >= 1.15


# -- all DICOM layouts ------------------------------------------------------------------

def test_jpeg2000_and_jpeg_ls_decode_out_of_the_box(tmp_path):
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEG2000, JPEG2000Lossless, JPEGLSLossless, JPEGLSNearLossless

    for uid in (JPEG2000Lossless, JPEG2000, JPEGLSLossless, JPEGLSNearLossless):
        assert get_decoder(uid).is_available, uid.name  # default dependencies, no extra needed
    px = film("left", seed=7).astype(np.uint16)
    arr, meta = read_dicom(dcm(tmp_path / "j2k.dcm", px, j2k=True))
    ref, _ = read_dicom(dcm(tmp_path / "raw.dcm", px))
    assert meta["transfer_syntax"] == str(JPEG2000Lossless) and np.array_equal(arr, ref)
    from pydicom.data import get_testdata_file

    jls = get_testdata_file("JPEGLSNearLossless_16.dcm")  # pydicom's own JPEG-LS sample (no encoder here)
    if jls is None:
        pytest.skip("pydicom's JPEG-LS sample file is not installed")
    arr, meta = read_dicom(jls)
    assert meta["transfer_syntax"] == str(JPEGLSNearLossless) and arr.shape == (50, 10) and arr.max() > 0


@pytest.mark.parametrize("layout, build, added, code", [
    ("cbis-ddsm", cbis_download, 3, 0), ("inbreast", inbreast_tree, 3, 0), ("rsna", rsna_tree, 6, 0),
    ("vindr", vindr_tree, 2, 0), ("cmmd", cmmd_tree, 5, 3)])
def test_mammosynth_ingest_auto_detects_each_layout_from_its_real_files(tmp_path, capsys, layout, build, added, code):
    src, out = build(tmp_path / layout), tmp_path / "out"
    assert main(["ingest", str(src), "--out", str(out), "--size", "64", "40", "--workers", "1"]) == code
    info = json.loads((out / "dataset.json").read_text())
    assert info["source"]["layout"] == layout and len(PreparedDataset(out)) == added
    assert f"ingest {layout}: {added} added" in capsys.readouterr().out
