"""Validation of an edited set (``mammosynth evaluate --edits EDITED``).

* **Unchanged outside the mask**: max |edited - source| over the pixels outside each film's
  edit mask, per film (must be 0: the edit writes only inside its mask).
* **Insertion realism**: a small CNN trained to tell inserted-lesion patches from real-lesion
  patches of the real set (square crops 1.5x the finding's box, at least ``min_patch_px``,
  resized to ``patch_px``), out-of-fold scores over ``folds`` stratified folds, AUC with a
  stratified bootstrap CI. 0.5: indistinguishable.
* **Lesion presence**: the same CNN as the utility step (:mod:`mammosynth.metrics.utility`),
  trained on the real training films (finding vs none) at ``presence_size``; its score on
  each source film before and after the edit, and on the real normal films (the level a
  removal should reach).
* **Removal**: the after-removal presence scores against the held-out real normal films'
  (test split; the in-sample training ones when there is none): mean difference with a
  bootstrap CI and AUC (0.5: the films score like normal ones); and the **detectability of
  the removal region**: patches at the removed findings' boxes in the edited films vs
  patches of breast tissue of normal real films (same sizes, crops and resizing as the
  insertion-realism patches, ``normal_per_removed`` per region), the same out-of-fold CNN,
  AUC with a bootstrap CI (0.5: indistinguishable from normal tissue).
* **Density**: breast-mask Dice between source and result (>= 0.95: the outline is kept),
  the change in percent dense area with a CI, and the flip rate of a density classifier
  trained on real films only (:mod:`.downstream`) next to its accuracy on held-out real films.
* **Utility**: a finding-vs-none CNN trained on the real training split with vs without the
  edited films, tested on independent real test films: ΔAUC with a paired bootstrap CI
  (:mod:`.downstream`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.prepared import PreparedDataset
from ..data.schema import ImageRecord
from ..io.images import read_image
from ..metrics.result import MetricResult
from ..metrics.stats import bootstrap_auc_ci, bootstrap_mean_diff_ci, unavailable
from ..metrics.utility import ClassifierConfig, predict_proba, train_classifier


@dataclass(frozen=True)
class EditValidationConfig:
    """Settings of :func:`edit_metrics` (``evaluate --edits`` uses these defaults)."""

    patch_px: int = 32
    min_patch_px: int = 16
    folds: int = 5
    n_boot: int = 1000
    seed: int = 0
    min_per_class: int = 5
    patch_classifier: ClassifierConfig = field(default_factory=lambda: ClassifierConfig(
        input_size=(32, 32), min_steps=300, epochs=20))
    presence_size: tuple[int, int] = (128, 80)  # lesions vanish at the utility step's 64x40
    presence_classifier: ClassifierConfig = field(default_factory=lambda: ClassifierConfig(input_size=(128, 80)))
    presence: bool = True
    normal_per_removed: int = 2  # removal detectability: normal-tissue patches per removal region
    #: the density classifier of the flip rate and the utility CNN (evaluate passes its own
    #: ``classifier``); both are trained on real films only
    density_classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    utility_classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    utility_seeds: int = 3  # trainings per utility regime (seeds seed .. seed+utility_seeds-1)
    utility: bool = True


def _gray(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / (65535.0 if image.dtype == np.uint16 else 255.0)


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    return resize(x, size, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)


def patch(image: np.ndarray, box: Sequence[float], config: EditValidationConfig) -> np.ndarray:
    """A square crop 1.5x the box's longer side around its centre (zero-padded), at ``patch_px``."""
    x0, y0, x1, y1 = box
    side = max(config.min_patch_px, int(round(1.5 * max(x1 - x0, y1 - y0))))
    cy, cx = int(round((y0 + y1) / 2)), int(round((x0 + x1) / 2))
    g = np.pad(_gray(image), side)
    r0, c0 = cy - side // 2 + side, cx - side // 2 + side
    return _resize(g[r0:r0 + side, c0:c0 + side], (config.patch_px, config.patch_px))


def inserted_findings(record: ImageRecord) -> list[int]:
    """Indices of the findings an edit inserted."""
    return [k for k, f in enumerate(record.findings) if "inserted_by" in (f.source_codes or {})]


class Sources:
    """Source films of an edited set: from the given real set, else the dataset each record names."""

    def __init__(self, real: PreparedDataset | None):
        self._sets: dict[str, PreparedDataset | None] = {}
        self._index: dict[str, tuple[PreparedDataset, ImageRecord]] = {}
        if real is not None:
            full = PreparedDataset(real.root)  # every split: an edited film may come from any
            self._add(full)

    def _add(self, ds: PreparedDataset) -> None:
        for r in ds.records:
            self._index.setdefault(r.image_id, (ds, r))

    def find(self, record: ImageRecord) -> tuple[PreparedDataset, ImageRecord] | None:
        gen = record.generation or {}
        sid = gen.get("source_image_id")
        if sid not in self._index and gen.get("source_dataset") and gen["source_dataset"] not in self._sets:
            path = gen["source_dataset"]
            try:
                ds = PreparedDataset(path)
            except (FileNotFoundError, ValueError):
                ds = None
            self._sets[path] = ds
            if ds is not None:
                self._add(ds)
        return self._index.get(sid)


def unchanged_outside(edited: PreparedDataset, sources: Sources) -> dict[str, Any]:
    """Per film: max |edited - source| outside the edit mask (must be 0)."""
    rows, missing = [], []
    for rec in edited.records:
        gen = rec.generation or {}
        found = sources.find(rec)
        mask_file = (gen.get("edit") or {}).get("edit_mask")
        if found is None or not mask_file:
            missing.append(rec.image_id)
            continue
        src_ds, src_rec = found
        a, b = edited.image(rec).astype(np.int64), src_ds.image(src_rec).astype(np.int64)
        mask = read_image(edited.root / mask_file)[0] > 0
        if a.shape != b.shape or mask.shape != a.shape:
            rows.append({"image_id": rec.image_id, "source_image_id": src_rec.image_id, "max_abs_diff": None,
                         "reason": f"shapes differ: edited {a.shape}, source {b.shape}, mask {mask.shape}"})
            continue
        diff = np.abs(a - b)[~mask]
        rows.append({"image_id": rec.image_id, "source_image_id": src_rec.image_id,
                     "max_abs_diff": int(diff.max()) if diff.size else 0, "edit_pixels": int(mask.sum()),
                     "max_abs_diff_inside": int(np.abs(a - b)[mask].max()) if mask.any() else 0})
    if not rows:
        return unavailable("no edited film could be matched with its source film (pass the source set as --real)",
                           missing=missing)
    vals = [r["max_abs_diff"] for r in rows]
    bad = [r["image_id"] for r in rows if r["max_abs_diff"] != 0]
    return {"available": True, "reason": None, "n_images": len(rows), "max_abs_diff": max(
        (v for v in vals if v is not None), default=None), "n_changed_outside": len(bad), "changed_outside": bad,
        "missing_source": missing, "per_image": rows}


def _oof_scores(x: np.ndarray, y: np.ndarray, config: EditValidationConfig,
                what: str = "inserted-vs-real patches") -> np.ndarray:
    """Out-of-fold P(class 1) from ``folds`` stratified folds of the patch CNN."""
    rng = np.random.default_rng(config.seed)
    fold = np.empty(len(y), dtype=int)
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == cls))
        fold[idx] = np.arange(len(idx)) % config.folds
    scores = np.zeros(len(y))
    for k in range(config.folds):
        test = fold == k
        if not test.any():
            continue
        model = train_classifier(x[~test], y[~test], 2, config.patch_classifier, seed=config.seed + k,
                                 desc=f"{what}, fold {k + 1}")
        scores[test] = predict_proba(model, x[test])[:, 1]
    return scores


def insertion_realism(edited: PreparedDataset, real: PreparedDataset | None,
                      config: EditValidationConfig) -> dict[str, Any]:
    """AUC of a CNN telling inserted-lesion patches from real-lesion patches (0.5: indistinguishable)."""
    if real is None:
        return unavailable("no real set to take real lesions from")
    ins = [patch(edited.image(r), r.findings[k].box, config) for r in edited.records for k in inserted_findings(r)]
    real_recs = [r for r in real.records if any(f.box is not None for f in r.findings)]
    reals = [patch(real.image(r), f.box, config) for r in real_recs for f in r.findings if f.box is not None]
    counts = {"n_inserted": len(ins), "n_real": len(reals)}
    if min(len(ins), len(reals)) < config.min_per_class:
        return unavailable(f"needs at least {config.min_per_class} inserted and {config.min_per_class} real lesion "
                           f"patches with boxes (have {len(ins)} and {len(reals)})", **counts)
    x = np.stack(ins + reals)
    y = np.array([1] * len(ins) + [0] * len(reals))
    s = _oof_scores(x, y, config)
    auc = bootstrap_auc_ci(y, s, n_boot=config.n_boot, seed=config.seed)
    return {"available": True, "reason": None, **counts, "auc": auc, "patch_px": config.patch_px,
            "folds": config.folds}


def removed_box(edited: PreparedDataset, record: ImageRecord) -> tuple[float, float, float, float] | None:
    """The box of the finding a removal dropped (``edit.removed`` in its record), else the
    bounding box of its edit mask; None when neither is there."""
    ed = (record.generation or {}).get("edit") or {}
    box = (ed.get("removed") or {}).get("box")
    if box is not None:
        x0, y0, x1, y1 = (float(v) for v in box)
        return x0, y0, x1, y1
    mask_file = ed.get("edit_mask")
    if not mask_file or not (edited.root / mask_file).is_file():
        return None
    m = read_image(edited.root / mask_file)[0] > 0
    if not m.any():
        return None
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def normal_patches(real: PreparedDataset, sizes: Sequence[tuple[float, float]], n: int,
                   config: EditValidationConfig) -> list[np.ndarray]:
    """Patches of breast tissue from up to ``n`` of the real set's normal films (seeded choice),
    one per film: the box sizes cycle through ``sizes`` (the removed findings' (w, h)), the
    centre is a random breast pixel at least half a patch from the skin line (any breast
    pixel when the breast is too thin), cropped and resized like every other patch."""
    from scipy import ndimage

    from .film import film_breast

    normals = [r for r in real.records if not r.findings]
    rng = np.random.default_rng(config.seed)
    out: list[np.ndarray] = []
    for j, i in enumerate(rng.permutation(len(normals))[:n]):
        image = real.image(normals[int(i)])
        breast = film_breast(image)
        if not breast.any():
            continue
        w, h = sizes[j % len(sizes)]
        side = max(config.min_patch_px, 1.5 * max(w, h))
        inner = ndimage.distance_transform_edt(breast) >= side / 2
        cand = np.argwhere(inner if inner.any() else breast)
        cy, cx = cand[rng.integers(len(cand))]
        out.append(patch(image, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), config))
    return out


def removal_detectability(edited: PreparedDataset, real: PreparedDataset | None,
                          config: EditValidationConfig) -> dict[str, Any]:
    """AUC of a CNN telling the removed findings' regions (in the edited films) from breast
    tissue of normal real films (0.5: the removal left nothing a classifier can find)."""
    if real is None:
        return unavailable("no real set to take normal tissue from")
    removed, sizes, no_box = [], [], []
    for rec in edited.records:
        if (rec.generation or {}).get("operation") != "remove":
            continue
        box = removed_box(edited, rec)
        if box is None:
            no_box.append(rec.image_id)
            continue
        removed.append(patch(edited.image(rec), box, config))
        sizes.append((box[2] - box[0], box[3] - box[1]))
    normal = normal_patches(real, sizes, config.normal_per_removed * len(removed), config) if removed else []
    counts = {"n_removed": len(removed), "n_normal": len(normal), "without_box": no_box}
    if min(len(removed), len(normal)) < config.min_per_class:
        return unavailable(f"needs at least {config.min_per_class} removal regions and {config.min_per_class} "
                           f"normal-tissue patches (have {len(removed)} and {len(normal)})", **counts)
    x = np.stack(removed + normal)
    y = np.array([1] * len(removed) + [0] * len(normal))
    s = _oof_scores(x, y, config, "removal-region-vs-normal patches")
    auc = bootstrap_auc_ci(y, s, n_boot=config.n_boot, seed=config.seed)
    return {"available": True, "reason": None, **counts, "auc": auc, "patch_px": config.patch_px,
            "folds": config.folds, "normal_per_removed": config.normal_per_removed}


def lesion_presence(edited: PreparedDataset, train: PreparedDataset | None, sources: Sources,
                    config: EditValidationConfig, test: PreparedDataset | None = None) -> dict[str, Any]:
    """Score of a finding-vs-none CNN trained on real films: source films before, edited after;
    for removals, the after-scores against the real normal films' (:func:`removed_vs_normal`)."""
    if not config.presence:
        return unavailable("switched off")
    if train is None:
        return unavailable("no real training split to train the lesion-presence classifier on")
    y = np.array([int(bool(r.findings)) for r in train.records])
    if min(int(y.sum()), int((1 - y).sum())) < 2:
        return unavailable("the real training split needs films with and without findings")
    size = config.presence_size
    x = np.stack([_resize(_gray(train.image(r)), size) for r in train.records])
    model = train_classifier(x, y, 2, config.presence_classifier, seed=config.seed, desc="lesion presence")
    pairs = [(rec, sources.find(rec)) for rec in edited.records]
    pairs = [(rec, f) for rec, f in pairs if f is not None]
    if not pairs:
        return unavailable("no edited film could be matched with its source film")
    before = predict_proba(model, np.stack([_resize(_gray(ds.image(r)), size) for _, (ds, r) in pairs]))[:, 1]
    after = predict_proba(model, np.stack([_resize(_gray(edited.image(rec)), size) for rec, _ in pairs]))[:, 1]
    normal = predict_proba(model, x[y == 0])[:, 1]
    lesion = predict_proba(model, x[y == 1])[:, 1]
    held = [r for r in test.records if not r.findings] if test is not None else []
    heldout = predict_proba(model, np.stack([_resize(_gray(test.image(r)), size) for r in held]))[:, 1] \
        if held else None
    removed = np.array([(rec.generation or {}).get("operation") == "remove" for rec, _ in pairs])
    extra = {}
    if removed.any():
        extra["removed_vs_normal"] = removed_vs_normal(after[removed], heldout, normal, config)
    return {"available": True, "reason": None, "n": len(pairs), "before_mean": float(before.mean()),
            "after_mean": float(after.mean()), "delta_mean": float((after - before).mean()),
            "fraction_increased": float((after > before).mean()),
            "real_normal_mean": float(normal.mean()), "real_lesion_mean": float(lesion.mean()),
            "heldout_normal_mean": None if heldout is None else float(heldout.mean()),
            "note": "scores on the real training films are in-sample (the classifier saw them): levels, not tests",
            **extra,
            "per_image": [{"image_id": rec.image_id, "before": float(b), "after": float(a)}
                          for (rec, _), b, a in zip(pairs, before, after)]}


def removed_vs_normal(after: np.ndarray, heldout: np.ndarray | None, train_normal: np.ndarray,
                      config: EditValidationConfig) -> dict[str, Any]:
    """Lesion-presence scores of the films after removal against real normal films': the
    held-out (test split) normal films when there are any, else the training ones (in-sample,
    said so). The mean difference with a bootstrap CI (0: at the normal level) and the AUC of
    after-removal vs normal (0.5: a removal scores like a normal film)."""
    held = heldout is not None and len(heldout) > 0
    ref = heldout if held else train_normal
    if len(ref) == 0:
        return unavailable("no real normal film to compare with")
    diff = float(after.mean() - ref.mean())
    ci = bootstrap_mean_diff_ci(after, ref, n_boot=config.n_boot, seed=config.seed)
    y = np.array([1] * len(after) + [0] * len(ref))
    auc = bootstrap_auc_ci(y, np.concatenate([after, ref]), n_boot=config.n_boot, seed=config.seed)
    return {"available": True, "reason": None, "n_removed": len(after), "n_normal": len(ref),
            "reference": "held-out real normal films (test split)" if held else
            "real normal training films (in-sample: the classifier saw them)",
            "after_mean": float(after.mean()), "normal_mean": float(ref.mean()),
            "difference": MetricResult.of(diff, ci, what="mean after-removal score minus mean normal-film score",
                                          method="two-sample percentile bootstrap").to_dict(),
            "auc": auc}


def edit_metrics(edited: PreparedDataset | str | Path, real: PreparedDataset | None = None,
                 train: PreparedDataset | None = None,
                 config: EditValidationConfig = EditValidationConfig(),
                 test: PreparedDataset | None = None) -> dict[str, Any]:
    """Every validation measure of an edited set (JSON-ready).

    ``real``: the source films and real lesions / normal tissue; ``train``: the real training
    split (lesion-presence, density and utility classifiers); ``test``: the real test split
    (held-out normal films, the density classifier's own accuracy, the utility test films).
    """
    from .downstream import density_flip, edit_utility

    edited = edited if isinstance(edited, PreparedDataset) else PreparedDataset(edited)
    sources = Sources(real)
    ops = sorted({(r.generation or {}).get("operation") or "unknown" for r in edited.records})
    out: dict[str, Any] = {"available": True, "reason": None, "path": str(edited.root), "n_images": len(edited),
                           "operations": ops, "unchanged_outside": unchanged_outside(edited, sources)}
    if "insert" in ops:
        out["insertion_realism"] = insertion_realism(edited, real, config)
    if "insert" in ops or "remove" in ops:  # removal: the score should fall to the normal films' level
        out["lesion_presence"] = lesion_presence(edited, train, sources, config, test)
    out["removal"] = removal_detectability(edited, real, config) if "remove" in ops else \
        unavailable("no removal edits in the set")
    if "density" in ops:
        out["density"] = density_measures(edited, sources, config)
        if out["density"].get("available"):
            out["density"]["flip"] = density_flip(edited, train, test, config)
    else:
        out["density"] = unavailable("no density edits in the set")
    out["utility"] = edit_utility(edited, train, test, config) if config.utility else unavailable("switched off")
    return out


def density_measures(edited: PreparedDataset, sources: Sources,
                     config: EditValidationConfig = EditValidationConfig()) -> dict[str, Any]:
    """Per density edit: breast-mask Dice source vs result (outline kept: >= 0.95) and the
    change in percent dense area: the fraction of breast pixels above the **source film's Otsu
    level** inside its breast mask, that same level applied to the result (so a brighter,
    denser result counts more pixels as dense). Mean change with a bootstrap CI, and the
    fraction of edits whose change goes the target's way (towards D when the target is above
    the source class, towards A when below). The flip rate is :func:`.downstream.density_flip`."""
    from skimage.filters import threshold_otsu

    from ..data.schema import DENSITIES
    from ..metrics.stats import bootstrap_mean_ci
    from .film import film_breast

    rows = []
    for rec in edited.records:
        found = sources.find(rec)
        if (rec.generation or {}).get("operation") != "density" or found is None:
            continue
        ds, srec = found
        a, b = ds.image(srec), edited.image(rec)
        ma, mb = film_breast(a), film_breast(b)
        dice = 2 * float((ma & mb).sum()) / max(float(ma.sum() + mb.sum()), 1.0)
        level = threshold_otsu(a[ma]) if ma.sum() > 1 else 0
        pda_a = float((a[ma] > level).mean()) if ma.any() else 0.0
        pda_b = float((b[mb] > level).mean()) if mb.any() else 0.0
        rows.append({"image_id": rec.image_id, "from": srec.density, "to": rec.density, "breast_dice": dice,
                     "pda_before": pda_a, "pda_after": pda_b})
    if not rows:
        return unavailable("no density edit could be matched with its source film")
    dice = [r["breast_dice"] for r in rows]
    delta = np.array([r["pda_after"] - r["pda_before"] for r in rows])
    rank = {c: k for k, c in enumerate(DENSITIES[:4])}
    way = [np.sign(rank[r["to"]] - rank[r["from"]]) * d for r, d in zip(rows, delta)
           if r["from"] in rank and r["to"] in rank and r["from"] != r["to"]]
    pda = MetricResult.of(float(delta.mean()), bootstrap_mean_ci(delta, n_boot=config.n_boot, seed=config.seed),
                          what="mean change in percent dense area (result minus source), fraction of the breast",
                          threshold="Otsu level of the source film inside its breast mask, applied to both",
                          ci_method="percentile bootstrap",
                          fraction_toward_target=float(np.mean([w > 0 for w in way])) if way else None,
                          n_with_direction=len(way))
    return {"available": True, "reason": None, "n": len(rows), "breast_dice_min": min(dice),
            "breast_dice_mean": float(np.mean(dice)), "dice_below_0.95": sum(d < 0.95 for d in dice),
            "pda_change_mean": float(delta.mean()), "pda_change": pda.to_dict(), "per_image": rows}
