"""Watermark round trips under the attacks the benchmark reports, and no false positives."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mammosynth.provenance import image_payload, mark_image
from mammosynth.provenance.watermark import (WatermarkConfig, bit_accuracy, detect_watermark, embed_watermark,
                                             make_payload, psnr, split_payload)

from prov_helpers import breast_image, synthetic_record

PAYLOAD = make_payload("ckpt\x00run", 12345)


def to8(img: np.ndarray) -> np.ndarray:
    return ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(to8(img) if img.dtype == np.uint16 else img).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf))


def half_and_back(img: np.ndarray) -> np.ndarray:
    from skimage.transform import resize

    full = 65535.0 if img.dtype == np.uint16 else 255.0
    h, w = img.shape
    small = resize(img / full, (h // 2, w // 2), order=1, anti_aliasing=True)
    return np.rint(resize(small, (h, w), order=1) * full).astype(img.dtype)


@pytest.fixture(scope="module")
def marked16():
    img = breast_image(128, 80, seed=3)
    return img, embed_watermark(img, PAYLOAD)


def test_payload_layout():
    p = make_payload("run-a", 7)
    run32, idx = split_payload(p)
    assert idx == 7 and len(run32) == 8
    assert split_payload(make_payload("run-b", 7))[0] != run32
    assert make_payload("run-a", "img-x") != make_payload("run-a", "img-y")
    with pytest.raises(ValueError, match="64-bit"):
        embed_watermark(breast_image(), 1 << 64)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8])
def test_round_trip_is_invisible_and_exact(dtype):
    img = breast_image(128, 80, seed=1, dtype=dtype)
    marked = embed_watermark(img, PAYLOAD)
    assert marked.dtype == dtype and marked.shape == img.shape
    assert psnr(img, marked) >= 40.0
    assert not np.array_equal(img, marked)
    det = detect_watermark(marked)
    assert det.found and det.payload == PAYLOAD and det.bit_accuracy == 1.0
    assert det.p_value < 1e-5


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8])
def test_a_removed_background_stays_exactly_zero(dtype):
    # generate sets the air to exactly 0, as ingest does for real films; radiomics (FRD)
    # reads any grey level the mark left there as a difference from every real film
    img = breast_image(128, 80, seed=2, dtype=dtype)
    air = img == 0
    assert air.mean() > 0.1  # the fixture has a removed background to keep
    marked = embed_watermark(img, PAYLOAD)
    assert not marked[air].any()
    assert not np.array_equal(marked[~air], img[~air])  # the tissue carries the mark
    det = detect_watermark(marked)
    assert det.found and det.payload == PAYLOAD


def test_an_all_black_image_comes_back_unchanged():
    img = np.zeros((128, 80), np.uint16)
    assert np.array_equal(embed_watermark(img, PAYLOAD), img)


@pytest.mark.parametrize("attack", ["jpeg90", "jpeg70", "jpeg50", "resize", "to8", "crop_right", "crop_left",
                                    "crop_top", "crop_bottom"])
def test_survives_attacks(marked16, attack):
    _, marked = marked16
    h, w = marked.shape
    attacked = {
        "jpeg90": lambda: jpeg(marked, 90),
        "jpeg70": lambda: jpeg(marked, 70),
        "jpeg50": lambda: jpeg(marked, 50),
        "resize": lambda: half_and_back(marked),
        "to8": lambda: to8(marked),
        "crop_right": lambda: marked[:, : w - round(0.05 * w)],
        "crop_left": lambda: marked[:, round(0.05 * w):],  # the chest-wall side, through tissue
        "crop_top": lambda: marked[round(0.05 * h):],
        "crop_bottom": lambda: marked[: h - round(0.05 * h)],
    }[attack]()
    det = detect_watermark(attacked)
    assert det.found, attack
    assert det.payload == PAYLOAD
    if attack.startswith("crop"):
        assert det.crop == (attack[5:], 0.05)
    else:
        assert bit_accuracy(attacked, PAYLOAD) >= 0.95


def test_unmarked_images_are_not_detected():
    rng = np.random.default_rng(0)
    images = [breast_image(128, 80, seed=s) for s in range(100, 104)]
    images += [breast_image(96, 64, seed=5, dtype=np.uint8), rng.integers(0, 65535, (64, 48), dtype=np.uint16), breast_image(32, 32, seed=6),
               np.zeros((64, 64), np.uint16)]
    for img in images:
        assert not detect_watermark(img).found


def test_wrong_key_does_not_detect(marked16):
    _, marked = marked16
    assert not detect_watermark(marked, WatermarkConfig(key="another key"), crops=False).found


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="uint8 or uint16"):
        embed_watermark(np.zeros((64, 64), np.float32), PAYLOAD)
    with pytest.raises(ValueError, match="2-D"):
        detect_watermark(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="too small"):
        detect_watermark(np.zeros((31, 64), np.uint8))


def test_tiny_images_are_text_marked_only(monkeypatch):
    import mammosynth.provenance as prov

    monkeypatch.setattr(prov, "_warned_small", False)
    rec = synthetic_record(0)
    img = breast_image(16, 16)
    with pytest.warns(UserWarning, match="not watermarked"):
        out, text = mark_image(img, rec, rec.generation)
    assert np.array_equal(out, img) and text["mammosynth:synthetic"] == "true"
    assert "smaller than 32" in text["mammosynth:provenance"]


def test_mark_image_contract():
    rec = synthetic_record(3)
    img = breast_image(seed=9)
    marked, text = mark_image(img, rec, rec.generation)
    assert marked.dtype == np.uint16 and psnr(img, marked) >= 40
    assert text["mammosynth:synthetic"] == "true"
    assert "SYNTHETIC" in text["Description"]
    import json

    prov = json.loads(text["mammosynth:provenance"])
    assert prov["checkpoint_sha256"] == rec.generation["checkpoint_sha256"]
    assert prov["seed"] == 7 and prov["labels"]["density"] == "B" and prov["labels"]["finding"] == "mass"
    det = detect_watermark(marked)
    assert det.found and f"{det.payload:016x}" == prov["watermark"]["payload"]
    assert det.payload == image_payload(rec.generation) and det.payload & 0xFFFFFFFF == 3


@pytest.mark.parametrize("shape,out,order,aa", [((128, 80), (64, 64), 1, True), ((37, 90), (64, 64), 1, True),
                                                ((64, 64), (128, 80), 3, False), ((64, 64), (20, 300), 3, False)])
def test_matrix_resize_equals_skimage(shape, out, order, aa):
    """The watermark's separable matrix resize is skimage's resize (clipping included)."""
    from skimage.transform import resize

    from mammosynth.provenance.watermark import _resize

    x = np.random.default_rng(0).normal(size=shape)
    ref = resize(x, out, order=order, anti_aliasing=aa, mode="edge")
    np.testing.assert_allclose(_resize(x, out, order, aa), ref, atol=1e-12)
