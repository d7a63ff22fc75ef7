"""Tests of the verdict rules (mammosynth.report.verdict)."""
from __future__ import annotations

from mammosynth.report import verdict as V


def _auc(v, lo, hi, label="x"):
    return {"value": v, "ci_low": lo, "ci_high": hi, "available": True, "reason": None, "label": label}


def _util(diff, p, syn_lo=0.6):
    return {"available": True, "regimes": {"real": _auc(0.8, 0.7, 0.9), "real+synthetic": _auc(0.8 + diff, 0.7, 0.9),
                                           "synthetic": _auc(0.7, syn_lo, 0.8)},
            "paired_b_vs_a": {"available": True, "diff": diff, "p_value": p, "ci_low": diff - 0.05,
                              "ci_high": diff + 0.05}}


def test_utility_rules():
    assert V.utility_step(_util(-0.10, 0.001)).status == "fail"
    assert V.utility_step(_util(-0.05, 0.3)).status == "warn"
    assert V.utility_step(_util(0.01, 0.6, syn_lo=0.45)).status == "warn"  # synthetic alone ~ chance
    ok = V.utility_step(_util(0.06, 0.01))
    assert ok.status == "pass" and "significant improvement" in ok.summary
    weak = _util(0.01, 0.6)
    weak["regimes"]["real"] = _auc(0.55, 0.45, 0.65)
    assert V.utility_step(weak).status == "warn" and "does not learn" in V.utility_step(weak).summary
    na = V.utility_step({"available": False, "reason": "no test split"})
    assert na.status == "not computed" and na.summary == "no test split"


def test_memorisation_diversity_and_population_rules():
    assert V.memorisation_step({"memorization": {"available": True, "n_flagged": 2, "flagged": []}}).status == "fail"
    assert V.memorisation_step({"memorization": {"available": True, "n_flagged": 0}}).status == "pass"
    assert V.memorisation_step({"memorization": {"available": False, "reason": "no train"}}).summary == "no train"
    assert V.diversity_step({"diversity": {"mode_collapse": True}}).status == "fail"
    pop = V.population_step({"labels": {"density": {"tv": 0.3}}, "intensity": {"distances": {"ks": 0.05}}})
    assert pop.status == "fail" and any("0.300" in d for d in pop.details)
    assert V.population_step({"labels": {"density": {"tv": 0.15}}}).status == "warn"


def test_overall_is_worst_and_not_computed_downgrades_pass():
    gov = {"real": {"source": {"name": "r"}, "content_hash": "h"}, "model": {"checkpoint_sha256": "c" * 64, "run": "r1"}}
    image = {"labels": {"density": {"tv": 0.01}}, "memorization": {"available": True, "n_flagged": 0},
             "diversity": {"mode_collapse": False}}
    cond = {"available": True, "axes": {"density": {"available": True, "status": "pass", "summary": "ok"}}}
    m = {"governance": gov, "image_metrics": image, "conditioning": cond, "utility": _util(0.0, 1.0),
         "equity": {"available": True, "axes": {}, "min_per_class": 5}}
    v = V.verdict(m)
    statuses = {s["step"]: s["status"] for s in v["steps"]}
    assert [statuses[k] for k in ("1. Governance record", "2. Comparison with the real population",
                                  "2b. Conditioning fidelity", "3. Utility on independent real test images")] == ["pass"] * 4
    assert v["overall"] == "warn"  # equity could not be computed
    m["image_metrics"]["memorization"]["n_flagged"] = 1
    assert V.verdict(m)["overall"] == "fail"
    gov["model"]["checkpoint_sha256"] = None
    assert V.governance_step(gov).status == "warn"


def test_fidelity_distance_carried_by_one_feature_is_flagged():
    def frd(share):
        return {"value": 25.8, "available": True, "reason": None,
                "top_features": [{"feature": "wavelet-HH_firstorder_Median", "term": 1e9, "share": share}]}

    flagged = V.population_step({"fidelity": {"frd": frd(0.9997)}}).details
    assert any("99.97% of it comes from one feature, wavelet-HH_firstorder_Median" in d for d in flagged)
    plain = V.population_step({"fidelity": {"frd": frd(0.2)}}).details
    assert plain == ("frd: 25.8 (reported, no threshold: compare with real-vs-real)",)
    noisy = {**frd(0.9997), "without_float_noise": 5.4, "float_noise_features": ["wavelet-HH_firstorder_Median"]}
    line = V.population_step({"fidelity": {"frd": noisy}}).details[0]
    assert line.endswith("constant up to float rounding in the real images (wavelet-HH_firstorder_Median) it reads 5.4")


def test_conditioning_step_names_axes_the_classifier_cannot_check():
    ok = {"available": True, "status": "pass", "summary": "ok", "informative": True}
    blind = {"available": True, "status": "warn", "summary": "kappa low", "informative": False}
    partly = {"available": True, "status": "warn", "summary": "ratio 0.8", "informative": True}
    step = V.conditioning_step({"axes": {"density": ok, "view": ok, "finding": blind}})
    assert step.status == "warn"
    assert step.summary.startswith("images look like their density, view labels; finding could not be checked")
    step = V.conditioning_step({"axes": {"density": partly, "finding": blind}})
    assert step.summary == "images only partly match the labels they were generated for"
