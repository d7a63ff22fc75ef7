"""Raster reader: PNG/JPEG/TIFF/PGM at 8 and 16 bit; bad files raise ImageReadError."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mammosynth.io.images import ImageReadError, read_image


def grad(dtype, h=20, w=30):
    top = 255 if dtype == np.uint8 else 65535
    return (np.arange(h * w).reshape(h, w) * top // (h * w - 1)).astype(dtype)


@pytest.mark.parametrize("suffix,dtype", [(".png", np.uint8), (".png", np.uint16), (".pgm", np.uint8),
                                          (".pgm", np.uint16), (".tif", np.uint8), (".tif", np.uint16)])
def test_lossless_round_trip(tmp_path, suffix, dtype):
    arr = grad(dtype)
    p = tmp_path / f"a{suffix}"
    if suffix == ".tif":
        import tifffile

        tifffile.imwrite(p, arr)
    elif dtype == np.uint16 and suffix == ".png":
        Image.fromarray(arr).save(p)
    elif dtype == np.uint16:
        # 16-bit PGM written by hand (P5, maxval 65535, big-endian)
        p.write_bytes(b"P5\n30 20\n65535\n" + arr.astype(">u2").tobytes())
    else:
        Image.fromarray(arr).save(p)
    out, meta = read_image(p)
    assert out.dtype == dtype and meta["bit_depth"] == (8 if dtype == np.uint8 else 16)
    np.testing.assert_array_equal(out, arr)


def test_jpeg_8bit(tmp_path):
    p = tmp_path / "a.jpg"
    Image.fromarray(grad(np.uint8)).save(p, quality=95)
    out, meta = read_image(p)
    assert out.dtype == np.uint8 and meta["bit_depth"] == 8
    assert np.abs(out.astype(int) - grad(np.uint8).astype(int)).mean() < 3


def test_grey_rgb_accepted_colour_rejected(tmp_path):
    g = grad(np.uint8)
    Image.fromarray(np.stack([g, g, g], -1)).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png")[0].ndim == 2
    c = np.stack([g, g[::-1], g], -1)
    Image.fromarray(c).save(tmp_path / "c.png")
    with pytest.raises(ImageReadError, match="colour"):
        read_image(tmp_path / "c.png")


def test_wrong_bit_depth_rejected(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "f.tif", np.zeros((8, 8), np.float32))
    with pytest.raises(ImageReadError, match="pixel type"):
        read_image(tmp_path / "f.tif")
    Image.fromarray(np.zeros((8, 8), bool)).save(tmp_path / "b.png")
    with pytest.raises(ImageReadError, match="1-bit"):
        read_image(tmp_path / "b.png")


def test_truncated_and_garbage(tmp_path):
    p = tmp_path / "t.png"
    Image.fromarray(grad(np.uint16, 64, 64)).save(p)
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(ImageReadError, match="t.png"):
        read_image(p)
    g = tmp_path / "g.jpg"
    g.write_text("not a jpeg")
    with pytest.raises(ImageReadError, match="cannot decode"):
        read_image(g)
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "missing.png")
