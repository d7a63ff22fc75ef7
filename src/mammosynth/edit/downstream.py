"""Whole-film measures of an edited set (``evaluate --edits``): density flip rate and utility.

Both train the downstream CNN of :mod:`mammosynth.metrics.utility` on the real films only
(the edited films are never seen by the density classifier; the utility regime (a) never
sees them either), at ``ClassifierConfig.input_size`` (evaluate's classifier: 64x40).

* **Density flip rate** (:func:`density_flip`): the conditioning-fidelity classifier
  (:func:`mammosynth.metrics.conditioning.conditioning_fidelity`, one softmax head over the
  ACR classes with at least two real training films) trained on the real training split's
  density labels; the flip rate is the fraction of density-edited films it assigns to the
  edit's target class, with a Wilson 95% CI, next to the same classifier's accuracy on the
  held-out real films (the real test split): its own reliability, without which a low flip
  rate cannot be read.
* **Utility** (:func:`edit_utility`): the regimes of :func:`mammosynth.metrics.utility.regime_scores`
  for the ``finding`` task (any finding vs none): (a) real training split, (b) real training
  split + the edited films, (c) the edited films only, equal optimiser steps, ``seeds``
  trainings each, scored on the whole real test split. Edited films of women in the test
  split are left out of (b) and (c): an edited film is its source outside the edit mask, so
  training on it and testing on the same woman would not be independent (the test split is
  kept whole rather than thinned, so every regime is scored on the same independent films).
  ΔAUC = AUC(b) - AUC(a) on the seed-averaged scores, with a paired stratified bootstrap CI,
  and DeLong's test.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..data.prepared import PreparedDataset
from ..data.schema import ImageRecord
from ..metrics.result import MetricResult
from ..metrics.stats import bootstrap_auc_diff_ci, unavailable, wilson_ci

EDITED_REGIMES = {"real": "(a) real train", "real+synthetic": "(b) real train + edited",
                  "synthetic": "(c) edited only"}
MODEL = "3-block CNN (conv-BN-ReLU-maxpool) + global average pooling, AdamW, one-cycle LR, class-weighted " \
        "cross-entropy (mammosynth.metrics.utility)"


def films(ds: PreparedDataset, records: Sequence[ImageRecord], size: tuple[int, int]) -> np.ndarray:
    """The films of ``records`` as float32 [N, H, W] in [0, 1] at ``size`` (anti-aliased)."""
    from .validate import _gray, _resize

    if not records:
        return np.zeros((0, *size), dtype=np.float32)
    return np.stack([_resize(_gray(ds.image(r)), size) for r in records])


def _proportion(successes: int, n: int, **details: Any) -> dict[str, Any]:
    if n < 1:
        return unavailable("no film to score", **details)
    return MetricResult.of(successes / n, wilson_ci(successes, n), n=n, successes=successes,
                           ci_method="Wilson score", **details).to_dict()


def density_flip(edited: PreparedDataset, train: PreparedDataset | None, test: PreparedDataset | None,
                 config: Any) -> dict[str, Any]:
    """Flip rate of the density edits under a density classifier trained on real films only."""
    from ..metrics.conditioning import conditioning_fidelity

    recs = [r for r in edited.records if (r.generation or {}).get("operation") == "density"]
    if not recs:
        return unavailable("no density edits in the set")
    if train is None:
        return unavailable("no real training split to train the density classifier on")
    cc, size = config.density_classifier, config.density_classifier.input_size
    test_recs = list(test.records) if test is not None else []
    res = conditioning_fidelity(train.records, films(train, train.records, size), test_recs,
                                films(test, test_recs, size) if test is not None else films(train, [], size),
                                recs, films(edited, recs, size), ["density"], cc, seed=config.seed)["density"]
    if not res.get("available"):
        return unavailable(f"density classifier not trained: {res.get('reason')}",
                           train_counts=res.get("train_counts"))
    syn, real = res["synthetic"], res["real_test"]
    hits = int(np.trace(syn["confusion"])) if syn.get("available") else 0
    flip = _proportion(hits, syn.get("n", 0), excluded=syn.get("excluded", len(recs)),
                       confusion=syn.get("confusion"), kappa=syn.get("kappa")) if syn.get("available") else \
        unavailable(syn.get("reason") or "no edit targets a class the classifier knows",
                    excluded=syn.get("excluded", len(recs)))
    if real.get("available"):
        acc = _proportion(int(np.trace(real["confusion"])), real["n"], kappa=real.get("kappa"),
                          confusion=real.get("confusion"), chance=real.get("chance"))
    else:
        acc = unavailable(("no real test split: " if test is None else "") + (real.get("reason") or "not scored"))
    return {"available": True, "reason": None, "classes": res["classes"], "train_counts": res["train_counts"],
            "flip_rate": flip, "real_accuracy": acc, "informative": res.get("informative", False),
            "trained_on": "the real training split's density labels (never an edited film)",
            "heldout": "the real test split" if test is not None else None,
            "classifier": {"input_size": list(size), "steps": cc.steps_for(len(train)), "model": MODEL}}


def edit_utility(edited: PreparedDataset, train: PreparedDataset | None, test: PreparedDataset | None,
                 config: Any) -> dict[str, Any]:
    """ΔAUC of a finding-vs-none CNN trained with vs without the edited films (see the module docstring)."""
    from ..metrics.utility import regime_scores, summarise_regimes, task_labels

    if train is None or test is None:
        return unavailable("needs the real training and test splits (the utility step's independent real films)")
    cc, task = config.utility_classifier, "finding"
    women = {r.patient_id for r in test.records}
    used = [r for r in edited.records if r.patient_id not in women]
    ytr, yed, yte = (task_labels(recs, task) for recs in (train.records, used, test.records))
    counts = {"n_test": len(test.records), "n_edited_used": len(used),
              "n_edited_excluded": len(edited.records) - len(used)}
    size = cc.input_size
    seeds = [config.seed + k for k in range(config.utility_seeds)]
    scores, skipped = regime_scores(films(train, train.records, size), ytr, films(edited, used, size),
                                    yed, films(test, test.records, size), seeds, cc)
    summary = summarise_regimes(yte, scores, skipped, n_boot=config.n_boot, seed=config.seed)
    regimes = {}
    for key, label in EDITED_REGIMES.items():
        r = dict(summary["regimes"][key], label=label)
        regimes[{"real+synthetic": "real+edited", "synthetic": "edited"}.get(key, key)] = r
    if "real" in scores and "real+synthetic" in scores:
        delta = bootstrap_auc_diff_ci(yte, np.mean(scores["real"], axis=0), np.mean(scores["real+synthetic"], axis=0),
                                      n_boot=config.n_boot, seed=config.seed)
    else:
        delta = unavailable(skipped.get("real") or skipped.get("real+synthetic") or "regime (a) or (b) not trained")
    paired = dict(summary["paired_b_vs_a"], compared="(b) real+edited minus (a) real")
    return {"available": True, "reason": None, "task": task, "task_definition": "any finding (positive) vs none",
            "seeds": seeds, **counts, "n_train": {"real": len(ytr), "edited": len(yed)},
            "test": "the real test split (edited films of its women left out of training)",
            "regimes": regimes, "delta_auc": delta, "paired_b_vs_a": paired,
            "classifier": {"input_size": list(size), "steps": cc.steps_for(len(ytr)), "model": MODEL}}
