"""evaluate --edits: the validation measures of an edited set and the registered check."""
from __future__ import annotations

import numpy as np
import pytest

from mammosynth.data.prepared import PreparedDataset
from mammosynth.edit import EditConfig, edit
from mammosynth.edit.validate import EditValidationConfig, edit_metrics
from mammosynth.io.images import read_image, write_image
from mammosynth.metrics.utility import ClassifierConfig
from mammosynth.phantom import PhantomConfig, make_phantom_dataset
from mammosynth.report.registry import EvalInputs, checks
from mammosynth.report.steps.edits import STEP, edits, edits_step

_SMALL = ClassifierConfig(input_size=(32, 20), min_steps=4, epochs=1, batch_size=8)
TINY = EditValidationConfig(folds=2, n_boot=50, min_per_class=3,
                            patch_classifier=ClassifierConfig(input_size=(32, 32), min_steps=4, epochs=1, batch_size=8),
                            presence_size=(32, 20), presence_classifier=_SMALL, density_classifier=_SMALL,
                            utility_classifier=_SMALL, utility_seeds=1)


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    ph = make_phantom_dataset(root / "ph", n=16, config=PhantomConfig(size=(64, 40), findings="mass:0.5"), workers=1)
    ed = root / "ed"
    with pytest.MonkeyPatch.context() as mp:  # module scope: the autouse home fixture has not run yet
        mp.setenv("MAMMOSYNTH_HOME", str(root / "home"))
        edit(ph, ed, EditConfig(insert="mass", normal_only=True))
    return ph, ed


def test_edit_metrics_measure_an_edited_set(sets, one_torch_thread):
    ph, ed = sets
    m = edit_metrics(ed, PreparedDataset(ph), PreparedDataset(f"{ph}:train"), TINY)
    un = m["unchanged_outside"]
    assert un["available"] and un["n_images"] == len(PreparedDataset(ed)) and un["max_abs_diff"] == 0
    assert all(r["max_abs_diff_inside"] > 0 for r in un["per_image"])
    ir = m["insertion_realism"]
    assert ir["available"] and ir["n_inserted"] == un["n_images"] and 0 <= ir["auc"]["value"] <= 1
    assert m["lesion_presence"]["available"] and m["lesion_presence"]["n"] == un["n_images"]
    assert not m["removal"]["available"] and not m["density"]["available"]
    assert edits_step(m).status in ("pass", "warn")


def test_a_pixel_changed_outside_the_mask_fails_the_step(sets, tmp_path):
    import shutil

    ph, ed = sets
    copy = tmp_path / "ed"
    shutil.copytree(ed, copy)
    rec = PreparedDataset(copy)[0]
    img = PreparedDataset(copy).image(rec)
    mask = read_image(copy / rec.generation["edit"]["edit_mask"])[0] > 0
    r, c = np.argwhere(~mask)[0]
    img[r, c] ^= 1
    write_image(copy / rec.file, img)
    m = edit_metrics(copy, PreparedDataset(ph), None, TINY)
    assert m["unchanged_outside"]["changed_outside"] == [rec.image_id]
    step = edits_step(m)
    assert step.status == "fail" and step.details == (rec.image_id,)


def test_the_check_is_registered_and_idle_without_edits(sets):
    assert STEP in [c.step for c in checks()]

    class Cfg:
        edits, seed, n_boot = None, 0, 100

    inputs = EvalInputs(real=None, synthetic=None, train=None, test=None, heldout=None, config=Cfg())
    out = edits(inputs)
    assert not out["available"] and "--edits" in out["reason"]
    assert edits_step(out).status == "not computed"


def test_evaluate_edits_from_the_cli_runs_the_edits_step_and_skips_near_copies(sets, tmp_path, monkeypatch,
                                                                                one_torch_thread):
    import json

    import mammosynth.metrics.fidelity as fidelity
    from mammosynth.cli import main

    def image_metrics(real, synthetic, train=None, heldout=None, config=None):
        pair = {"synthetic_id": synthetic[0].image_id, "train_id": "x", "distance": 0.0, "ssim": 1.0}
        return {"memorization": {"available": True, "reason": None, "n_flagged": 1, "flagged": [pair]},
                "timings_s": {}}

    monkeypatch.setattr(fidelity, "compute_image_metrics", image_metrics)
    ph, ed = sets
    out = tmp_path / "report"
    rc = main(["evaluate", "--real", str(ph), "--edits", str(ed), "--out", str(out), "--no-realism",
               "--seeds", "1", "--n-boot", "50", "--min-steps", "4", "--epochs", "1"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    steps = {s["step"]: s for s in m["verdict"]["steps"]}
    assert steps[STEP]["status"] in ("pass", "warn", "fail")
    assert m["edits"]["unchanged_outside"]["max_abs_diff"] == 0
    near = steps["Near-copies of training patients"]
    assert near["status"] == "not computed" and "edited real films" in near["summary"]
    assert STEP in (out / "report.html").read_text()


def test_edits_step_not_requested_does_not_demote_an_all_pass_verdict(monkeypatch):
    from types import SimpleNamespace

    import mammosynth.report.registry as registry
    from mammosynth.report.verdict import verdict

    real = [c for c in checks() if c.step == STEP][0]
    passing = SimpleNamespace(key="other", judge=lambda m: registry.Step("1. Other", "pass", "ok"))
    monkeypatch.setattr(registry, "checks", lambda: [passing, real])
    m = {"edits": {"available": False, "reason": "no edited set given", "not_requested": True}}
    v = verdict(m)
    assert v["overall"] == "pass"
    assert {s["step"]: s["status"] for s in v["steps"]}[STEP] == "not computed"  # still listed
    m["edits"] = {"available": False, "reason": "edited films not matched"}  # asked for, not done
    assert verdict(m)["overall"] == "warn"
