"""Protocol step "2d. Edits": is an edited set (``mammosynth edit``) right and realistic?

Runs only when ``evaluate`` is given ``--edits EDITED`` (``EvaluateConfig.edits``); the
measures are :func:`mammosynth.edit.validate.edit_metrics` against the real set (the films'
sources, and real lesions) and its training split (the lesion-presence classifier).

Verdict: fail when any edited film differs from its source outside its edit mask; else
warn when

* inserted-lesion patches are told from real ones with AUC CI wholly above ``REALISM_WARN``;
* insertions do not raise (removals do not lower) the lesion-presence score on average;
* the removal regions are told from normal breast tissue with AUC CI wholly above
  ``REALISM_WARN`` (the removal left something a classifier finds);
* a density edit's breast mask has Dice < 0.95 with its source's;
* the density flip rate is below the density classifier's own accuracy on held-out real
  films by more than ``FLIP_MARGIN`` (only when that classifier is informative: Cohen's
  kappa on real films >= ``conditioning.KAPPA_MIN``; else the flip rate is shown, not judged);

else pass. The utility ΔAUC (with vs without the edited films) is informative only: a
ΔAUC is a property of the task and the data as much as of the edits, and its CI on small
test sets is wide.
"""
from __future__ import annotations

from typing import Any

from ...metrics.stats import unavailable
from ..registry import Check, EvalInputs, Step, register

STEP = "2d. Edits"
REALISM_WARN = 0.75
FLIP_MARGIN = 0.2  # flip rate this far below the classifier's real accuracy: the edits do not reach the target


def edits(inputs: EvalInputs) -> dict[str, Any]:
    config = inputs.config
    path = getattr(config, "edits", None)
    if not path:
        return unavailable("no edited set given (evaluate --edits EDITED)", not_requested=True)
    from ...edit.validate import EditValidationConfig, edit_metrics

    vc = getattr(config, "edit_validation", None)
    if vc is None:
        cc = getattr(config, "classifier", None) or EditValidationConfig().utility_classifier
        vc = EditValidationConfig(seed=config.seed, n_boot=config.n_boot, density_classifier=cc,
                                  utility_classifier=cc, utility_seeds=getattr(config, "seeds", 3))
    train = inputs.train.dataset if inputs.train is not None else None
    test = inputs.test.dataset if inputs.test is not None else None
    try:
        return edit_metrics(path, real=inputs.real.dataset, train=train, config=vc, test=test)
    except (ValueError, FileNotFoundError) as exc:
        return unavailable(f"edit validation failed: {exc}")


def _patch_auc(what: str, auc: dict[str, Any], details: list[str]) -> bool:
    """Add a patch classifier's AUC line to ``details``; True when its CI lies wholly above
    ``REALISM_WARN`` (the patches are told from real ones)."""
    if not auc.get("available"):
        return False
    details.append(f"{what}: AUC {auc['value']:.3f} (95% CI {auc['ci_low']:.3f}-{auc['ci_high']:.3f})")
    return auc["ci_low"] > REALISM_WARN


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
    if _patch_auc("inserted-vs-real lesion patches", (s.get("insertion_realism") or {}).get("auc") or {}, details):
        status = "warn"
    pres = s.get("lesion_presence") or {}
    if pres.get("available"):
        details.append(f"lesion-presence score {pres['before_mean']:.3f} before, {pres['after_mean']:.3f} after")
        ops = s.get("operations") or []
        if ("insert" in ops and pres["delta_mean"] <= 0) or ("remove" in ops and pres["delta_mean"] >= 0):
            status = "warn"  # an insertion should raise the score, a removal lower it
    rem = s.get("removal") or {}
    if rem.get("available") and _patch_auc("removal regions vs normal tissue", rem.get("auc") or {}, details):
        status = "warn"
    rvn = pres.get("removed_vs_normal") or {}
    if rvn.get("available"):
        d = rvn["difference"]
        details.append(f"presence score after removal minus normal films: {d['value']:+.3f} "
                       f"(95% CI {d['ci_low']:+.3f} to {d['ci_high']:+.3f})")
    dens = s.get("density") or {}
    if dens.get("available"):
        details.append(f"density edits: breast-mask Dice min {dens['breast_dice_min']:.3f}")
        if dens.get("dice_below_0.95"):
            status = "warn"
        status = _flip(dens.get("flip") or {}, details, status)
    ut = s.get("utility") or {}
    delta = ut.get("delta_auc") or {}
    if ut.get("available") and delta.get("available"):
        details.append(f"utility (informative): ΔAUC with vs without the edited films {delta['value']:+.3f} "
                       f"(95% CI {delta['ci_low']:+.3f} to {delta['ci_high']:+.3f})")
    summary = {"pass": f"all {un['n_images']} edited films equal their source outside the edit mask",
               "warn": "edited films equal their source outside the edit mask, but the inserted lesions are "
                       "easy to tell from real ones, the lesion-presence score moves the wrong way, the removal "
                       "regions are easy to tell from normal tissue, a density edit moved the breast outline "
                       "(Dice < 0.95), or the density edits rarely reach their target class"}[status]
    return Step(STEP, status, summary, tuple(details))


def _flip(flip: dict[str, Any], details: list[str], status: str) -> str:
    """The flip-rate part of the rule: warn when clearly below the classifier's real accuracy."""
    rate, acc = flip.get("flip_rate") or {}, flip.get("real_accuracy") or {}
    if not flip.get("available") or not rate.get("available"):
        return status
    line = f"density flip rate {rate['value']:.2f} (95% CI {rate['ci_low']:.2f}-{rate['ci_high']:.2f})"
    if not acc.get("available"):
        details.append(line + "; the classifier's accuracy on held-out real films is unknown: not judged")
        return status
    line += f" vs the classifier's accuracy on held-out real films {acc['value']:.2f}"
    if not flip.get("informative"):
        details.append(line + " (the classifier barely tells the classes apart on real films: not judged)")
        return status
    details.append(line)
    return "warn" if rate["value"] < acc["value"] - FLIP_MARGIN else status


def edits_card(s: dict[str, Any]) -> str | None:
    un = s.get("unchanged_outside") or {}
    if not s.get("available") or not un.get("available"):
        return None
    line = f"Edits: {un['n_images']} edited films, max |Δ| outside the edit mask {un['max_abs_diff']}"
    auc = ((s.get("insertion_realism") or {}).get("auc") or {})
    if auc.get("available"):
        line += f"; inserted-vs-real lesion AUC {auc['value']:.3f} ({auc['ci_low']:.3f}-{auc['ci_high']:.3f})"
    rauc = ((s.get("removal") or {}).get("auc") or {})
    if rauc.get("available"):
        line += f"; removal regions vs normal tissue AUC {rauc['value']:.3f} ({rauc['ci_low']:.3f}-{rauc['ci_high']:.3f})"
    rate = (((s.get("density") or {}).get("flip") or {}).get("flip_rate") or {})
    if rate.get("available"):
        line += f"; density flip rate {rate['value']:.2f}"
    delta = ((s.get("utility") or {}).get("delta_auc") or {})
    if delta.get("available"):
        line += f"; utility ΔAUC {delta['value']:+.3f} ({delta['ci_low']:+.3f} to {delta['ci_high']:+.3f})"
    return line + "."


register(Check(key="edits", title="2d. Edited films: unchanged outside the mask, realistic inside?", step=STEP,
               order=28, compute=edits, rule=edits_step, template="edits.html", card=edits_card))
