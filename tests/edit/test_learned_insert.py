"""The learned insertion route (RePaint under finding=KIND) on a tiny, untrained UNet."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from mammosynth.cli import main
from mammosynth.data.prepared import PreparedDataset
from mammosynth.edit import EditConfig, EditRequest, edit, make_editor
from mammosynth.io.images import read_image
from mammosynth.phantom import PhantomConfig, make_phantom_dataset, simulate_phantom
from mammosynth.provenance import verify_set

RES = (32, 20)  # the tiny model's resolution (films are 128x80 and 256x160: edited through a resize)


def _save_run(path, condition):
    pytest.importorskip("diffusers")
    import torch

    from mammosynth.models.diffusion import DiffusionConfig, build_unet
    from mammosynth.sampling.diffusion import DiffusionPipeline

    torch.manual_seed(0)
    cfg = DiffusionConfig(resolution=RES, condition=condition, channels=(8, 8), attention_levels=0, norm_groups=4,
                          timesteps=100)
    DiffusionPipeline(build_unet(cfg), cfg, provenance={"run": path.name}).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A saved diffusion pipeline conditioned on density and finding (untrained: its output is noise,
    which is all these tests need: where pixels change, and the labels)."""
    return _save_run(tmp_path_factory.mktemp("run") / "tiny-diffusion", ("density", "finding"))


@pytest.fixture(scope="module")
def prior(run):
    from mammosynth.edit.learned import DiffusionPrior

    return DiffusionPrior.from_run(str(run), steps=4, resample=2)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    return make_phantom_dataset(tmp_path_factory.mktemp("ins") / "ph", n=5,
                                config=PhantomConfig(size=(128, 80), findings="mass:0.4"), workers=1)


def test_prior_takes_the_runs_guidance_unless_given(run, prior):
    from mammosynth.edit.learned import DiffusionPrior
    from mammosynth.sampling import load_pipeline

    assert prior.guidance == load_pipeline(run).guidance != 1.0
    assert DiffusionPrior.from_run(str(run), guidance=3.0).guidance == 3.0


def _inserter(prior, spec="mass", **kw):
    from mammosynth.edit.learned import DiffusionInserter

    return DiffusionInserter(prior, spec, **kw)


def test_learned_insert_adds_a_masked_finding_and_keeps_every_pixel_outside(prior, phantom, tmp_path,
                                                                           one_torch_thread):
    out = tmp_path / "ins"
    res = edit(phantom, out, EditConfig(insert="mass-spiculated", route="diffusion"),
               editor=_inserter(prior, "mass-spiculated"))
    src, ed = PreparedDataset(phantom), PreparedDataset(out)
    assert res.edited == len(src) == len(ed) and not res.rejected
    by_id = {r.image_id: r for r in src}
    for rec in ed:
        source = by_id[rec.generation["source_image_id"]]
        assert rec.generation["route"] == "diffusion" and rec.generation["operation"] == "insert"
        assert rec.generation["edit"]["steps"] == 4 and rec.generation["edit"]["kind"] == "mass-spiculated"
        assert len(rec.findings) == len(source.findings) + 1
        new, k = rec.findings[-1], len(rec.findings) - 1
        assert new.kind == "mass" and new.source_codes["subtype"] == "spiculated" and new.pathology == "malignant"
        assert "(diffusion)" in new.source_codes["inserted_by"]
        mask = ed.mask(rec, k)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert new.box == (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
        edit_mask = read_image(out / rec.generation["edit"]["edit_mask"])[0] > 0
        assert (edit_mask | ~mask).all()  # the lesion lies inside the repainted region
        d = ed.image(rec).astype(np.int64) - src.image(source)
        assert (d[~edit_mask] == 0).all()  # bit for bit outside
        assert np.abs(d[mask]).max() > 0  # and repainted inside
    assert verify_set(out).ok


def test_learned_insert_is_deterministic_under_a_seed(prior, phantom, tmp_path, one_torch_thread):
    def images(seed, name):
        edit(phantom, tmp_path / name, EditConfig(insert="mass", route="diffusion", seed=seed, limit=2),
             editor=_inserter(prior))
        ds = PreparedDataset(tmp_path / name)
        return [ds.image(r) for r in ds]

    a, b, c = images(1, "a"), images(1, "b"), images(2, "c")
    assert all((x == y).all() for x, y in zip(a, b))
    assert any((x != z).any() for x, z in zip(a, c))


def test_size_and_margin_follow_the_options(prior, one_torch_thread):
    from skimage.morphology import convex_hull_image

    s = simulate_phantom(0, PhantomConfig(size=(256, 160), findings="mass:0.0001"))

    def lesion(spec, **kw):
        out = _inserter(prior, spec, **kw).apply(EditRequest(s.image, s.record, {}, np.random.default_rng(3)))
        return out.masks[len(out.findings) - 1], out.findings[-1]

    small, f_small = lesion("mass-circumscribed", size_mm=12)
    large, f_large = lesion("mass-circumscribed", size_mm=24)
    assert f_small.source_codes["diameter_mm"] == 12 and f_large.source_codes["diameter_mm"] == 24
    assert 2.5 < large.sum() / small.sum() < 5.5  # area ~ diameter squared
    spic, f_spic = lesion("mass-spiculated", size_mm=12)
    assert f_spic.source_codes["core_diameter_mm"] == 12 and f_spic.source_codes["spicules"] >= 10

    def solidity(m):
        return m.sum() / convex_hull_image(m).sum()

    assert solidity(large) > 0.85 and solidity(spic) < solidity(large) - 0.1  # spicules: a ragged outline
    with pytest.raises(ValueError, match="--size sets a mass's diameter"):
        _inserter(prior, "calcification", size_mm=5)


def test_small_lesions_are_repainted_even_below_one_model_pixel(prior, one_torch_thread):
    s = simulate_phantom(1, PhantomConfig(size=(256, 160), findings="mass:0.0001"))
    out = _inserter(prior, "calcification").apply(EditRequest(s.image, s.record, {}, np.random.default_rng(0)))
    mask = out.masks[len(out.findings) - 1]
    d = out.image.astype(np.int64) - s.image
    assert (d[~out.edit_mask] == 0).all() and np.abs(d[mask]).max() > 0


def test_bad_sites_and_oversized_lesions_are_rejected_per_film(prior, phantom, tmp_path, one_torch_thread):
    src = PreparedDataset(phantom)
    sites = tmp_path / "sites.csv"
    with open(sites, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_id", "x0", "y0", "x1", "y1"])
        w.writerow([src[0].image_id, 0, 0, 4, 4])  # a corner: background
    res = edit(phantom, tmp_path / "ed", EditConfig(insert="mass", route="diffusion", sites=str(sites)),
               editor=_inserter(prior))
    assert res.edited == len(src) - 1 and len(res.rejected) == 1
    reason = res.rejected[0]["reason"]
    assert reason.startswith(src[0].image_id) and "outside the breast" in reason
    big = edit(phantom, tmp_path / "big", EditConfig(insert="mass", route="diffusion", size_mm=400, limit=2),
               editor=_inserter(prior, size_mm=400))
    assert big.edited == 0 and len(big.rejected) == 2
    assert all(r["reason"].startswith(r["source_file"]) and "larger than the breast" in r["reason"]
               for r in big.rejected)


def test_a_prior_without_a_finding_axis_is_a_clear_error(tmp_path, phantom, capsys):
    from mammosynth.edit.learned import DiffusionPrior

    run = _save_run(tmp_path / "density-only", ("density",))
    with pytest.raises(ValueError, match="density-only: the diffusion model is not conditioned on the finding"):
        _inserter(DiffusionPrior.from_run(str(run), steps=2))
    code = main(["edit", str(phantom), "--out", str(tmp_path / "x"), "--insert", "mass", "--route", "diffusion",
                 "--run", str(run)])
    err = capsys.readouterr().err
    assert code == 1 and "not conditioned on the finding" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()  # nothing written for a configuration no route can run


def test_learned_insert_without_a_run_says_so(phantom, tmp_path, capsys):
    with pytest.raises(ValueError, match="needs a trained diffusion model"):
        make_editor(EditConfig(insert="mass", route="diffusion"))
    code = main(["edit", str(phantom), "--out", str(tmp_path / "x"), "--insert", "mass", "--route", "diffusion"])
    assert code == 1 and "--run RUN" in capsys.readouterr().err


def test_cli_learned_insert_at_a_box_with_a_size(run, phantom, tmp_path, one_torch_thread):
    src = PreparedDataset(phantom)
    film = src[0]
    breast = src.image(film) > 0
    ys, xs = np.nonzero(breast)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    box = [cx - 12, cy - 12, cx + 12, cy + 12]
    out = tmp_path / "cli"
    code = main(["edit", str(phantom), "--out", str(out), "--insert", "mass-circumscribed:benign", "--route",
                 "diffusion", "--run", str(run), "--box", *map(str, box), "--size", "10", "--limit", "1",
                 "--seed", "4", "--guidance", "1"])
    assert code == 0
    (rec,) = PreparedDataset(out).records
    new = rec.findings[-1]
    x0, y0, x1, y1 = new.box
    assert box[0] <= x0 and box[1] <= y0 and x1 <= box[2] and y1 <= box[3]
    assert new.pathology == "benign" and new.source_codes["diameter_mm"] == 10
    e = rec.generation["edit"]
    assert e["route"] == "diffusion" and e["steps"] == 25 and e["requested_box"] == box and e["size_mm"] == 10
    assert e["guidance"] == 1.0  # --guidance given; the default is the run's own (below)
    edit_mask = read_image(out / e["edit_mask"])[0] > 0
    d = PreparedDataset(out).image(rec).astype(np.int64) - src.image(film)
    assert (d[~edit_mask] == 0).all() and (d[edit_mask] != 0).any()
    assert verify_set(out).ok


def test_removal_repaints_a_finding_smaller_than_one_model_pixel(prior, one_torch_thread):
    from mammosynth.data.schema import Finding
    from mammosynth.edit.learned import DiffusionRemover

    s = simulate_phantom(1, PhantomConfig(size=(256, 160), findings="mass:0.0001"))  # 8 film px per model px
    ys, xs = np.nonzero(s.breast)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    mask = np.zeros(s.image.shape, bool)
    mask[cy:cy + 2, cx:cx + 2] = True  # a 2x2 px speck
    rec = s.record.replace(findings=(Finding("calcification", box=(cx, cy, cx + 2, cy + 2)),))
    out = DiffusionRemover(prior, feather_px=1).apply(EditRequest(s.image, rec, {0: mask}, np.random.default_rng(0),
                                                                  finding=0))
    d = out.image.astype(np.int64) - s.image
    assert not out.findings and (d[~out.edit_mask] == 0).all() and np.abs(d[mask]).max() > 0
