"""Tests for mammosynth.metrics.conditioning: axes detection and agreement with intended labels."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mammosynth.data.prepared import PreparedDataset
from mammosynth.data.schema import ImageRecord
from mammosynth.metrics import conditioning
from mammosynth.metrics.utility import ClassifierConfig

FAST = ClassifierConfig(input_size=(16, 16), epochs=8, min_steps=1, batch_size=16, lr=5e-3, channels=(8, 16))
LEVELS = {"A": 0.1, "B": 0.35, "C": 0.6, "D": 0.85}


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here trains small CNNs: one torch thread (see tests/conftest.py)."""


def _set(rng, n, generated_for=None):
    """Images whose brightness encodes density; ``generated_for`` maps true -> intended label."""
    recs, xs = [], []
    for i in range(n):
        d = "ABCD"[i % 4]
        intended = (generated_for or {}).get(d, d)
        gen = {"conditions": {"density": intended}} if generated_for is not None else None
        recs.append(ImageRecord(image_id=f"i{i}", patient_id=f"p{i}", laterality="L", view="CC",
                                density=intended if gen else d, generation=gen))
        xs.append(np.clip(LEVELS[d] + rng.normal(0, 0.05, (16, 16)), 0, 1).astype(np.float32))
    return recs, np.stack(xs)


def test_faithful_conditioning_passes_and_swapped_labels_fail():
    rng = np.random.default_rng(0)
    tr, trx = _set(rng, 64)
    te, tex = _set(rng, 32)
    good, goodx = _set(rng, 32, generated_for={})
    res = conditioning.conditioning_fidelity(tr, trx, te, tex, good, goodx, ["density"], FAST)
    d = res["density"]
    assert d["real_test"]["accuracy"] >= 0.9 and d["synthetic"]["accuracy"] >= 0.9
    assert d["status"] == "pass" and d["synthetic"]["kappa"] > 0.8
    assert np.trace(np.array(d["synthetic"]["confusion"])) == d["synthetic"]["n"] * d["synthetic"]["accuracy"]
    # the generator ignored the condition: images generated "for D" look like A, etc.
    bad, badx = _set(rng, 32, generated_for={"A": "D", "B": "C", "C": "B", "D": "A"})
    res = conditioning.conditioning_fidelity(tr, trx, te, tex, bad, badx, ["density"], FAST)
    assert res["density"]["status"] == "fail" and res["density"]["synthetic"]["accuracy"] < 0.3


def test_low_real_ceiling_is_a_warning_not_a_verdict():
    status, why = conditioning._verdict({"accuracy": 0.3, "kappa": 0.05}, {"accuracy": 0.1, "kappa": 0.0})
    assert status == "warn" and "not informative" in why
    assert conditioning._verdict({"accuracy": 0.9, "kappa": 0.8}, {"accuracy": 0.5, "kappa": 0.3})[0] == "fail"


def test_axis_with_one_real_class_is_not_computed():
    rng = np.random.default_rng(1)
    tr, trx = _set(rng, 16)
    res = conditioning.conditioning_fidelity(tr, trx, tr, trx, tr, trx, ["view"], FAST)
    assert res["view"]["available"] is False and "fewer than two view classes" in res["view"]["reason"]
    with pytest.raises(ValueError, match="unknown condition axis"):
        conditioning.conditioning_fidelity(tr, trx, tr, trx, tr, trx, ["birads"], FAST)


def test_conditioned_axes_sources(tiny_dataset_factory):
    root = tiny_dataset_factory(n=8, kind="synthetic")
    axes, src = conditioning.conditioned_axes(PreparedDataset(root))
    assert src.startswith("inferred") and axes == ["density", "finding", "view"]
    info = json.loads((root / "dataset.json").read_text())
    info["settings"] = {"generator": {"label_axes": {"view": ["CC", "MLO"], "density": list("ABCD")}}}
    (root / "dataset.json").write_text(json.dumps(info))
    axes, src = conditioning.conditioned_axes(PreparedDataset(root))
    assert axes == ["density", "view"] and "label_axes" in src


def test_intended_label_prefers_generation_conditions():
    r = ImageRecord(image_id="s", patient_id="p", laterality="R", view="CC", density="A",
                    generation={"conditions": {"density": "D"}})
    assert conditioning.intended_label(r, "density") == "D"
    assert conditioning.intended_label(r, "view") == "CC"
