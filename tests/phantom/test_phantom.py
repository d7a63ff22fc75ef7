"""The procedural phantom: reproducibility, labels, masks, orientation, density, errors."""
from __future__ import annotations

import numpy as np
import pytest

from mammosynth.data.prepared import PreparedDataset
from mammosynth.phantom import (
    PhantomConfig,
    image_labels,
    make_phantom_dataset,
    parse_findings,
    percent_dense_area,
    render_phantom,
    simulate_phantom,
)

TINY = (64, 40)


def test_image_i_is_the_same_whatever_n(tmp_path):
    cfg = PhantomConfig(size=TINY, seed=7)
    small = PreparedDataset(make_phantom_dataset(tmp_path / "a", 3, cfg, workers=1))
    large = PreparedDataset(make_phantom_dataset(tmp_path / "b", 6, cfg, workers=1))
    assert len(small) == 3 and len(large) == 6
    by_id = {r.image_id: i for i, r in enumerate(large)}
    for i, rec in enumerate(small):
        j = by_id[rec.image_id]
        assert np.array_equal(small.image(i), large.image(j))
        assert rec.to_dict() == large[j].to_dict()
    image, record, _ = render_phantom(2, cfg)
    k = [r.image_id for r in small].index(record.image_id)
    assert np.array_equal(image, small.image(k))


def test_seed_changes_images_and_render_is_deterministic():
    cfg = PhantomConfig(size=TINY, seed=1)
    a, ra, _ = render_phantom(4, cfg)
    b, rb, _ = render_phantom(4, cfg)
    c, _, _ = render_phantom(4, PhantomConfig(size=TINY, seed=2))
    assert a.dtype == np.uint16 and a.shape == TINY
    assert np.array_equal(a, b) and ra == rb
    assert not np.array_equal(a, c)


def test_parallel_equals_serial(tmp_path):
    cfg = PhantomConfig(size=TINY, seed=3)
    serial = PreparedDataset(make_phantom_dataset(tmp_path / "s", 6, cfg, workers=1))
    parallel = PreparedDataset(make_phantom_dataset(tmp_path / "p", 6, cfg, workers=2))
    assert [r.sha256 for r in serial] == [r.sha256 for r in parallel]


def test_rerun_skips_finished_images_and_refuses_other_settings(tmp_path):
    cfg = PhantomConfig(size=TINY, seed=0)
    out = make_phantom_dataset(tmp_path / "d", 4, cfg, workers=1)
    first = out / "images" / "phantom-000000.png"
    stamp = first.stat().st_mtime_ns
    make_phantom_dataset(out, 6, cfg, workers=1)  # extends, does not rewrite
    assert first.stat().st_mtime_ns == stamp
    assert len(PreparedDataset(out)) == 6
    with pytest.raises(ValueError, match="other settings"):
        make_phantom_dataset(out, 6, PhantomConfig(size=TINY, seed=1), workers=1)


def test_label_proportions_follow_the_request():
    cfg = PhantomConfig(size=TINY, density="A:0.1,B:0.4,C:0.4,D:0.1",
                        findings="mass:0.2,calcification:0.1,distortion:0.05", views=("CC",))
    labs = [image_labels(i, cfg) for i in range(3000)]
    findings = [lab["finding"] for lab in labs]
    for kind, p in (("mass", 0.2), ("calcification", 0.1), ("distortion", 0.05), ("none", 0.65)):
        assert abs(findings.count(kind) / len(labs) - p) < 0.035, kind
    dens = [labs[i]["woman"].density for i in range(0, 3000, 2)]  # one row per woman
    for code, p in (("A", 0.1), ("B", 0.4), ("C", 0.4), ("D", 0.1)):
        assert abs(dens.count(code) / len(dens) - p) < 0.04, code
    # the two breasts of one woman share patient-level labels
    assert labs[0]["woman"] == labs[1]["woman"] and labs[0]["laterality"] != labs[1]["laterality"]


def test_no_findings_when_findings_empty():
    cfg = PhantomConfig(size=TINY, findings="")
    assert all(image_labels(i, cfg)["finding"] == "none" for i in range(200))


@pytest.mark.parametrize("kind", ["mass", "calcification", "distortion", "asymmetry"])
def test_every_view_and_laterality_with_masks_inside_the_breast(kind):
    cfg = PhantomConfig(size=(96, 60), seed=5, findings=f"{kind}:1")
    seen = set()
    for i in range(8):
        s = simulate_phantom(i, cfg)
        rec = s.record
        seen.add((rec.view, rec.laterality))
        assert rec.finding_kind == kind and len(rec.findings) == 1 and set(s.masks) == {0}
        mask = s.masks[0]
        assert mask.shape == s.image.shape and mask.any()
        assert not (mask & ~s.breast).any(), "lesion mask leaves the breast"
        x0, y0, x1, y1 = rec.findings[0].box
        rows, cols = np.nonzero(mask)
        assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        assert rec.findings[0].pathology in ("benign", "malignant")
        # radiological convention: R chest wall on the left edge, L on the right edge
        left, right = s.breast[:, :3].sum(), s.breast[:, -3:].sum()
        assert (left > right) if rec.laterality == "R" else (right > left)
        assert rec.pixel_spacing_mm == (cfg.spacing_mm, cfg.spacing_mm) and rec.bit_depth == 16
        assert rec.source_dataset == "phantom" and rec.split in ("train", "val", "test")
        assert rec.image_id == f"phantom-{i:06d}"
    assert seen == {("CC", "L"), ("CC", "R"), ("MLO", "L"), ("MLO", "R")}


def test_lesions_change_the_image():
    """The same image index with and without a finding differs only near the lesion."""
    with_calc = simulate_phantom(0, PhantomConfig(size=(128, 80), seed=2, findings="calcification:1"))
    mask = with_calc.masks[0]
    inside = with_calc.image[mask].astype(float).max()
    ring = with_calc.image[with_calc.breast & ~mask].astype(float)
    assert inside > np.percentile(ring, 99)  # calcium specks are the brightest things around


def test_focal_asymmetry_adds_density_only_around_itself():
    cfg = dict(size=(256, 160), seed=3, density="A:1")  # fatty: the patch shows
    plain = simulate_phantom(1, PhantomConfig(**cfg, findings=""))
    asym = simulate_phantom(1, PhantomConfig(**cfg, findings="asymmetry:1"))
    (f,) = asym.record.findings
    assert (f.kind, f.pathology, f.source_codes["subtype"]) == ("asymmetry", "benign", "focal")
    diff = asym.image.astype(float) - plain.image.astype(float)
    mask = asym.masks[0]
    assert diff[mask].mean() > 0.02 * 65535  # denser (brighter) inside
    far = np.ones_like(mask)
    x0, y0, x1, y1 = (int(v) for v in f.box)
    far[max(0, y0 - 40):y1 + 40, max(0, x0 - 40):x1 + 40] = False
    assert np.array_equal(diff[far], np.zeros(int(far.sum())))  # same woman, same noise elsewhere


def test_views_subset_and_pairing():
    cfg = PhantomConfig(size=TINY, views=("MLO",))
    recs = [render_phantom(i, cfg)[1] for i in range(4)]
    assert [r.view for r in recs] == ["MLO"] * 4
    assert [r.laterality for r in recs] == ["R", "L", "R", "L"]
    assert recs[0].patient_id == recs[1].patient_id != recs[2].patient_id


def test_density_is_recoverable_from_the_image():
    a_cfg = PhantomConfig(size=(128, 80), seed=11, density="A:1", findings="")
    d_cfg = PhantomConfig(size=(128, 80), seed=11, density="D:1", findings="")
    pda_a = [percent_dense_area(render_phantom(i, a_cfg)[0]) for i in range(0, 12, 2)]
    pda_d = [percent_dense_area(render_phantom(i, d_cfg)[0]) for i in range(0, 12, 2)]
    cut = 0.5 * (np.median(pda_a) + np.median(pda_d))
    correct = sum(p < cut for p in pda_a) + sum(p >= cut for p in pda_d)
    assert np.median(pda_d) - np.median(pda_a) > 0.3
    assert correct / 12 >= 0.9


def test_percent_dense_area_checks_its_inputs():
    img = np.zeros((10, 10), np.uint16)
    with pytest.raises(ValueError, match="empty"):
        percent_dense_area(img, np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match="shape"):
        percent_dense_area(img, np.ones((5, 5), bool))
    img[:, :5] = 65535
    assert percent_dense_area(img, np.ones((10, 10), bool)) == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs, message", [
    ({"density": "A:0.5,E:0.5"}, "unknown value 'E'"),
    ({"density": "A:0.5,B:0.4"}, "sum to 1"),
    ({"findings": "mass:0.7,calcification:0.5"}, "at most 1"),
    ({"findings": "lesion:0.1"}, "does not simulate"),
    ({"findings": "tumour:0.1"}, "unknown kind"),
    ({"findings": "mass:1.5"}, r"\[0, 1\]"),
    ({"size": (10, 20)}, "between 32 and 8192"),
    ({"size": (64,)}, "two integers"),
    ({"size": (64.5, 40)}, "two integers"),
    ({"views": ("CC", "XX")}, "views"),
    ({"seed": -1}, "seed"),
    ({"spiculated_fraction": 2.0}, "spiculated_fraction"),
])
def test_bad_config_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PhantomConfig(**kwargs)


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_bad_n_is_rejected(tmp_path, n):
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        make_phantom_dataset(tmp_path / "x", n, PhantomConfig(size=TINY))
    assert not (tmp_path / "x").exists()


def test_top_level_exports_and_numpy_arguments():
    import mammosynth

    assert mammosynth.PhantomConfig is PhantomConfig and mammosynth.make_phantom_dataset is make_phantom_dataset
    cfg = PhantomConfig(size=(np.int64(64), np.int64(40)), seed=np.int64(3))
    assert cfg.size == (64, 40) and type(cfg.seed) is int
    import json

    json.dumps(cfg.to_settings())


def test_parse_findings_accepts_aliases_and_mappings():
    assert parse_findings("calc:0.1, arch:0.2") == {"calcification": 0.1, "distortion": 0.2}
    with pytest.raises(ValueError, match="does not simulate 'unspecified'"):
        parse_findings("lesion:0.1")
    cfg = PhantomConfig(density={"A": 0.5, "D": 0.5}, findings={"mass": 0.3})
    assert cfg.density_probs == {"A": 0.5, "D": 0.5} and cfg.finding_probs == {"mass": 0.3}
