"""Equity: per-subgroup AUCs with and without synthetic data (protocol step 4).

Subgroups of the real test split (:func:`subgroups`): breast density (A-D), view (CC/MLO),
age band (``<50``, ``50-59``, ``60-69``, ``70+``; only when ages are known) and finding kind.
For the ``finding`` task a finding-kind subgroup holds the images with that kind (the
positives) plus every image without a finding (the negatives), so its AUC asks "how well
are masses (calcifications, ...) told apart from normal images"; for other tasks it holds
the images with that kind (``none`` included).

Per axis we report each subgroup's AUC + bootstrap CI for regimes (a) real and
(b) real + synthetic, the DeLong test of (b) vs (a) inside the subgroup, and the gap
between the best and the worst subgroup for each regime. Every subgroup is a separate
test, so each DeLong result also carries ``p_holm``, its Holm-Bonferroni adjusted
p-value over all subgroups of all axes: with a dozen subgroups, one unadjusted
p < 0.05 turns up by chance about half the time. :func:`equity_flags` fails a subgroup
only on the adjusted value. A subgroup with fewer than
``min_per_class`` positives or negatives is shown as not computed, with the reason.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..data.schema import FINDING_KINDS, ImageRecord
from .stats import bootstrap_auc_ci, class_problem, delong_test, holm_adjust, unavailable

AGE_BANDS = ((0, 50, "<50"), (50, 60, "50-59"), (60, 70, "60-69"), (70, 200, "70+"))
EQUITY_REGIMES = ("real", "real+synthetic")


def age_band(age: float | None) -> str | None:
    """The age band label of ``age`` (None when unknown)."""
    if age is None:
        return None
    for lo, hi, name in AGE_BANDS:
        if lo <= age < hi:
            return name
    return None


def subgroups(records: Sequence[ImageRecord], y: np.ndarray, task: str) -> dict[str, dict[str, np.ndarray]]:
    """Boolean masks over ``records`` per axis and subgroup (axes without data are left out)."""
    y = np.asarray(y)
    axes: dict[str, dict[str, np.ndarray]] = {}

    def add(axis: str, values: list[str | None], order: Sequence[str] | None = None) -> None:
        present = sorted({v for v in values if v is not None}, key=lambda v: (order.index(v) if order and v in order else 99, v))
        if not present:
            return
        arr = np.array([v if v is not None else "" for v in values], dtype=object)
        axes[axis] = {v: arr == v for v in present}

    add("density", [r.density if r.density != "unknown" else None for r in records], "ABCD")
    add("view", [r.view for r in records], ("CC", "MLO", "other"))
    add("age", [age_band(r.age) for r in records], [b[2] for b in AGE_BANDS])
    kinds = [r.finding_kind for r in records]
    if task == "finding":
        neg = y == 0
        axes["finding"] = {k: (np.array(kinds, dtype=object) == k) | neg
                           for k in sorted(set(kinds) - {"none"})}
        if not axes["finding"]:
            del axes["finding"]
    else:
        add("finding", kinds, ("none",) + FINDING_KINDS)
    return axes


def equity_analysis(records: Sequence[ImageRecord], y: np.ndarray, scores: dict[str, np.ndarray], task: str,
                    n_boot: int = 1000, ci_method: str = "percentile", seed: int = 0,
                    min_per_class: int = 5) -> dict[str, Any]:
    """Subgroup AUCs per axis for the regimes in ``scores`` (seed-averaged test scores).

    ``y`` holds -1 for unknown labels (excluded). Returns ``{"axes": {axis: {"subgroups":
    {name: {"n", "n_pos", "n_neg", "real": AUC+CI, "real+synthetic": AUC+CI, "delong"}},
    "gap": {regime: {"value", "best", "worst"}}}}, "min_per_class"}``.
    """
    y = np.asarray(y)
    known = y >= 0
    out: dict[str, Any] = {"axes": {}, "min_per_class": min_per_class,
                           "regimes": [r for r in EQUITY_REGIMES if r in scores]}
    for axis, groups in subgroups(records, y, task).items():
        rows: dict[str, Any] = {}
        for name, mask in groups.items():
            sel = mask & known
            ys = y[sel]
            row: dict[str, Any] = {"n": int(sel.sum()), "n_pos": int((ys == 1).sum()), "n_neg": int((ys == 0).sum())}
            problem = class_problem(ys, min_per_class=min_per_class)
            for regime in EQUITY_REGIMES:
                if regime not in scores:
                    row[regime] = unavailable("regime not trained")
                elif problem:
                    row[regime] = unavailable(problem.replace("the test set", "this subgroup"))
                else:
                    row[regime] = bootstrap_auc_ci(ys, scores[regime][sel], n_boot=n_boot, method=ci_method, seed=seed)
            if problem or not all(r in scores for r in EQUITY_REGIMES):
                row["delong"] = unavailable(problem or "regime (a) or (b) not trained", p_value=None)
            else:
                row["delong"] = delong_test(ys, scores["real"][sel], scores["real+synthetic"][sel])
            rows[name] = row
        gaps: dict[str, Any] = {}
        for regime in EQUITY_REGIMES:
            vals = {k: r[regime]["value"] for k, r in rows.items() if r.get(regime, {}).get("available")}
            if len(vals) < 2:
                gaps[regime] = unavailable(f"fewer than two subgroups with an AUC ({len(vals)})")
            else:
                best, worst = max(vals, key=vals.get), min(vals, key=vals.get)
                gaps[regime] = {"value": vals[best] - vals[worst], "best": best, "worst": worst,
                                "available": True, "reason": None}
        out["axes"][axis] = {"subgroups": rows, "gap": gaps}
    tests = [r["delong"] for a in out["axes"].values() for r in a["subgroups"].values()
             if r["delong"].get("available")]
    for d, p in zip(tests, holm_adjust([d["p_value"] for d in tests])):
        d["p_holm"] = p
    out["tests"] = len(tests)
    return out


def equity_flags(result: dict[str, Any], drop_warn: float = 0.02, alpha: float = 0.05) -> dict[str, list[str]]:
    """Subgroups harmed by synthetic data: ``{"fail": [...], "warn": [...]}`` (readable sentences).

    fail: a subgroup's AUC is significantly lower with synthetic data (DeLong p < alpha
    after Holm adjustment over all subgroups, ``p_holm``).
    warn: a drop significant alone but not after adjustment, a drop of more than
    ``drop_warn`` that is not significant, or a best-worst gap that widens by more than
    ``drop_warn``.
    """
    fail, warn = [], []
    n = result.get("tests")
    for axis, data in result.get("axes", {}).items():
        for name, row in data["subgroups"].items():
            d = row.get("delong", {})
            if not d.get("available"):
                continue
            label = f"{axis} {name}"
            p, p_adj = d["p_value"], d.get("p_holm", d["p_value"])
            change = f"AUC {d['auc_a']:.3f} -> {d['auc_b']:.3f}"
            if d["diff"] < 0 and p_adj < alpha:
                fail.append(f"{label}: {change} with synthetic data (DeLong p = {p:.3g}, "
                            f"Holm-adjusted over {n} subgroups p = {p_adj:.3g})")
            elif d["diff"] < 0 and p < alpha:
                warn.append(f"{label}: {change} (p = {p:.3g} alone, not significant after Holm adjustment "
                            f"over {n} subgroups: p = {p_adj:.3g})")
            elif d["diff"] < -drop_warn:
                warn.append(f"{label}: {change} (not significant, p = {p:.3g})")
        ga, gb = data["gap"].get("real", {}), data["gap"].get("real+synthetic", {})
        if ga.get("available") and gb.get("available") and gb["value"] - ga["value"] > drop_warn:
            warn.append(f"{axis}: best-worst subgroup gap widens from {ga['value']:.3f} to {gb['value']:.3f}")
    return {"fail": fail, "warn": warn}
