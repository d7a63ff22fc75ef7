"""Protocol step "2d. Edits": is an edited set (``mammosynth edit``) right and realistic?

Runs only when ``evaluate`` is given ``--edits EDITED`` (``EvaluateConfig.edits``); the
measures are :func:`mammosynth.edit.validate.edit_metrics` against the real set (the films'
sources, and real lesions) and its training split (the lesion-presence classifier).

Verdict: fail when any edited film differs from its source outside its edit mask; else
warn when inserted-lesion patches are told from real ones with AUC CI wholly above
``REALISM_WARN``, when insertions do not raise (removals do not lower) the lesion-presence score on average, or when a
density edit's breast mask has Dice < 0.95 with its source's; else pass.
"""
from __future__ import annotations

from typing import Any

from ...metrics.stats import unavailable
from ..registry import Check, EvalInputs, Step, register

STEP = "2d. Edits"
REALISM_WARN = 0.75


def edits(inputs: EvalInputs) -> dict[str, Any]:
    config = inputs.config
    path = getattr(config, "edits", None)
    if not path:
        return unavailable("no edited set given (evaluate --edits EDITED)", not_requested=True)
    from ...edit.validate import EditValidationConfig, edit_metrics

    vc = getattr(config, "edit_validation", None) or EditValidationConfig(seed=config.seed, n_boot=config.n_boot)
    train = inputs.train.dataset if inputs.train is not None else None
    try:
        return edit_metrics(path, real=inputs.real.dataset, train=train, config=vc)
    except (ValueError, FileNotFoundError) as exc:
        return unavailable(f"edit validation failed: {exc}")


def edits_step(s: dict[str, Any]) -> Step:
    if not s.get("available"):
        return Step(STEP, "not computed", s.get("reason") or "not computed")
    un = s.get("unchanged_outside") or {}
    details = []
    if not un.get("available"):
        return Step(STEP, "not computed", f"edited films not matched with their sources: {un.get('reason')}")
    if un.get("n_changed_outside"):
        return Step(STEP, "fail", f"{un['n_changed_outside']} edited film(s) differ from their source outside the "
                                  f"edit mask (max |Δ| {un['max_abs_diff']})",
                    tuple(un.get("changed_outside", [])[:10]))
    status = "pass"
    auc = ((s.get("insertion_realism") or {}).get("auc") or {})
    if auc.get("available"):
        details.append(f"inserted-vs-real lesion patches: AUC {auc['value']:.3f} "
                       f"(95% CI {auc['ci_low']:.3f}-{auc['ci_high']:.3f})")
        if auc["ci_low"] > REALISM_WARN:
            status = "warn"
    pres = s.get("lesion_presence") or {}
    if pres.get("available"):
        details.append(f"lesion-presence score {pres['before_mean']:.3f} before, {pres['after_mean']:.3f} after")
        ops = s.get("operations") or []
        if ("insert" in ops and pres["delta_mean"] <= 0) or ("remove" in ops and pres["delta_mean"] >= 0):
            status = "warn"  # an insertion should raise the score, a removal lower it
    dens = s.get("density") or {}
    if dens.get("available"):
        details.append(f"density edits: breast-mask Dice min {dens['breast_dice_min']:.3f}")
        if dens.get("dice_below_0.95"):
            status = "warn"
    summary = {"pass": f"all {un['n_images']} edited films equal their source outside the edit mask",
               "warn": "edited films equal their source outside the edit mask, but the inserted lesions are "
                       "easy to tell from real ones, the lesion-presence score moves the wrong way, or a density edit "
                       "moved the breast outline (Dice < 0.95)"}[status]
    return Step(STEP, status, summary, tuple(details))


def edits_card(s: dict[str, Any]) -> str | None:
    un = s.get("unchanged_outside") or {}
    if not s.get("available") or not un.get("available"):
        return None
    line = f"Edits: {un['n_images']} edited films, max |Δ| outside the edit mask {un['max_abs_diff']}"
    auc = ((s.get("insertion_realism") or {}).get("auc") or {})
    if auc.get("available"):
        line += f"; inserted-vs-real lesion AUC {auc['value']:.3f} ({auc['ci_low']:.3f}-{auc['ci_high']:.3f})"
    return line + "."


register(Check(key="edits", title="2d. Edited films: unchanged outside the mask, realistic inside?", step=STEP,
               order=28, compute=edits, rule=edits_step, template="edits.html", card=edits_card))
