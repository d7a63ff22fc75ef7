"""Tests for mammosynth.metrics.equity: subgroups, gaps and harm flags."""
from __future__ import annotations

import numpy as np

from mammosynth.data.schema import Finding, ImageRecord
from mammosynth.metrics import equity


def _records(n):
    out = []
    for i in range(n):
        f = (Finding(kind=("mass", "calcification")[i % 4 // 2]),) if i % 2 else ()
        out.append(ImageRecord(image_id=f"r{i}", patient_id=f"p{i}", laterality="L", view=("CC", "MLO")[i % 3 == 0],
                               density="AB"[i % 5 == 0], findings=f, age=45 + (i % 30)))
    return out


def test_age_band():
    assert [equity.age_band(a) for a in (None, 49.9, 50, 65, 88)] == [None, "<50", "50-59", "60-69", "70+"]


def test_subgroups_finding_kind_keeps_negatives():
    recs = _records(40)
    y = np.array([int(bool(r.findings)) for r in recs])
    groups = equity.subgroups(recs, y, "finding")
    assert set(groups) == {"density", "view", "age", "finding"}
    mass = groups["finding"]["mass"]
    assert (mass & (y == 0)).sum() == 20 and (mass & (y == 1)).sum() == 10
    assert list(groups["density"]) == ["A", "B"]


def test_equity_flags_fail_only_on_the_holm_adjusted_p():
    d = {"available": True, "diff": -0.01, "auc_a": 0.80, "auc_b": 0.79, "p_value": 0.03, "p_holm": 0.3}
    res = {"tests": 10, "axes": {"view": {"subgroups": {"CC": {"delong": d}}, "gap": {}}}}
    flags = equity.equity_flags(res)
    assert flags["fail"] == [] and len(flags["warn"]) == 1 and "Holm" in flags["warn"][0]
    flags = equity.equity_flags({**res, "axes": {"view": {"subgroups": {"CC": {"delong": {**d, "p_holm": 0.04}}},
                                                          "gap": {}}}})
    assert len(flags["fail"]) == 1 and "over 10 subgroups" in flags["fail"][0]


def test_equity_flags_harm_and_unavailable_subgroups():
    rng = np.random.default_rng(0)
    recs = _records(200)
    y = np.array([int(bool(r.findings)) for r in recs])
    good = y + rng.normal(0, 0.5, len(y))
    dens_b = np.array([r.density == "B" for r in recs])
    worse = np.where(dens_b, rng.normal(0, 1, len(y)), good)  # synthetic data ruins density B only
    res = equity.equity_analysis(recs, y, {"real": good, "real+synthetic": worse}, "finding", n_boot=100)
    row = res["axes"]["density"]["subgroups"]["B"]
    assert row["delong"]["p_value"] < 0.05 and row["real+synthetic"]["value"] < row["real"]["value"]
    gap = res["axes"]["density"]["gap"]
    assert gap["real+synthetic"]["worst"] == "B" and gap["real+synthetic"]["value"] > gap["real"]["value"]
    flags = equity.equity_flags(res)
    assert any(s.startswith("density B") for s in flags["fail"])
    tests = [r["delong"] for a in res["axes"].values() for r in a["subgroups"].values() if r["delong"]["available"]]
    assert res["tests"] == len(tests) > 5
    assert all(d["p_value"] <= d["p_holm"] <= 1 for d in tests)
    assert row["delong"]["p_holm"] < 0.05  # the harm survives the adjustment
    # a subgroup without positives is reported with a reason, not NaN
    res2 = equity.equity_analysis(recs, np.where(dens_b, 0, y), {"real": good, "real+synthetic": good},
                                  "density", n_boot=50)
    b = res2["axes"]["density"]["subgroups"]["B"]
    assert b["real"]["value"] is None and "only one class" in b["real"]["reason"]
    assert equity.equity_flags(res2) == {"fail": [], "warn": []}
