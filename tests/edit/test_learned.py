"""The learned routes on a tiny, untrained UNet: the edit stays inside its mask, labels follow."""
from __future__ import annotations

import numpy as np
import pytest

from mammosynth.data.prepared import PreparedDataset
from mammosynth.edit import EditConfig, edit
from mammosynth.edit.learned import DiffusionDensity, DiffusionPrior, DiffusionRemover
from mammosynth.io.images import read_image
from mammosynth.phantom import PhantomConfig, make_phantom_dataset


@pytest.fixture(scope="module")
def prior():
    diffusers = pytest.importorskip("diffusers")
    import torch

    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=(32, 16), in_channels=1, out_channels=1, layers_per_block=1,
                                 block_out_channels=(8, 8), down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
                                 num_class_embeds=5).eval()
    axes = {"density": ("A", "B", "C", "D")}
    return DiffusionPrior(unet, lambda: diffusers.DDIMScheduler(num_train_timesteps=100),
                          lambda labels: torch.tensor([axes["density"].index(labels["density"])
                                                       if labels["density"] in axes["density"] else 4]),
                          (32, 16), axes, steps=4, resample=2)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    return make_phantom_dataset(tmp_path_factory.mktemp("learned") / "ph", n=6,
                                config=PhantomConfig(size=(64, 40), findings="mass:0.5"), workers=1)


def _check_outside(out, phantom):
    src = {r.image_id: r for r in PreparedDataset(phantom)}
    ed = PreparedDataset(out)
    for rec in ed:
        mask = read_image(out / rec.generation["edit"]["edit_mask"])[0] > 0
        d = ed.image(rec).astype(np.int64) - PreparedDataset(phantom).image(src[rec.generation["source_image_id"]])
        assert (d[~mask] == 0).all() and mask.any()
    return ed


def test_removal_repaints_only_the_finding_and_drops_it(prior, phantom, tmp_path, one_torch_thread):
    res = edit(phantom, tmp_path / "rem", EditConfig(remove="mass", route="diffusion"), editor=DiffusionRemover(prior))
    assert res.edited >= 1
    ed = _check_outside(tmp_path / "rem", phantom)
    assert all(not r.findings for r in ed)


def test_density_sdedit_changes_the_label_and_keeps_the_outline(prior, phantom, tmp_path, one_torch_thread):
    res = edit(phantom, tmp_path / "den", EditConfig(density="D", route="diffusion", strength=0.5),
               editor=DiffusionDensity(prior))
    assert res.edited == 6
    ed = _check_outside(tmp_path / "den", phantom)
    assert {r.density for r in ed} == {"D"}
    for rec in ed:  # the source's lesions are composited back: outside the edit mask
        for k in range(len(rec.findings)):
            m = ed.mask(rec, k)
            edit_mask = read_image(tmp_path / "den" / rec.generation["edit"]["edit_mask"])[0] > 0
            assert not (m & edit_mask).any()


def test_density_measures_report_the_outline_kept(prior, phantom, tmp_path, one_torch_thread):
    from mammosynth.edit.validate import edit_metrics

    edit(phantom, tmp_path / "den", EditConfig(density="A", route="diffusion", strength=0.3, limit=3),
         editor=DiffusionDensity(prior))
    m = edit_metrics(tmp_path / "den", PreparedDataset(phantom))
    d = m["density"]
    assert d["available"] and d["n"] == 3 and 0 <= d["breast_dice_min"] <= 1
    assert m["unchanged_outside"]["max_abs_diff"] == 0 and "insertion_realism" not in m
    from mammosynth.report.evaluate import json_safe
    from mammosynth.report.html import environment
    from mammosynth.report.steps.edits import edits_step

    assert edits_step(m).status in ("pass", "warn")
    html = environment().get_template("edits.html").render(s=json_safe(m), m={}, data={}, step={})
    assert "breast-mask Dice" in html and "Unchanged outside the edit mask" in html


def test_guidance_mixes_conditional_and_unconditional_predictions(prior, phantom, tmp_path, one_torch_thread):
    import dataclasses

    import torch

    null = torch.tensor([4])
    x, t, c = torch.randn(1, 1, 32, 16), torch.tensor(50), torch.tensor([3])
    with torch.no_grad():
        cond = prior.unet(x, t, class_labels=c).sample
        unc = prior.unet(x, t, class_labels=null).sample
    assert not torch.allclose(cond, unc)  # the class matters to this UNet
    guided = dataclasses.replace(prior, guidance=2.0, null=null)
    assert torch.allclose(guided._eps(x, t, c), unc + 2.0 * (cond - unc), atol=1e-5)
    assert torch.allclose(prior._eps(x, t, c), cond)  # guidance 1: one conditional pass
    with pytest.raises(ValueError, match="unconditional class"):
        dataclasses.replace(prior, guidance=2.0)
    # an edit records the guidance it ran with, and it changes the pixels
    src = PreparedDataset(phantom)
    cfg = EditConfig(density="D", route="diffusion", limit=2)
    edit(phantom, tmp_path / "g1", cfg, editor=DiffusionDensity(prior))
    edit(phantom, tmp_path / "g2", cfg, editor=DiffusionDensity(guided))
    a, b = PreparedDataset(tmp_path / "g1"), PreparedDataset(tmp_path / "g2")
    assert b[0].generation["edit"]["guidance"] == 2.0 and a[0].generation["edit"]["guidance"] == 1.0
    assert not np.array_equal(a.image(0), b.image(0)) and len(src) == 6
    with pytest.raises(ValueError, match="--guidance"):
        EditConfig(density="D", guidance=-1.0)


def test_density_edit_keeps_the_pectoral_muscle(prior, tmp_path, one_torch_thread):
    from mammosynth.edit.film import estimate_film

    ph = make_phantom_dataset(tmp_path / "ph", n=4, config=PhantomConfig(size=(128, 80)), workers=1)
    src = PreparedDataset(ph)
    pect = {r.image_id: estimate_film(src.image(r), r).pectoral for r in src}
    assert sum(m.sum() for m in pect.values()) > 100  # MLO phantoms have one: the test can fail
    edit(ph, tmp_path / "den", EditConfig(density="D", route="diffusion"), editor=DiffusionDensity(prior))
    ed = PreparedDataset(tmp_path / "den")
    for rec in ed:
        m = read_image(tmp_path / "den" / rec.generation["edit"]["edit_mask"])[0] > 0
        assert not (m & pect[rec.generation["source_image_id"]]).any() and m.any()
        assert rec.generation["edit"]["keep_pectoral"] is True
    kept = DiffusionDensity(prior, keep_pectoral=False)
    edit(ph, tmp_path / "all", EditConfig(density="D", route="diffusion"), editor=kept)
    masks = [read_image(tmp_path / "all" / r.generation["edit"]["edit_mask"])[0] > 0 for r in PreparedDataset(tmp_path / "all")]
    assert any((m & pect[r.generation["source_image_id"]]).any() for m, r in zip(masks, PreparedDataset(tmp_path / "all")))


def test_before_after_sheet_of_removals_and_density_edits(prior, phantom, tmp_path, one_torch_thread):
    from mammosynth.edit.sheet import _caption, before_after_sheet

    edit(phantom, tmp_path / "rem", EditConfig(remove="mass", route="diffusion"), editor=DiffusionRemover(prior))
    edit(phantom, tmp_path / "den", EditConfig(density="D", route="diffusion", limit=2), editor=DiffusionDensity(prior))
    src = {r.image_id: r for r in PreparedDataset(phantom)}
    for name, expect in (("rem", "remove: mass"), ("den", "density: {} -> D")):
        ed = PreparedDataset(tmp_path / name)
        rec = ed[0]
        assert _caption(rec) == expect.format(src[rec.generation["source_image_id"]].density)
        out = before_after_sheet(ed, phantom, tmp_path / f"{name}.png", n=2, columns=2)  # no finding left: no crash
        assert out.is_file()
