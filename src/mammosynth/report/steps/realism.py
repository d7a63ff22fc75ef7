"""Protocol step "2c. Realism": can a classifier tell the synthetic films from real ones?

Computed by :func:`mammosynth.metrics.realism.realism_metrics` on the evaluation's
decoded images and breast masks (:class:`~mammosynth.metrics.images.EvalImages`, at
stored size): detectability (out-of-fold AUC of a small CNN separating synthetic from
real, against the AUC of the same CNN separating two halves of the real set, the
"floor", both with bootstrap CIs, per stratum too), the radial power-spectrum exponent
beta per side, the high-pass (fine detail) energy ratio synthetic / real, and the breast
outline (the share of synthetic breasts shaped unlike any real film, of skin lines more
jagged than real ones). A sheet of real and synthetic crops at native resolution, and one
of the most atypical real and synthetic outlines, are written next to the report and embedded.

Verdict: the realism result's own verdict (:func:`rule_text` says it in words, with the
configured margin and tolerances, in the report).
"""
from __future__ import annotations

import os
from typing import Any

from ...metrics.stats import unavailable
from ..registry import Check, EvalInputs, Step, register

STEP = "2c. Realism"
SHEET = "realism_crops.png"
OUTLINE_SHEET = "realism_outlines.png"


def rule_text(rc: Any) -> str:
    """The verdict rule of :func:`mammosynth.metrics.realism.realism_verdict` in words, with ``rc``'s numbers."""
    m = rc.margin
    return (f"Fail when the synthetic-vs-real detectability AUC's 95% CI lies wholly above the real-vs-real floor's CI "
            f"and the AUC exceeds the floor by at least {m:.2f}; warn when it exceeds the floor by at least {m / 2:.2f} "
            "(the floor, or chance, 0.5, when the floor lies below it); "
            f"otherwise pass, raised to warn (never to fail) when the spectrum exponent differs clearly (CI excludes "
            f"0) and by at least {rc.beta_tolerance:g}, or the fine-detail energy ratio's CI lies wholly outside "
            f"[1/{rc.detail_tolerance:g}, {rc.detail_tolerance:g}], or the share of synthetic breasts shaped unlike "
            f"any real film (or with a skin line more jagged than real films'; both above the real films' "
            f"{rc.outline_quantile:.0%} quantile) has a CI wholly above {rc.outline_tolerance:.0%}: spectrum, detail "
            "and outline say why films look synthetic, the classifier says whether.")


def realism_config(detect_folds: int | None = None, floor_splits: int | None = None) -> Any:
    """A RealismConfig with the CLI's overrides (``--detect-folds``, ``--floor-splits``);
    ImportError without the realism module."""
    import dataclasses

    from ...metrics.realism import RealismConfig

    rc = RealismConfig()
    over = {k: v for k, v in (("folds", detect_folds), ("floor_splits", floor_splits)) if v is not None}
    if over:
        rc = dataclasses.replace(rc, detectability=dataclasses.replace(rc.detectability, **over))
    return rc


def realism(inputs: EvalInputs) -> dict[str, Any]:
    """The realism measures of the synthetic set against the real set (and the crop sheet)."""
    config = inputs.config
    if not config.realism:
        return unavailable("realism switched off (realism=False, --no-realism)")
    try:
        from ...metrics.cache import FeatureCache
        from ...metrics.realism import RealismConfig, realism_metrics, realism_sheet
    except ImportError as exc:
        return unavailable(f"mammosynth.metrics.realism could not be imported ({exc})")
    rc = config.realism_config if config.realism_config is not None else RealismConfig()
    show = os.environ.get("MAMMOSYNTH_NO_PROGRESS") != "1"
    try:
        with inputs.timed("decode_and_masks"):
            real, rm = inputs.real.stack(), inputs.real.masks()
            syn, sm = inputs.synthetic.stack(), inputs.synthetic.masks()
        res = realism_metrics(real, rm, inputs.real.records, syn, sm, inputs.synthetic.records, config=rc,
                              progress=show, cache=FeatureCache(config.cache_dir, enabled=config.use_cache),
                              real_key=inputs.real.content_hash)
    except ValueError as exc:
        return unavailable(f"realism measures failed: {exc}")
    out = {"available": True, "reason": None, **res.to_dict(), "rule": rule_text(rc),
           "shape_gate": shape_gate_info(inputs.synthetic)}
    if inputs.out_dir is not None:
        try:
            info = realism_sheet(real, rm, syn, sm, inputs.out_dir / SHEET, seed=config.seed)
            out["sheet"] = {"file": SHEET, "n_real": info.get("n_real"), "n_synthetic": info.get("n_synthetic"),
                            "reason": None}
        except ValueError as exc:  # no breast interior large enough for a crop: the measures still stand
            out["sheet"] = {"file": None, "reason": str(exc)}
        out["outline_sheet"] = _outline_sheet(res.outline, real, rm, syn, sm, inputs.out_dir / OUTLINE_SHEET)
    return out


def shape_gate_info(images: Any) -> dict[str, Any] | None:
    """What ``generate``'s shape gate did to the synthetic set, from its dataset.json
    (None: written without the gate): the outline figures are of the images it kept, and
    the share it redrew is the model's own rate of broken outlines."""
    info = getattr(getattr(images, "dataset", None), "info", None) or {}
    summary, settings = info.get("shape_gate"), (info.get("settings") or {}).get("shape_gate")
    if not isinstance(summary, dict) or not isinstance(settings, dict):
        return None
    try:
        n = int(summary["images"])
        return {"images": n, "redrawn": int(summary["redrawn"]), "failed": int(summary["failed"]),
                "quantile": float(settings["quantile"]), "attempts": int(settings["attempts"])}
    except (KeyError, TypeError, ValueError):
        return None


def _outline_sheet(outline: Any, real: Any, rm: Any, syn: Any, sm: Any, path: Any) -> dict[str, Any]:
    """The most atypical real and synthetic outlines, drawn (``{"file", "reason"}``)."""
    from ...metrics.outline import atypical_sheet

    if outline is None:
        return {"file": None, "reason": "no outline measure"}
    try:
        atypical_sheet(outline, real, rm, syn, sm, path)
    except ValueError as exc:
        return {"file": None, "reason": str(exc)}
    return {"file": path.name, "reason": None}


def _status(s: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(status, reasons) from the result's ``verdict`` (a string, or a dict with status and reasons)."""
    v = s.get("verdict")
    if isinstance(v, str):
        return v, [str(r) for r in s.get("reasons") or []]
    if isinstance(v, dict):
        reasons = v.get("reasons") or ([v["reason"]] if v.get("reason") else [])
        return v.get("status") or v.get("overall"), [str(r) for r in reasons]
    return None, []


def realism_step(s: dict[str, Any]) -> Step:
    if not s.get("available"):
        return Step(STEP, "not computed", s.get("reason") or "not computed")
    status, reasons = _status(s)
    if status not in ("pass", "warn", "fail"):
        return Step(STEP, "not computed", f"the realism result has no verdict ({status!r})", reasons)
    words = {"pass": "a classifier tells the synthetic films from real ones no better than it tells real films "
                     "apart", "warn": "synthetic films are somewhat distinguishable from real ones",
             "fail": "a classifier tells the synthetic films from real ones clearly better than chance-level real "
                     "vs real"}[status]
    return Step(STEP, status, words, reasons)


def realism_card(s: dict[str, Any]) -> str | None:
    d = s.get("detectability") or {}
    syn, floor = d.get("synthetic_vs_real") or {}, d.get("real_vs_real") or {}
    if not s.get("available") or syn.get("auc") is None or floor.get("auc") is None:
        return None
    line = (f"Realism: detectability AUC {syn['auc']:.3f} (95% CI {syn['ci_low']:.3f}-{syn['ci_high']:.3f}) vs "
            f"real-vs-real floor {floor['auc']:.3f} ({floor['ci_low']:.3f}-{floor['ci_high']:.3f})")
    det = s.get("detail") or {}
    if det.get("ratio") is not None:
        line += f"; fine-detail energy ratio synthetic/real {det['ratio']:.2f}"
    atypical = ((s.get("outline") or {}).get("statistics") or {}).get("atypical") or {}
    if atypical.get("rate") is not None:
        line += (f"; {atypical['rate']:.0%} of synthetic breasts shaped unlike any real film (real films "
                 f"{atypical['real_rate']:.0%})")
    gate = s.get("shape_gate") or {}
    if gate.get("images"):
        line += (f"; generate's shape gate redrew {gate['redrawn']} of {gate['images']} images for a broken outline "
                 f"({gate['failed']} kept failing)")
    return line + "."


register(Check(key="realism", title="2c. Realism: can a classifier tell synthetic from real?", step=STEP, order=27,
               compute=realism, rule=realism_step, template="realism.html", card=realism_card))
