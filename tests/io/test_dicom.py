"""DICOM reader: MONOCHROME1, rescale, windowing, VOI LUT, compression, bad files."""
from __future__ import annotations

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from mammosynth.io.dicom import missing_plugin_for, read_dicom  # noqa: E402
from mammosynth.io.images import ImageReadError, read_image  # noqa: E402


def write_dicom(path, pixels, photometric="MONOCHROME2", bits=16, window=None, rescale=None, voi_lut=None,
                extra=None):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "SECRET-123"
    ds.PatientBirthDate = "19600101"
    ds.PatientAge = "057Y"
    ds.ImageLaterality = "L"
    ds.ViewPosition = "CC"
    ds.PixelSpacing = [0.1, 0.1]
    ds.Modality = "MG"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16 if bits > 8 else 8
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if voi_lut is not None:
        from pydicom.dataset import Dataset as Item
        from pydicom.sequence import Sequence

        item = Item()
        item.LUTDescriptor = [len(voi_lut), 0, 16]
        item.add_new(0x00283006, "US", [int(v) for v in voi_lut])
        ds.VOILUTSequence = Sequence([item])
    for k, v in (extra or {}).items():
        setattr(ds, k, v)
    dtype = np.uint16 if bits > 8 else np.uint8
    ds.PixelData = pixels.astype(dtype).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def ramp(h=16, w=24, top=4095):
    return (np.arange(h * w).reshape(h, w) * top // (h * w - 1)).astype(np.uint16)


def test_monochrome2_16bit_minmax(tmp_path):
    arr, meta = read_dicom(write_dicom(tmp_path / "a.dcm", ramp(), bits=12))
    assert arr.dtype == np.uint16 and arr.shape == (16, 24)
    assert arr.min() == 0 and arr.max() == 65535
    assert meta["bit_depth"] == 12 and meta["windowing"] == "minmax"
    assert np.all(np.diff(arr.ravel().astype(int)) >= 0)  # brighter stays brighter


def test_monochrome1_is_inverted(tmp_path):
    a2, _ = read_dicom(write_dicom(tmp_path / "m2.dcm", ramp(), bits=12))
    a1, meta = read_dicom(write_dicom(tmp_path / "m1.dcm", ramp(), photometric="MONOCHROME1", bits=12))
    assert meta["inverted"] is True
    np.testing.assert_array_equal(a1.astype(int), 65535 - a2.astype(int))


def test_window_clips_and_scales(tmp_path):
    px = ramp(top=4000)
    arr, meta = read_dicom(write_dicom(tmp_path / "w.dcm", px, bits=12, window=(2000, 1000)))
    assert meta["windowing"].startswith("window(2000,1000")
    assert (arr[px <= 1400] == 0).all() and (arr[px >= 2600] == 65535).all()
    mid = arr[(px > 1600) & (px < 2400)]
    assert 0 < mid.min() and mid.max() < 65535


def test_rescale_applied_before_window(tmp_path):
    px = ramp(top=2000)
    # value*2 - 1000: raw 1000 -> 1000; window centred at 1000 (modality units)
    arr, _ = read_dicom(write_dicom(tmp_path / "r.dcm", px, bits=12, window=(1000, 10), rescale=(2, -1000)))
    assert (arr[px < 990] == 0).all() and (arr[px > 1010] == 65535).all()


def test_voi_lut_sequence(tmp_path):
    lut = np.linspace(65535, 0, 4096).astype(np.uint16)  # an inverting LUT
    arr, meta = read_dicom(write_dicom(tmp_path / "v.dcm", ramp(), bits=12, voi_lut=lut))
    assert meta["windowing"] == "voi_lut"
    assert arr[0, 0] > arr[-1, -1]


def test_8bit_dicom(tmp_path):
    px = (np.arange(16 * 24).reshape(16, 24) % 256).astype(np.uint8)
    arr, meta = read_dicom(write_dicom(tmp_path / "b.dcm", px, bits=8))
    assert arr.dtype == np.uint8 and meta["bit_depth"] == 8


def test_header_meta_and_dispatch(tmp_path):
    path = write_dicom(tmp_path / "noext", ramp(), bits=14)
    arr, meta = read_image(path)  # no suffix: DICOM
    assert meta["laterality"] == "L" and meta["view"] == "CC" and meta["age"] == 57.0
    assert meta["pixel_spacing_mm"] == (0.1, 0.1) and meta["bit_depth"] == 14
    assert "Doe" not in str({k: v for k, v in meta.items() if k not in ("patient_id_raw", "identifiers_raw")})
    assert {"SECRET-123", "Doe^Jane", "Doe", "Jane"} <= set(meta["identifiers_raw"])  # compared, never stored


def test_rle_compressed_round_trip(tmp_path):
    from pydicom.uid import RLELossless

    path = write_dicom(tmp_path / "c.dcm", ramp(), bits=16)
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless)
    ds.save_as(tmp_path / "rle.dcm")
    a, _ = read_dicom(tmp_path / "rle.dcm")
    b, _ = read_dicom(path)
    np.testing.assert_array_equal(a, b)


def test_jpeg2000_decoded_by_pylibjpeg_openjpeg(tmp_path):
    pytest.importorskip("openjpeg", reason="pylibjpeg-openjpeg not installed")
    from pydicom.uid import JPEG2000Lossless

    path = write_dicom(tmp_path / "p.dcm", ramp(64, 64), bits=12)
    ds = pydicom.dcmread(path)
    ds.compress(JPEG2000Lossless)
    ds.save_as(tmp_path / "j2k.dcm")
    a, meta = read_dicom(tmp_path / "j2k.dcm")
    np.testing.assert_array_equal(a, read_dicom(path)[0])
    assert meta["transfer_syntax"] == str(JPEG2000Lossless)


def test_missing_plugin_is_named(tmp_path, monkeypatch):
    from pydicom.uid import JPEG2000Lossless

    path = write_dicom(tmp_path / "j.dcm", ramp(), bits=16)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    from pydicom.encaps import encapsulate

    ds.PixelData = encapsulate([b"\x00" * 64])
    ds.save_as(tmp_path / "j2k.dcm")

    class Fake:
        is_available = False
        missing_dependencies = ["pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-openjpeg>=2.0"]

    from pydicom import pixels as pixmod

    monkeypatch.setattr(pixmod, "get_decoder", lambda uid: Fake())
    with pytest.raises(ImageReadError, match="pylibjpeg-openjpeg"):
        read_dicom(tmp_path / "j2k.dcm")
    assert missing_plugin_for("1.2.840.10008.1.2.4.50") == "pylibjpeg-libjpeg"


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (b"hello, this is not an image at all" * 10, "not a DICOM"),
])
def test_bad_files(tmp_path, content, reason):
    p = tmp_path / "bad.dcm"
    p.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason):
        read_dicom(p)


def test_truncated_pixel_data(tmp_path):
    path = write_dicom(tmp_path / "t.dcm", ramp(64, 64), bits=16)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 2000])
    with pytest.raises(ImageReadError):
        read_dicom(path)


def test_no_pixel_data_and_rgb(tmp_path):
    path = write_dicom(tmp_path / "n.dcm", ramp(), bits=16)
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(tmp_path / "nopix.dcm")
    with pytest.raises(ImageReadError, match="no pixel data"):
        read_dicom(tmp_path / "nopix.dcm")
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "RGB"
    ds.save_as(tmp_path / "rgb.dcm")
    with pytest.raises(ImageReadError, match="photometric"):
        read_dicom(tmp_path / "rgb.dcm")
