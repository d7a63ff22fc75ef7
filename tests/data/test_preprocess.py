"""Preprocessing: segmentation, label removal, flip, crop, resize/pad; exact box/mask mapping."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mammosynth.data.adapters.mias import synthetic_film
from mammosynth.data.geometry import apply_transforms, map_box, map_mask, scaled_spacing, unmap_box
from mammosynth.data.preprocess import PreprocessConfig, chest_wall_side, preprocess

SMALL = PreprocessConfig(size=(128, 80), work_size=64)


def test_config_validation():
    assert PreprocessConfig().size == (512, 320) and PreprocessConfig().bits == 16
    with pytest.raises(ValueError, match="size"):
        PreprocessConfig(size=(4, 4))
    with pytest.raises(ValueError, match="bits"):
        PreprocessConfig(bits=12)
    with pytest.raises(Exception):
        PreprocessConfig().bits = 8  # frozen


@pytest.mark.parametrize("side", ["left", "right"])
def test_chest_wall_ends_on_left_and_label_removed(side):
    film = synthetic_film(256, side, seed=1)
    res = preprocess(film, None, SMALL)
    img = res.image
    assert img.dtype == np.uint16 and img.shape == (128, 80)
    assert res.info["flipped"] is (side == "right")
    assert res.laterality == ("R" if side == "left" else "L")
    assert res.info["laterality_source"] == "image"
    # chest wall: the first tissue column is tall; the far side is mostly empty
    cols = (img > 0).mean(axis=0)
    assert cols[:3].mean() > 0.7
    assert chest_wall_side(img > 0)[0] == "left"
    # the film label (value 240 -> ~61680) is gone: nothing that bright remains
    assert img.max() < 240 * 257 * 0.95


def test_label_used_when_image_ambiguous_and_conflict_recorded():
    flat = np.full((64, 64), 120, np.uint8)
    res = preprocess(flat, "L", PreprocessConfig(size=(64, 40), work_size=32))
    assert res.info["side_source"] == "label" and res.info["flipped"] is True and res.laterality == "L"
    film = synthetic_film(256, "left", seed=2)  # an R breast by the image
    res = preprocess(film, "L", SMALL)
    assert res.info.get("laterality_conflict") is True and res.info["flipped"] is False
    assert res.laterality == "L"


def test_steps_switch_off():
    film = synthetic_film(256, "right", seed=3)
    cfg = PreprocessConfig(size=(128, 80), work_size=64, segment=False, normalise_laterality=False,
                           crop=False, resize=False, remove_background=False)
    res = preprocess(film, None, cfg)
    np.testing.assert_array_equal(res.image, film.astype(np.uint16) * 257)
    assert res.transforms == [] and res.info["steps"] == []
    res = preprocess(film, None, PreprocessConfig(size=(128, 80), work_size=64, resize=False))
    assert res.image.shape != (128, 80) and "resize" not in res.info["steps"]


def test_no_breast_raises():
    with pytest.raises(ValueError, match="no breast"):
        preprocess(np.zeros((64, 64), np.uint16), None, PreprocessConfig(size=(64, 40), work_size=32))


def test_aspect_kept_padding_not_stretching():
    img = np.zeros((200, 100), np.uint16)
    img[:, :] = 30000
    cfg = PreprocessConfig(size=(100, 100), segment=False, remove_background=False, crop=False,
                           normalise_laterality=False)
    res = preprocess(img, "R", cfg)
    assert res.image.shape == (100, 100)
    assert (res.image[:, :50] > 0).all() and (res.image[:, 51:] == 0).all()  # left-aligned, padded right
    rs = [t for t in res.transforms if t["op"] == "resize"][0]
    assert rs["to"] == [100, 50]
    cfg = PreprocessConfig(size=(100, 100), segment=False, remove_background=False, crop=False)
    res = preprocess(np.full((100, 200), 30000, np.uint16), "R", cfg)
    assert res.info["pad"] == [25, 0] and (res.image[:25] == 0).all() and (res.image[25:75] > 0).all()


def test_bits_8_and_16_kept():
    film = synthetic_film(128, "left", seed=4)
    assert preprocess(film, None, PreprocessConfig(size=(64, 40), work_size=32, bits=8)).image.dtype == np.uint8
    img16 = (film.astype(np.uint16) * 257 + np.arange(128, dtype=np.uint16)[None, :] % 7)
    out = preprocess(img16, None, PreprocessConfig(size=(128, 128), work_size=32, crop=False)).image
    assert out.dtype == np.uint16 and len(np.unique(out)) > 256  # more than 8 bits of levels


def test_spacing_after_resize():
    tr = [{"op": "resize", "from": [1000, 500], "to": [250, 125]}]
    assert scaled_spacing((0.2, 0.2), tr) == (0.8, 0.8)
    assert scaled_spacing(None, tr) is None


def test_box_mapping_examples():
    tr = [{"op": "flip", "width": 100}, {"op": "crop", "box": [10, 20, 60, 80]},
          {"op": "resize", "from": [60, 50], "to": [30, 25]}, {"op": "pad", "offset": [5, 0], "size": [40, 25]}]
    # source box x 70..80 -> flipped 20..30 -> crop 10..20 -> /2 -> 5..10; y 30..40 -> 10..20 -> 5..10 -> +5
    assert map_box((70, 30, 80, 40), tr) == (5.0, 10.0, 10.0, 15.0)
    np.testing.assert_allclose(unmap_box(map_box((70, 30, 80, 40), tr), tr), (70, 30, 80, 40))
    assert map_box((0, 0, 5, 5), tr) is None  # outside the crop
    with pytest.raises(ValueError, match="unknown transform"):
        map_box((0, 0, 1, 1), [{"op": "rotate"}])


# -- property tests: boxes stay on the lesion under flip, crop, resize and pad ------------

@st.composite
def scenes(draw):
    h = draw(st.integers(40, 120))
    w = draw(st.integers(40, 120))
    bw, bh = draw(st.integers(3, w // 3)), draw(st.integers(3, h // 3))
    x0, y0 = draw(st.integers(0, w - bw)), draw(st.integers(0, h - bh))
    flip = draw(st.booleans())
    cx0, cy0 = draw(st.integers(0, max(0, x0 - 1))), draw(st.integers(0, max(0, y0 - 1)))
    cx1, cy1 = draw(st.integers(min(w, x0 + bw + 1), w)), draw(st.integers(min(h, y0 + bh + 1), h))
    th, tw = draw(st.integers(16, 96)), draw(st.integers(16, 96))
    return h, w, (x0, y0, x0 + bw, y0 + bh), flip, (cx0, cy0, cx1, cy1), (th, tw)


def _pipeline(h, w, box, flip, crop, target):
    tr = []
    cx0, cy0, cx1, cy1 = crop
    if flip:
        tr.append({"op": "flip", "width": w})
        cx0, cx1 = w - cx1, w - cx0
    tr.append({"op": "crop", "box": [cx0, cy0, cx1, cy1]})
    ch, cw = cy1 - cy0, cx1 - cx0
    s = min(target[0] / ch, target[1] / cw)
    nh, nw = min(target[0], max(1, round(ch * s))), min(target[1], max(1, round(cw * s)))
    tr.append({"op": "resize", "from": [ch, cw], "to": [nh, nw]})
    tr.append({"op": "pad", "offset": [(target[0] - nh) // 2, 0], "size": list(target)})
    return tr


@settings(max_examples=60, deadline=None)
@given(scenes())
def test_box_follows_lesion_mask(scene):
    h, w, box, flip, crop, target = scene
    tr = _pipeline(h, w, box, flip, crop, target)
    lesion = np.zeros((h, w), bool)
    x0, y0, x1, y1 = box
    lesion[y0:y1, x0:x1] = True
    mapped = map_box(box, tr)
    assert mapped is not None
    out = map_mask(lesion, tr)
    assert out.shape == tuple(target) and out.any()
    ys, xs = np.nonzero(out)
    # the mapped mask lies inside the mapped box (pixel-rounded), give or take one output pixel
    assert xs.min() >= np.floor(mapped[0]) - 1 and xs.max() + 1 <= np.ceil(mapped[2]) + 1
    assert ys.min() >= np.floor(mapped[1]) - 1 and ys.max() + 1 <= np.ceil(mapped[3]) + 1
    # and a box of 3+ output pixels is mostly lesion in the transformed intensity image
    img = apply_transforms(lesion.astype(np.float32), tr)
    if mapped[2] - mapped[0] >= 3 and mapped[3] - mapped[1] >= 3:
        bx0, by0, bx1, by1 = (int(round(v)) for v in mapped)
        assert img[by0:by1, bx0:bx1].mean() > 0.5
    np.testing.assert_allclose(unmap_box(mapped, tr), box, atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2 ** 16), st.sampled_from(["left", "right"]))
def test_preprocess_keeps_lesion_inside_box(seed, side):
    rng = np.random.default_rng(seed)
    s = 128
    lx = (0.6 if side == "right" else 0.4) * s + rng.uniform(-6, 6)
    ly = 0.45 * s + rng.uniform(-20, 20)
    r = 5
    film = synthetic_film(s, side, (lx, ly, r), seed=seed % 1000)
    res = preprocess(film, None, PreprocessConfig(size=(96, 64), work_size=64))
    box = map_box((lx - r, ly - r, lx + r, ly + r), res.transforms)
    assert box is not None
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    inside = res.image[y0:y1, x0:x1].astype(float).mean()
    ring = res.image[max(0, y0 - 6):y1 + 6, max(0, x0 - 6):x1 + 6].astype(float)
    assert inside > ring.mean()  # the bright lesion is where the box says


def test_view_from_image_calls_mlo_on_the_pectoral_muscle_and_never_cc(tmp_path):
    from mammosynth.data.ingest import IngestConfig, ingest
    from mammosynth.data.prepared import PreparedDataset
    from mammosynth.data.preprocess import PreprocessConfig, breast_masks, view_from_image
    from mammosynth.phantom import PhantomConfig, make_phantom_dataset

    ph = make_phantom_dataset(tmp_path / "ph", n=24, config=PhantomConfig(size=(128, 80)), workers=1)
    ingest(ph, "prepared", tmp_path / "prep", IngestConfig(preprocess=PreprocessConfig(size=(128, 80))))
    ds = PreparedDataset(tmp_path / "prep")  # chest wall on the left, as view_from_image expects
    imgs = np.stack([ds.image(r) for r in ds.records])
    calls = [view_from_image(i, m)[0] for i, m in zip(imgs, breast_masks(imgs))]
    views = [r.view for r in ds.records]
    assert not any(c == "MLO" for c, v in zip(calls, views) if v == "CC")  # no CC film called MLO
    mlo = [c for c, v in zip(calls, views) if v == "MLO"]
    assert mlo and sum(c == "MLO" for c in mlo) >= 0.7 * len(mlo)
    assert set(calls) <= {"MLO", None}


def test_zero_background_zeroes_the_air_keeps_the_breast_and_leaves_breastless_images_alone():
    from mammosynth.data.preprocess import breast_masks, zero_background

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :64]
    disc = (yy - 48) ** 2 + xx ** 2 < 40 ** 2  # a breast against the left edge
    film = np.where(disc, 0.5 + 0.1 * rng.random((96, 64)), 0.02 * rng.random((96, 64))).astype(np.float32)
    blank = np.full((96, 64), 0.01, np.float32)
    blank[40:43, 30:33] = 0.9  # a speck, far under min_breast_fraction: no breast
    stack = np.stack([film, blank])
    mask = breast_masks(stack[:1])[0]
    found = zero_background(stack)
    assert found.tolist() == [True, False]
    assert not stack[0][~mask].any() and np.array_equal(stack[0][mask], film[mask])
    assert disc[mask].mean() > 0.85 and mask[disc].mean() > 0.9  # the mask is the disc, give or take its rim
    assert np.array_equal(stack[1], blank)


def test_zero_background_refuses_what_it_cannot_zero_in_place():
    from mammosynth.data.preprocess import zero_background

    for bad in (np.zeros((2, 8, 8), np.uint16), np.zeros((8, 8), np.float32)):
        with pytest.raises(ValueError, match="float32 \\[B, H, W\\]"):
            zero_background(bad)
