"""One decoded-size limit for every reader (PNG/JPEG/PGM/TIFF/DICOM), checked from the
header before any pixel is decoded; palette images converted (grey) or refused (colour)."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mammosynth.io import images as images_mod
from mammosynth.io.images import ImageReadError, read_image


def tiff_bomb(path, w=9000, h=9000):
    """A ~1 KB deflate TIFF whose header claims w x h 8-bit pixels (all zero)."""
    data = zlib.compress(b"\0" * (w * h), 9) if w * h <= 100_000_000 else zlib.compress(b"\0" * 1000)
    tags = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 8), (262, 3, 1, 1),
            (273, 4, 1, 0), (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, len(data))]
    ifd_off = 8
    data_off = ifd_off + 2 + 12 * len(tags) + 4
    out = bytearray(b"II*\0" + struct.pack("<I", ifd_off) + struct.pack("<H", len(tags)))
    for tag, typ, count, value in tags:
        value = data_off if tag == 273 else value
        out += struct.pack("<HHI", tag, typ, count) + (struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value))
    out += struct.pack("<I", 0) + data
    path.write_bytes(bytes(out))
    return path


def test_tiff_bomb_refused_before_decoding(tmp_path):
    p = tiff_bomb(tmp_path / "bomb.tif")
    assert p.stat().st_size < 200_000
    with pytest.raises(ImageReadError, match=r"exceeds the limit of [\d,]+ pixels"):
        read_image(p)


@pytest.mark.parametrize("suffix", [".png", ".pgm", ".tif", ".jpg"])
def test_one_limit_for_every_raster_reader(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(images_mod, "MAX_PIXELS", 1000)
    p = tmp_path / f"a{suffix}"
    if suffix == ".tif":
        import tifffile

        tifffile.imwrite(p, np.zeros((40, 40), np.uint8))
    else:
        Image.fromarray(np.zeros((40, 40), np.uint8)).save(p)
    with pytest.raises(ImageReadError, match="1,600 pixels exceeds the limit of 1,000 pixels"):
        read_image(p)


def test_dicom_limit_from_header(tmp_path, monkeypatch):
    from test_dicom import write_dicom

    p = write_dicom(tmp_path / "a.dcm", np.zeros((40, 40), np.uint16))
    monkeypatch.setattr(images_mod, "MAX_PIXELS", 1000)
    with pytest.raises(ImageReadError, match="exceeds the limit of 1,000 pixels"):
        read_image(p)


def test_grey_palette_tiff_converted_colour_palette_refused(tmp_path):
    import tifffile

    idx = (np.arange(64 * 40).reshape(64, 40) % 4).astype(np.uint8)
    grey = np.zeros((3, 256), np.uint16)
    grey[:, :4] = np.array([0, 100, 200, 255]) * 257
    tifffile.imwrite(tmp_path / "g.tif", idx, photometric="palette", colormap=grey)
    arr, _ = read_image(tmp_path / "g.tif")
    assert set(np.unique(arr)) == {0, 100, 200, 255}  # grey levels, not the raw indices 0..3
    colour = grey.copy()
    colour[0, 1] = 65535
    tifffile.imwrite(tmp_path / "c.tif", idx, photometric="palette", colormap=colour)
    with pytest.raises(ImageReadError, match="colour palette"):
        read_image(tmp_path / "c.tif")


def test_grey_palette_png_converted_colour_palette_refused(tmp_path):
    idx = (np.arange(64 * 40).reshape(64, 40) % 4).astype(np.uint8)
    im = Image.fromarray(idx, mode="P")
    im.putpalette([v for g in (0, 100, 200, 255) for v in (g, g, g)])
    im.save(tmp_path / "g.png")
    arr, _ = read_image(tmp_path / "g.png")
    assert set(np.unique(arr)) == {0, 100, 200, 255}
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    im.save(tmp_path / "c.png")
    with pytest.raises(ImageReadError, match="colour palette"):
        read_image(tmp_path / "c.png")


def test_detect_reports_a_bomb_and_goes_on(tmp_path):
    """``detect`` on a TIFF bomb: an error line for it, results for the others (no traceback)."""
    from mammosynth.provenance.detect import detect_paths

    tiff_bomb(tmp_path / "a_bomb.tif")
    Image.fromarray(np.full((64, 40), 120, np.uint8)).save(tmp_path / "b_ok.png")
    res = {r["path"].rsplit("/", 1)[-1]: r for r in detect_paths([tmp_path], crops=False)}
    assert "exceeds the limit" in res["a_bomb.tif"]["error"]
    assert res["b_ok.png"]["synthetic"] is False and "error" not in res["b_ok.png"]
