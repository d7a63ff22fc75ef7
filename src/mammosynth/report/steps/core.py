"""The built-in protocol checks (Pesapane et al., Diagnostics 2025) on the registry.

(1) governance record, (2) comparison with the real population (image metrics),
(2b) conditioning fidelity, (3) utility of a classifier trained with and without
synthetic images on independent real test images, (4) subgroup equity; plus near-copies
(memorisation) and diversity, which read the image metrics. Verdict rules and thresholds
live in :mod:`mammosynth.report.verdict`.

Which real images are used for what: fidelity ``real`` is the real set as given;
``train`` trains the downstream and conditioning classifiers and is the generator's
training set for memorisation; ``test`` scores every classifier; ``heldout`` (test, else
val) calibrates the near-copy threshold.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np

from ...metrics.cache import FeatureCache, cache_key
from ...metrics.stats import unavailable
from .. import verdict as V
from ..registry import Check, EvalInputs, register


# -- 1. governance -------------------------------------------------------------------
def governance(inputs: EvalInputs) -> dict[str, Any]:
    """What the synthetic set came from (source data, model, generation settings)."""
    real, synthetic = inputs.real, inputs.synthetic
    settings = synthetic.info.get("settings") or {}
    gen = settings.get("generator")
    if not isinstance(gen, dict):
        gen = (synthetic.info.get("source") or {}).get("generator")
    gen = gen if isinstance(gen, dict) else {}
    first = (synthetic.records[0].generation if synthetic.records else None) or {}
    model = {k: gen.get(k) or first.get(k) for k in ("checkpoint_sha256", "run", "step", "kimg")}
    model.update(resolution=gen.get("resolution"), label_axes=gen.get("label_axes"))
    return {
        "real": {"path": str(real.root), "source": real.info.get("source") or {}, "content_hash": real.content_hash,
                 "manifest_sha256": real.info.get("manifest_sha256"), "settings": real.info.get("settings") or {},
                 "created": real.info.get("created")},
        "synthetic": {"path": str(synthetic.root), "kind": synthetic.kind, "source": synthetic.info.get("source") or {},
                      "content_hash": synthetic.content_hash,
                      "manifest_sha256": synthetic.info.get("manifest_sha256"), "created": synthetic.info.get("created"),
                      "complete": synthetic.info.get("complete"), "provenance": synthetic.info.get("provenance")},
        "model": model,
        "generation_settings": settings,
    }


# -- 2. image metrics ----------------------------------------------------------------
def image_metrics(inputs: EvalInputs) -> dict[str, Any]:
    """Fidelity, PRDC, intensities, texture, labels, diversity, memorisation (one call)."""
    config = inputs.config
    if not config.image_metrics:
        return unavailable("image metrics switched off (image_metrics=False)")
    try:
        from ...metrics import fidelity
    except ImportError as exc:
        return unavailable(f"mammosynth.metrics.fidelity could not be imported ({exc})")
    ic = config.image_config if config.image_config is not None else fidelity.ImageMetricsConfig()
    if not isinstance(ic, fidelity.ImageMetricsConfig):
        raise ValueError(f"image_config must be an ImageMetricsConfig, got {type(ic).__name__}")
    ic = dataclasses.replace(ic, cache_dir=config.cache_dir, use_cache=config.use_cache, seed=config.seed)
    if config.inception_weights is not None:
        ic = dataclasses.replace(ic, inception_weights=config.inception_weights)
    try:
        out = fidelity.compute_image_metrics(inputs.real, inputs.synthetic, train=inputs.train,
                                             heldout=inputs.heldout, config=ic)
    except (ValueError, RuntimeError) as exc:
        return unavailable(f"image metrics failed: {exc}")
    recs = inputs.synthetic.records
    if recs and all((r.generation or {}).get("edited") for r in recs):
        # an edited film is its source outside the edit mask, by design: a near-copy search
        # would flag every one of them; "2d. Edits" checks what matters for edits instead
        out["memorization"] = unavailable("the synthetic set is edited real films (mammosynth edit), each its "
                                          "source outside the edit mask by design; see 2d. Edits")
    return {"available": True, "reason": None, **out}


# -- classifier inputs, shared by conditioning and utility -----------------------------
def classifier_inputs(inputs: EvalInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, test, synthetic) images at the classifier's input size, made once per evaluation."""
    from ...metrics.utility import load_inputs

    if "classifier_inputs" not in inputs.shared:
        c = inputs.config
        size, kw = c.classifier.input_size, {"cache_dir": c.cache_dir}
        with inputs.timed("classifier_inputs"):
            inputs.shared["classifier_inputs"] = (
                load_inputs(inputs.train, size, use_cache=c.use_cache, desc="classifier inputs: train", **kw),
                load_inputs(inputs.test, size, use_cache=c.use_cache, desc="classifier inputs: test", **kw),
                load_inputs(inputs.synthetic, size, use_cache=False, desc="classifier inputs: synthetic", **kw))
    return inputs.shared["classifier_inputs"]


# -- 2b. conditioning ----------------------------------------------------------------
def conditioning(inputs: EvalInputs) -> dict[str, Any]:
    from ...metrics.conditioning import conditioned_axes, conditioning_fidelity

    why = inputs.missing_split()
    if why:
        return unavailable(why)
    train_x, test_x, syn_x = classifier_inputs(inputs)
    axes, axes_from = conditioned_axes(inputs.synthetic.dataset)
    cond_axes = conditioning_fidelity(inputs.train.records, train_x, inputs.test.records, test_x,
                                      inputs.synthetic.records, syn_x, axes, inputs.config.classifier,
                                      seed=inputs.config.seed)
    return {"available": bool(axes), "reason": None if axes else f"no conditioned axis found ({axes_from})",
            "axes_from": axes_from, "axes": cond_axes}


# -- 3. utility and 4. equity ----------------------------------------------------------
def _task(inputs: EvalInputs) -> tuple[str | None, str]:
    """The downstream task and why (or None and why none can be evaluated)."""
    from ...metrics.utility import choose_task, task_problem

    cfg, train, test, syn = inputs.config, inputs.train, inputs.test, inputs.synthetic
    if cfg.task is None:
        return choose_task(train.records, test.records, syn.records, cfg.classifier.min_per_class)
    problem = task_problem(cfg.task, train.records, test.records, syn.records, cfg.classifier.min_per_class)
    return (None, f"task {cfg.task!r}: {problem}") if problem else (cfg.task, f"given ({cfg.task})")


def utility(inputs: EvalInputs) -> dict[str, Any]:
    """Regimes (a)/(b)/(c) on the real test split; leaves the scores for :func:`equity`."""
    from ...metrics.utility import TASK_DEFINITIONS, regime_scores, summarise_regimes, task_labels

    why = inputs.missing_split()
    if why:
        inputs.shared["equity_reason"] = why
        return unavailable(why)
    config, cc = inputs.config, inputs.config.classifier
    task, why = _task(inputs)
    if task is None:
        inputs.shared["equity_reason"] = why
        return unavailable(why, task=config.task)
    train_x, test_x, syn_x = classifier_inputs(inputs)
    seeds = [config.seed + k for k in range(config.seeds)]
    ytr, yte, ysy = (task_labels(d.records, task) for d in (inputs.train, inputs.test, inputs.synthetic))
    # regime (a) depends on the real splits only: cached, so a second synthetic set against
    # the same real data trains two regimes, not three
    cache = FeatureCache(config.cache_dir, enabled=config.use_cache)
    key = cache_key(kind="utility-regime-a", version=1, train=inputs.train.content_hash,
                    test=inputs.test.content_hash, task=task, seeds=seeds, classifier=repr(cc),
                    labels=hashlib.sha256(ytr.tobytes() + b"|" + yte.tobytes()).hexdigest())
    hit = cache.load(key)
    scores, skipped = regime_scores(train_x, ytr, syn_x, ysy, test_x, seeds, cc,
                                    real_scores=None if hit is None else list(hit["scores"]))
    if hit is None and "real" in scores:
        cache.save(key, {"scores": np.stack(scores["real"])})
    summary = summarise_regimes(yte, scores, skipped, n_boot=config.n_boot, ci_method=config.ci_method,
                                seed=config.seed)
    mean_scores = {r: np.mean(s, axis=0) for r, s in scores.items()}
    inputs.shared["utility_scores"] = (task, yte, mean_scores)
    return {"available": True, "reason": None, "task": task, "task_definition": TASK_DEFINITIONS[task],
            "task_choice": why, "seeds": seeds,
            "classifier": {**dataclasses.asdict(cc), "steps": cc.steps_for(int((ytr >= 0).sum())),
                           "model": "3-block CNN (conv-BN-ReLU-maxpool) + global "
                           "average pooling, AdamW, one-cycle LR, class-weighted cross-entropy"},
            "n_train": {"real": int((ytr >= 0).sum()), "synthetic": int((ysy >= 0).sum())},
            "n_test": {"total": int((yte >= 0).sum()), "positive": int((yte == 1).sum()),
                       "negative": int((yte == 0).sum())},
            "ci": f"stratified bootstrap ({config.n_boot} replicates, {config.ci_method}) on seed-averaged scores",
            "paired_test": "DeLong test for correlated AUCs on the same real test images (seed-averaged scores)",
            **summary, "roc": _roc(yte, mean_scores)}


def _roc(y: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, Any]:
    from ...metrics.stats import class_problem, roc_curve_points

    known = y >= 0
    if class_problem(y[known]):
        return {}
    out = {}
    for regime, s in scores.items():
        fpr, tpr = roc_curve_points(y[known], s[known])
        out[regime] = {"fpr": fpr, "tpr": tpr}
    return out


def equity(inputs: EvalInputs) -> dict[str, Any]:
    """Subgroup AUCs of regimes (a) and (b) from the utility check's scores."""
    from ...metrics.equity import equity_analysis

    if "utility_scores" not in inputs.shared:
        return unavailable(inputs.shared.get("equity_reason") or "utility was not computed")
    task, yte, mean_scores = inputs.shared["utility_scores"]
    c = inputs.config
    eq = equity_analysis(inputs.test.records, yte, mean_scores, task, n_boot=c.n_boot, ci_method=c.ci_method,
                         seed=c.seed, min_per_class=c.min_subgroup_per_class)
    eq.update(available=True, reason=None, task=task)
    return eq


# -- card lines ------------------------------------------------------------------------
def _population_card(im: dict[str, Any]) -> str | None:
    parts = [f"{a} label TV {d['tv']:.3f}" for a, d in (im.get("labels") or {}).items()
             if isinstance(d, dict) and d.get("tv") is not None]
    ks = ((im.get("intensity") or {}).get("distances") or {}).get("ks")
    if ks is not None:
        parts.append(f"intensity KS {ks:.3f}")
    for key, f in (im.get("fidelity") or {}).items():
        if isinstance(f, dict) and f.get("available") and f.get("value") is not None:
            parts.append(f"{key} {f['value']:.4g}")
    return "Comparison with the real population: " + ", ".join(parts) if parts else None


def _utility_card(u: dict[str, Any]) -> str | None:
    if not u.get("available"):
        return None
    n, r = u["n_test"], u["regimes"]
    aucs = ", ".join(f"{v['label']} {v['value']:.3f}" for v in r.values() if v.get("available"))
    return (f"Utility measured on {n['total']} real test images ({n['positive']} positive) for the {u['task']} "
            f"task only: AUC {aucs}.")


def _memorisation_card(im: dict[str, Any]) -> str | None:
    mem = im.get("memorization") or {}
    return f"Near-copies of training images flagged: {mem.get('n_flagged', 0)}." if mem.get("available") else None


def _diversity_card(im: dict[str, Any]) -> str | None:
    d = im.get("diversity") or {}
    if d.get("ms_ssim_real") is None or d.get("ms_ssim_synthetic") is None:
        return None
    return f"Mean MS-SSIM between random pairs: real {d['ms_ssim_real']:.3f}, synthetic {d['ms_ssim_synthetic']:.3f}."


register(Check(key="governance", title="1. Governance record", step="1. Governance record", order=10,
               compute=governance, rule=V.governance_step, template="governance.html"))
register(Check(key="image_metrics", title="2. Comparison with the real population",
               step="2. Comparison with the real population", order=20, compute=image_metrics,
               rule=V.population_step, template="population.html", card=_population_card))
register(Check(key="conditioning", title="2b. Conditioning fidelity", step="2b. Conditioning fidelity", order=25,
               compute=conditioning, rule=V.conditioning_step, template="conditioning.html"))
register(Check(key="utility", title="3. Utility: training with and without synthetic images",
               step="3. Utility on independent real test images", order=30, compute=utility,
               rule=V.utility_step, template="utility.html", card=_utility_card))
register(Check(key="equity", title="4. Subgroup equity", step="4. Subgroup equity", order=40, compute=equity,
               rule=V.equity_step, template="equity.html"))
register(Check(key="image_metrics", title="Near-copies of training images (memorisation)",
               step="Near-copies of training patients", order=50, rule=V.memorisation_step,
               template="memorisation.html", card=_memorisation_card))
register(Check(key="image_metrics", title="Diversity", step="Diversity (no mode collapse)", order=60,
               rule=V.diversity_step, template="diversity.html", card=_diversity_card))
