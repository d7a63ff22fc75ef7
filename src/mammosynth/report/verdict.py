"""The verdict: pass / warn / fail / not computed per protocol step, in plain words.

The rules of the built-in steps are here (registered with their checks in
:mod:`mammosynth.report.steps.core`); :func:`verdict` judges every registered check.
Thresholds are module constants so a validation board can read (and change) them.
"""
from __future__ import annotations

from typing import Any

from ..metrics.equity import equity_flags
from .registry import STATUSES, Step
#: total-variation distance between real and synthetic label distributions
TV_PASS, TV_WARN = 0.10, 0.25
#: Kolmogorov-Smirnov statistic between real and synthetic pixel-intensity distributions
KS_PASS, KS_WARN = 0.10, 0.25
#: share of a fidelity distance carried by one feature above which the verdict says so
DOMINANT_SHARE = 0.5
#: significance level of the paired tests; smallest AUC drop worth a warning
ALPHA, AUC_DROP_WARN = 0.05, 0.02


def _step(name: str, status: str, summary: str, details: list[str] | None = None) -> Step:
    return Step(name, status, summary, tuple(details or ()))


def _worst(statuses: list[str]) -> str:
    for s in ("fail", "warn", "pass"):
        if s in statuses:
            return s
    return "not computed"


def governance_step(gov: dict[str, Any]) -> Step:
    missing = [k for k, v in (("real source description", gov["real"].get("source")),
                              ("real content hash", gov["real"].get("content_hash")),
                              ("generator checkpoint hash", gov["model"].get("checkpoint_sha256")),
                              ("generator training run", gov["model"].get("run"))) if not v]
    if missing:
        return _step("1. Governance record", "warn", "incomplete record: missing " + ", ".join(missing),
                     ["The dataset card lists what is known; add the missing items before use."])
    return _step("1. Governance record", "pass",
                 f"source data and model identified (checkpoint {gov['model']['checkpoint_sha256'][:12]}...)")


def population_step(image: dict[str, Any]) -> Step:
    name = "2. Comparison with the real population"
    if not image.get("available", True) and "labels" not in image:
        return _step(name, "not computed", image.get("reason") or "image metrics not computed")
    statuses, details = [], []
    for axis, d in (image.get("labels") or {}).items():
        tv = d.get("tv") if isinstance(d, dict) else None
        if tv is None:
            continue
        s = "pass" if tv <= TV_PASS else "warn" if tv <= TV_WARN else "fail"
        statuses.append(s)
        details.append(f"{axis} label distribution: total-variation distance {tv:.3f} ({s})")
    ks = ((image.get("intensity") or {}).get("distances") or {}).get("ks")
    if ks is not None:
        s = "pass" if ks <= KS_PASS else "warn" if ks <= KS_WARN else "fail"
        statuses.append(s)
        details.append(f"pixel intensity distribution: Kolmogorov-Smirnov statistic {ks:.3f} ({s})")
    for key, m in ((image.get("fidelity") or {}).items()):
        if isinstance(m, dict) and m.get("available") and m.get("value") is not None:
            line = f"{key}: {m['value']:.4g} (reported, no threshold: compare with real-vs-real)"
            top = (m.get("top_features") or [None])[0]
            if top and top.get("share", 0.0) >= DOMINANT_SHARE:
                line += (f"; {100 * top['share']:.2f}% of it comes from one feature, {top['feature']}, which is "
                         "nearly constant in the real images: the value mostly measures that feature, not texture")
            if m.get("without_float_noise") is not None and abs(m["without_float_noise"] - m["value"]) >= 0.1:
                line += (f"; without the feature(s) constant up to float rounding in the real images "
                         f"({', '.join(m.get('float_noise_features') or [])}) it reads {m['without_float_noise']:.4g}")
            details.append(line)
    if not statuses:
        return _step(name, "not computed", "no label or intensity comparison available", details)
    status = _worst(statuses)
    words = {"pass": "synthetic set matches the real population on the compared statistics",
             "warn": "moderate differences from the real population",
             "fail": "large differences from the real population"}[status]
    return _step(name, status, words, details)


def conditioning_step(cond: dict[str, Any]) -> Step:
    name = "2b. Conditioning fidelity"
    if not cond.get("available", True):
        return _step(name, "not computed", cond.get("reason") or "not computed")
    axes = cond.get("axes") or {}
    done = {a: d for a, d in axes.items() if d.get("available") and d.get("status") in STATUSES}
    if not done:
        reasons = "; ".join(f"{a}: {d.get('reason')}" for a, d in axes.items()) or cond.get("reason") or "no conditioned axis"
        return _step(name, "not computed", reasons)
    details = [f"{a}: {d['summary']} ({d['status']})" for a, d in done.items()]
    status = _worst([d["status"] for d in done.values()])
    words = {"pass": "images look like the labels they were generated for",
             "warn": "images only partly match the labels they were generated for",
             "fail": "images often do not look like the labels they were generated for"}.get(status, "")
    blind = [a for a, d in done.items() if d.get("informative") is False]
    if status == "warn" and blind and all(d["status"] == "pass" for a, d in done.items() if a not in blind):
        seen = [a for a in done if a not in blind]
        words = ((f"images look like their {', '.join(seen)} labels; " if seen else "")
                 + f"{', '.join(blind)} could not be checked (the classifier does not recognise "
                 f"{'it' if len(blind) == 1 else 'them'} on real images)")
    return _step(name, status, words, details)


def _fmt_auc(r: dict[str, Any]) -> str:
    if not r.get("available"):
        return f"not computed ({r.get('reason')})"
    return f"{r['value']:.3f} (95% CI {r['ci_low']:.3f}-{r['ci_high']:.3f})"


def utility_step(util: dict[str, Any]) -> Step:
    name = "3. Utility on independent real test images"
    if not util.get("available"):
        return _step(name, "not computed", util.get("reason") or "not computed")
    reg, paired = util["regimes"], util["paired_b_vs_a"]
    details = [f"{r['label']}: AUC {_fmt_auc(r)}" for r in reg.values()]
    if not paired.get("available"):
        return _step(name, "not computed", f"paired comparison not possible: {paired.get('reason')}", details)
    d, p = paired["diff"], paired["p_value"]
    details.append(f"(b) - (a): {d:+.3f} (95% CI {paired['ci_low']:+.3f} to {paired['ci_high']:+.3f}, DeLong p = {p:.3g})")
    if d < 0 and p < ALPHA:
        return _step(name, "fail", f"adding synthetic images significantly lowered the AUC ({d:+.3f}, p = {p:.3g})", details)
    syn, base = reg.get("synthetic", {}), reg.get("real", {})
    if base.get("available") and base["ci_low"] <= 0.5:
        return _step(name, "warn", "the classifier does not learn the task from the real training images "
                     f"(AUC (a) {_fmt_auc(base)} includes chance), so this comparison cannot show benefit or harm; "
                     "use more real test images, another --task or more --epochs / --min-steps", details)
    if d < -AUC_DROP_WARN:
        return _step(name, "warn", f"adding synthetic images lowered the AUC by {-d:.3f} (not significant, p = {p:.3g})", details)
    if syn.get("available") and syn["ci_low"] <= 0.5:
        return _step(name, "warn", "a classifier trained on synthetic images alone is not better than chance "
                     f"on real images (AUC {_fmt_auc(syn)})", details)
    gain = "a significant improvement" if d > 0 and p < ALPHA else "no significant change"
    return _step(name, "pass", f"no harm from adding synthetic images: {gain} ({d:+.3f}, p = {p:.3g})", details)


def equity_step(eq: dict[str, Any]) -> Step:
    name = "4. Subgroup equity"
    if not eq.get("available", True):
        return _step(name, "not computed", eq.get("reason") or "not computed")
    n_done = sum(1 for a in eq.get("axes", {}).values() for r in a["subgroups"].values()
                 if r.get("delong", {}).get("available"))
    if n_done == 0:
        return _step(name, "not computed", f"no subgroup has >= {eq.get('min_per_class')} positive and negative "
                                           "real test images")
    flags = equity_flags(eq, drop_warn=AUC_DROP_WARN, alpha=ALPHA)
    if flags["fail"]:
        return _step(name, "fail", "synthetic data significantly hurt at least one subgroup", flags["fail"] + flags["warn"])
    if flags["warn"]:
        return _step(name, "warn", "some subgroups did worse with synthetic data (not significant)", flags["warn"])
    return _step(name, "pass", f"no subgroup harmed ({n_done} subgroups compared)")


def memorisation_step(image: dict[str, Any]) -> Step:
    name = "Near-copies of training patients"
    mem = image.get("memorization") or {}
    if not mem.get("available"):
        return _step(name, "not computed", mem.get("reason") or image.get("reason") or "not computed")
    n = int(mem.get("n_flagged") or 0)
    if n:
        return _step(name, "fail", f"{n} synthetic image(s) are near-copies of training images", [
            f"{f.get('synthetic_id')} ~ {f.get('train_id')} (distance {f.get('distance')})" for f in mem.get("flagged", [])[:10]])
    return _step(name, "pass", "no synthetic image is closer to a training image than real held-out images are")


def diversity_step(image: dict[str, Any]) -> Step:
    name = "Diversity (no mode collapse)"
    div = image.get("diversity") or {}
    if "mode_collapse" not in div:
        return _step(name, "not computed", div.get("reason") or image.get("reason") or "not computed")
    msg = div.get("message") or ""
    if div["mode_collapse"]:
        return _step(name, "fail", f"synthetic images are too uniform. {msg}".strip())
    return _step(name, "pass", f"synthetic images are about as varied as real ones. {msg}".strip())


def verdict(metrics: dict[str, Any]) -> dict[str, Any]:
    """Every registered check judged (:mod:`.registry`), plus an overall status: the worst
    step; 'warn' when all that ran passed but some step could not be computed."""
    from .registry import checks

    judged = [(c, c.judge(metrics)) for c in checks()]
    steps = [s for _, s in judged]
    # a step nobody asked for (its section says not_requested, e.g. 2d. Edits without --edits)
    # is listed but does not turn an all-pass evaluation into "warn"
    statuses = [s.status for c, s in judged if not (metrics.get(c.key) or {}).get("not_requested")]
    overall = _worst(statuses)
    if overall == "pass" and "not computed" in statuses:
        overall = "warn"
    words = {"pass": "All checks passed: the synthetic set may be used for the evaluated task, within the limits below.",
             "warn": "Usable with caution: some checks raised warnings or could not be run; read them before use.",
             "fail": "Not fit for use as evaluated: at least one check failed.",
             "not computed": "No check could be run."}[overall]
    return {"overall": overall, "summary": words, "steps": [s.to_dict() for s in steps]}
