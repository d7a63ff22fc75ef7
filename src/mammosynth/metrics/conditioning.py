"""Conditioning fidelity: does an image generated for "density D" look like density D?

For each axis the generator was conditioned on (density, finding, view), a classifier
(the CNN of :mod:`.utility`, one softmax head per axis) trained on the real training split
predicts the class of every synthetic image; its
agreement with the class the image was generated for (accuracy, Cohen's kappa, confusion
matrix) is shown next to the same classifier's agreement on the real test split (the
ceiling: synthetic images cannot be recognised better than real ones by this classifier).

Which axes: the generator's ``label_axes`` in the synthetic set's ``dataset.json``
settings (written by ``mammosynth generate``), else the keys of the records'
``generation["conditions"]``, else (sets from elsewhere) every axis whose labels take
more than one value in the synthetic manifest. The intended class is
``record.generation["conditions"][axis]`` when present, else the manifest label.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..data.prepared import PreparedDataset
from ..data.schema import CONDITION_AXES, ImageRecord, condition_value
from .stats import agreement, unavailable
from .utility import ClassifierConfig, predict_heads, train_classifier

#: accuracy on synthetic / accuracy on real test: >= PASS pass, >= WARN warn, else fail
RATIO_PASS, RATIO_WARN = 0.9, 0.75
#: below this Cohen's kappa on real test images the ceiling is too low to judge an axis (warn)
KAPPA_MIN = 0.2


def conditioned_axes(synthetic: PreparedDataset) -> tuple[list[str], str]:
    """The axes to check and where that list came from."""
    gen = (synthetic.info.get("settings") or {}).get("generator") or {}
    axes = gen.get("label_axes")
    if isinstance(axes, dict):
        return [a for a in CONDITION_AXES if a in axes], "generator label_axes in dataset.json settings"
    keys: set[str] = set()
    for r in synthetic:
        keys |= set(((r.generation or {}).get("conditions") or {}).keys())
    if keys:
        return [a for a in CONDITION_AXES if a in keys], "record generation conditions"
    varying = [a for a in CONDITION_AXES if len({condition_value(r, a) for r in synthetic} - {None}) > 1]
    return varying, "inferred: axes whose labels vary in the synthetic manifest (no generator settings)"


def intended_label(record: ImageRecord, axis: str) -> str | None:
    """The class an image was generated for on ``axis`` (None when unknown)."""
    cond = ((record.generation or {}).get("conditions") or {}).get(axis)
    if cond is not None:
        return str(cond)
    return condition_value(record, axis)


def _verdict(real: dict[str, Any], syn: dict[str, Any]) -> tuple[str, str]:
    real_acc, syn_acc = real.get("accuracy"), syn.get("accuracy")
    if real_acc is None or syn_acc is None:
        return "not computed", f"accuracy missing ({real.get('reason') or syn.get('reason')})"
    ratio = syn_acc / real_acc if real_acc > 0 else 0.0
    text = f"synthetic accuracy {syn_acc:.2f} vs real ceiling {real_acc:.2f} (ratio {ratio:.2f})"
    kappa = real.get("kappa")
    if kappa is None or kappa < KAPPA_MIN:
        return "warn", (f"{text}; the classifier barely recognises this axis on real images (kappa "
                        f"{'n/a' if kappa is None else f'{kappa:.2f}'} < {KAPPA_MIN}), so agreement is not informative")
    if ratio >= RATIO_PASS:
        return "pass", text
    return ("warn" if ratio >= RATIO_WARN else "fail"), text


def conditioning_fidelity(train_records: Sequence[ImageRecord], train_x: np.ndarray,
                          test_records: Sequence[ImageRecord], test_x: np.ndarray,
                          syn_records: Sequence[ImageRecord], syn_x: np.ndarray, axes: Sequence[str],
                          config: ClassifierConfig = ClassifierConfig(), seed: int = 0,
                          min_per_class: int = 2) -> dict[str, Any]:
    """Per axis: classifier agreement on real test (ceiling) and on synthetic images.

    One CNN with one softmax head per axis is trained on the real training split. Classes
    with fewer than ``min_per_class`` real training images are dropped (the classifier
    cannot learn them); test or synthetic images of dropped classes are counted in
    ``excluded``.
    """
    out: dict[str, Any] = {}
    heads: dict[str, list[str]] = {}
    for axis in axes:
        if axis not in CONDITION_AXES:
            raise ValueError(f"unknown condition axis {axis!r}; expected one of {tuple(CONDITION_AXES)}")
        counts = {c: 0 for c in CONDITION_AXES[axis]}
        for r in train_records:
            v = condition_value(r, axis)
            if v in counts:
                counts[v] += 1
        classes = [c for c in CONDITION_AXES[axis] if counts[c] >= min_per_class]
        if len(classes) < 2:
            out[axis] = unavailable(f"real train split has fewer than two {axis} classes with "
                                    f">= {min_per_class} images (counts {counts})", train_counts=counts)
        else:
            heads[axis] = classes
            out[axis] = {"train_counts": counts}
    if not heads:
        return out
    y = np.full((len(train_records), len(heads)), -1, dtype=np.int64)
    for h, (axis, classes) in enumerate(heads.items()):
        for i, r in enumerate(train_records):
            v = condition_value(r, axis)
            if v in classes:
                y[i, h] = classes.index(v)
    model = train_classifier(train_x, y if len(heads) > 1 else y[:, 0], [len(c) for c in heads.values()],
                             config, seed=seed, desc="conditioning classifier")
    probs = {"real": predict_heads(model, test_x), "synthetic": predict_heads(model, syn_x)}

    def judge(records: Sequence[ImageRecord], p: np.ndarray, labeller, axis: str, classes: list[str]) -> dict[str, Any]:
        labels = [labeller(r, axis) for r in records]
        keep = np.array([v in classes for v in labels], dtype=bool)
        if not keep.any():
            return unavailable(f"no images with a {axis} class the classifier knows ({classes})",
                               excluded=len(records))
        pred = p[keep].argmax(axis=1)
        res = agreement([v for v in labels if v in classes], [classes[k] for k in pred], classes)
        res["excluded"] = int((~keep).sum())
        res["chance"] = float(np.bincount([classes.index(v) for v in labels if v in classes]).max() / keep.sum())
        return res

    for h, (axis, classes) in enumerate(heads.items()):
        real = judge(test_records, probs["real"][h], condition_value, axis, classes)
        syn = judge(syn_records, probs["synthetic"][h], intended_label, axis, classes)
        status, why = _verdict(real, syn)
        kappa = real.get("kappa")
        out[axis].update(available=True, reason=None, classes=classes, real_test=real, synthetic=syn,
                         status=status, summary=why, informative=kappa is not None and kappa >= KAPPA_MIN)
    return out
