"""evaluate --edits on removals, density edits and utility: each measure is computed, lands in
metrics.json and the report, and tells a good edit from a bad one.

The edits are made by test editors on phantom films (no diffusion model): the phantom renders
the same film with the lesion left out, or at another density, from the same seed, so a
"perfect" removal and a "true" density edit exist to compare with a failed one.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy import ndimage

from mammosynth.data.prepared import PreparedDataset
from mammosynth.edit import EditConfig, edit
from mammosynth.edit.downstream import edit_utility
from mammosynth.edit.editors import EditError, EditOutcome
from mammosynth.edit.validate import EditValidationConfig, edit_metrics, removal_detectability
from mammosynth.metrics.utility import ClassifierConfig
from mammosynth.phantom import PhantomConfig, make_phantom_dataset
from mammosynth.phantom.dataset import simulate_phantom
from mammosynth.report.evaluate import json_safe
from mammosynth.report.html import environment
from mammosynth.report.steps.edits import STEP, edits_card, edits_step

PHANTOM = PhantomConfig(size=(64, 40), findings="mass:0.5", density="A:0.5,D:0.5", split_fractions=(0.5, 0.0, 0.5))
_CNN = ClassifierConfig(input_size=(32, 20), min_steps=60, epochs=1, batch_size=16)
# patches of 16 px, at least 4 px: a phantom mass at 64x40 is 3-10 px wide and would be lost in
# the default 16 px minimum crop resized to 32
SMALL = EditValidationConfig(folds=2, n_boot=200, min_per_class=3, patch_px=16, min_patch_px=4,
                             patch_classifier=ClassifierConfig(input_size=(16, 16), min_steps=150, epochs=1,
                                                               batch_size=16),
                             presence_size=(32, 20), presence_classifier=_CNN, density_classifier=_CNN,
                             utility_classifier=dataclasses.replace(_CNN, min_steps=8), utility_seeds=1)
NO_UTILITY = dataclasses.replace(SMALL, utility=False)


class KeepRemover:
    """Drops the finding from the labels and leaves its pixels: a removal that failed."""

    operation, route = "remove", "test-keep"

    def settings(self):
        return {"route": self.route}

    def apply(self, req):
        k, rec = req.finding, req.record
        x0, y0, x1, y1 = (int(round(v)) for v in rec.findings[k].box)
        region = np.zeros(req.image.shape, bool)
        region[y0:y1, x0:x1] = True
        findings = tuple(f for j, f in enumerate(rec.findings) if j != k)
        masks = {j - (j > k): m for j, m in req.masks.items() if j != k}
        return EditOutcome(req.image.copy(), region, findings, masks, None, {"removed": rec.findings[k].to_dict()})


class TwinRemover(KeepRemover):
    """The phantom film rendered without its lesion, inside the (dilated) box: a perfect removal."""

    route = "test-twin"

    def apply(self, req):
        out = KeepRemover.apply(self, req)
        twin = simulate_phantom(req.record.generation["index"], dataclasses.replace(PHANTOM, findings="mass:0")).image
        region = ndimage.binary_dilation(out.edit_mask, iterations=2)
        image = req.image.copy()
        image[region] = twin[region]
        return dataclasses.replace(out, image=image, edit_mask=region)


class PhantomDensity:
    """``honest``: the same phantom film rendered at the target density (really a film of that
    class); otherwise the source film unchanged and relabelled (an edit that did nothing)."""

    operation = "density"

    def __init__(self, honest: bool):
        self.honest, self.route = honest, "test-honest" if honest else "test-noop"

    def settings(self):
        return {"route": self.route}

    def apply(self, req):
        rec = req.record
        if rec.density == req.density:
            raise EditError(f"{rec.image_id}: already density {req.density}")
        image = req.image.copy()
        if self.honest:
            config = dataclasses.replace(PHANTOM, density=f"{req.density}:1")
            image = simulate_phantom(rec.generation["index"], config).image
        return EditOutcome(image, np.ones(image.shape, bool), tuple(rec.findings), dict(req.masks), req.density,
                           {"from": rec.density, "to": req.density})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate-edits")
    ph = make_phantom_dataset(root / "ph", n=48, config=PHANTOM, workers=1)
    sets = {}
    with pytest.MonkeyPatch.context() as mp:  # module scope: the autouse home fixture has not run yet
        mp.setenv("MAMMOSYNTH_HOME", str(root / "home"))
        for name, editor, config in (("keep", KeepRemover(), EditConfig(remove="any")),
                                     ("twin", TwinRemover(), EditConfig(remove="any")),
                                     ("honest", PhantomDensity(True), EditConfig(density="D")),
                                     ("noop", PhantomDensity(False), EditConfig(density="D"))):
            edit(ph, root / name, config, editor=editor)
            sets[name] = PreparedDataset(root / name)
    real, train, test = (PreparedDataset(ph), PreparedDataset(f"{ph}:train"), PreparedDataset(f"{ph}:test"))
    return real, train, test, sets


def test_a_removal_that_leaves_the_lesion_in_place_is_detected(world, one_torch_thread):
    real, train, test, sets = world
    m = edit_metrics(sets["keep"], real, train, NO_UTILITY, test)
    rem = m["removal"]
    normals = sum(not r.findings for r in real.records)  # one patch per normal film, up to two per region
    assert rem["available"] and rem["n_removed"] == len(sets["keep"])
    assert rem["n_normal"] == min(normals, 2 * rem["n_removed"])
    assert rem["auc"]["ci_low"] > 0.75  # the lesion is still there: told from normal tissue
    rvn = m["lesion_presence"]["removed_vs_normal"]
    assert rvn["available"] and rvn["reference"].startswith("held-out")
    assert rvn["difference"]["ci_low"] <= rvn["difference"]["value"] <= rvn["difference"]["ci_high"]
    step = edits_step(json_safe(m))
    assert step.status == "warn" and any("removal regions vs normal tissue" in d for d in step.details)
    # the same measure on a perfect removal (the lesion-free twin's pixels) is far lower
    twin = removal_detectability(sets["twin"], real, SMALL)
    assert twin["available"] and twin["auc"]["value"] < rem["auc"]["value"] - 0.1


def test_the_flip_rate_reads_whether_density_edits_reach_the_target(world, one_torch_thread):
    real, train, test, sets = world
    honest = edit_metrics(sets["honest"], real, train, NO_UTILITY, test)["density"]
    noop = edit_metrics(sets["noop"], real, train, NO_UTILITY, test)["density"]
    fh, fn = honest["flip"], noop["flip"]
    assert fh["available"] and fh["classes"] == ["A", "D"] and fh["informative"]
    assert fh["real_accuracy"]["value"] >= 0.9  # the classifier's own reliability on held-out real films
    assert fh["flip_rate"]["value"] == 1.0 and fh["flip_rate"]["n"] == len(sets["honest"])
    assert fn["flip_rate"]["value"] <= 0.2
    assert edits_step(json_safe({"available": True, "operations": ["density"], "density": noop,
                                 "unchanged_outside": {"available": True, "n_images": 1}})).status == "warn"
    # percent dense area: up for a film truly rendered denser, unchanged for the no-op edit
    assert honest["pda_change"]["ci_low"] > 0 and honest["pda_change"]["fraction_toward_target"] > 0.5
    assert noop["pda_change"]["value"] == 0.0 and noop["breast_dice_min"] == 1.0


def test_utility_delta_auc_has_a_ci_and_is_deterministic(world, one_torch_thread):
    real, train, test, sets = world
    a = edit_utility(sets["keep"], train, test, SMALL)
    assert a["available"] and a["task"] == "finding" and a["n_test"] == len(test)
    # edited films of test-split women are not independent of the test films: left out of training
    assert a["n_edited_excluded"] > 0 and a["n_edited_used"] + a["n_edited_excluded"] == len(sets["keep"])
    assert a["n_train"]["edited"] == a["n_edited_used"]
    d = a["delta_auc"]
    assert d["available"] and d["ci_low"] <= d["value"] <= d["ci_high"]
    assert d["value"] == pytest.approx(a["regimes"]["real+edited"]["value"] - a["regimes"]["real"]["value"])
    assert edit_utility(sets["keep"], train, test, SMALL)["delta_auc"] == d


def test_the_new_measures_land_in_metrics_json_and_the_report(world, one_torch_thread):
    real, train, test, sets = world
    replaced: list[str] = []
    m = json_safe(edit_metrics(sets["keep"], real, train, SMALL, test), replaced=replaced)
    assert not replaced
    m = json.loads(json.dumps(m, allow_nan=False))
    assert m["utility"]["delta_auc"]["available"] and m["removal"]["auc"]["available"]
    html = environment().get_template("edits.html").render(s=m, m={"edits": m}, data={}, step={})
    assert "Removal region vs normal breast tissue" in html and "ΔAUC (b) − (a)" in html
    assert f"{m['removal']['auc']['value']:.3f}" in html
    assert "removal regions vs normal tissue AUC" in edits_card(m) and "ΔAUC" in edits_card(m)
    dens = json_safe(edit_metrics(sets["honest"], real, train, NO_UTILITY, test))
    html = environment().get_template("edits.html").render(s=dens, m={"edits": dens}, data={}, step={})
    assert "Flip rate" in html and f"{dens['density']['flip']['flip_rate']['value']:.3f}" in html
    assert edits_step(dens).step == STEP
