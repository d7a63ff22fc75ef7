"""Statistics for evaluation: ROC AUC, stratified bootstrap CIs, DeLong tests, kappa.

Every function returns plain Python numbers (JSON-serialisable) and never NaN: a metric
that cannot be computed is reported as ``{"value": None, "available": False, "reason": ...}``
(:func:`unavailable`), or raises ``ValueError`` naming the reason.

Methods
-------
* AUC: Mann-Whitney U statistic with mid-ranks (ties count one half).
* Bootstrap CI: stratified resampling (positives and negatives resampled separately, so
  every replicate has both classes), percentile or BCa (Efron 1987; the acceleration from
  the jackknife, computed exactly from DeLong placement values).
* DeLong test for two correlated AUCs on the same cases (DeLong et al. 1988) with the fast
  mid-rank algorithm of Sun & Xu (2014). Identical score vectors give z = 0, p = 1.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy.stats import norm, rankdata

CI_METHODS = ("percentile", "bca")


def unavailable(reason: str, **extra: Any) -> dict[str, Any]:
    """The standard record for a metric that was not computed (``MetricResult.unavailable(...).to_dict()``)."""
    from .result import MetricResult

    return MetricResult.unavailable(reason, **extra).to_dict()


def _binary(y: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or len(y) != len(s):
        raise ValueError(f"labels and scores must be 1-D of equal length, got {y.shape} and {s.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (negative) or 1 (positive)")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinity")
    return y.astype(bool), s


def class_problem(y: Sequence[int] | np.ndarray, min_per_class: int = 1) -> str | None:
    """Why an AUC cannot be computed on labels ``y`` (None when it can)."""
    y = np.asarray(y)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        have = "positive" if n_pos else "negative"
        return f"only one class in the test set ({max(n_pos, n_neg)} {have}, 0 of the other): AUC undefined"
    if n_pos < min_per_class or n_neg < min_per_class:
        return f"too few cases ({n_pos} positive, {n_neg} negative; need {min_per_class} of each)"
    return None


def roc_auc(y: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve (probability a positive outranks a negative; ties = 1/2).

    Raises ValueError when ``y`` holds a single class (the AUC is undefined, not NaN).
    """
    yb, s = _binary(y, scores)
    problem = class_problem(yb.astype(int))
    if problem:
        raise ValueError(problem)
    m, n = int(yb.sum()), int((~yb).sum())
    r = rankdata(s)
    return float((r[yb].sum() - m * (m + 1) / 2.0) / (m * n))


def roc_curve_points(y: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> tuple[list[float], list[float]]:
    """(false-positive rates, true-positive rates) of the empirical ROC curve."""
    from sklearn.metrics import roc_curve

    yb, s = _binary(y, scores)
    fpr, tpr, _ = roc_curve(yb.astype(int), s)
    return [float(v) for v in fpr], [float(v) for v in tpr]


def _placements(yb: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong placement values: per positive, fraction of negatives below it (V10); per
    negative, fraction of positives above it (V01). Both average to the AUC."""
    pos, neg = s[yb], s[~yb]
    m, n = len(pos), len(neg)
    tz = rankdata(np.concatenate([pos, neg]))
    v10 = (tz[:m] - rankdata(pos)) / n
    v01 = 1.0 - (tz[m:] - rankdata(neg)) / m
    return v10, v01


def _bootstrap_aucs(yb: np.ndarray, s: np.ndarray, n_boot: int, rng: np.random.Generator,
                    chunk: int = 256) -> np.ndarray:
    """AUCs of ``n_boot`` stratified bootstrap replicates (vectorised over replicates)."""
    pos, neg = s[yb], s[~yb]
    m, n = len(pos), len(neg)
    out = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        sp = pos[rng.integers(0, m, size=(b, m))]
        sn = neg[rng.integers(0, n, size=(b, n))]
        ranks = rankdata(np.concatenate([sp, sn], axis=1), axis=1)
        out[start:start + b] = (ranks[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    return out


def bootstrap_auc_ci(y: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, n_boot: int = 1000,
                     level: float = 0.95, method: str = "percentile", seed: int = 0) -> dict[str, Any]:
    """AUC with a stratified bootstrap confidence interval.

    Returns ``{"value", "ci_low", "ci_high", "level", "method", "n_boot", "n_pos", "n_neg",
    "available": True, "reason": None}``; or :func:`unavailable` (with counts) when the
    labels hold one class.
    """
    if method not in CI_METHODS:
        raise ValueError(f"CI method must be one of {CI_METHODS}, got {method!r}")
    if not (0.0 < level < 1.0):
        raise ValueError(f"CI level must be in (0, 1), got {level}")
    if n_boot < 20:
        raise ValueError(f"n_boot must be >= 20, got {n_boot}")
    yb, s = _binary(y, scores)
    counts = {"n_pos": int(yb.sum()), "n_neg": int((~yb).sum())}
    problem = class_problem(yb.astype(int))
    if problem:
        return unavailable(problem, **counts)
    auc = roc_auc(yb.astype(int), s)
    rng = np.random.default_rng(seed)
    boots = _bootstrap_aucs(yb, s, n_boot, rng)
    alpha = 1.0 - level
    if method == "percentile" or np.ptp(boots) == 0.0:
        lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    else:
        lo, hi = _bca_interval(yb, s, auc, boots, alpha)
    return {"value": auc, "ci_low": float(lo), "ci_high": float(hi), "level": level, "method": method,
            "n_boot": n_boot, **counts, "available": True, "reason": None}


def _bca_interval(yb: np.ndarray, s: np.ndarray, auc: float, boots: np.ndarray, alpha: float) -> tuple[float, float]:
    """Bias-corrected and accelerated percentile interval (Efron 1987)."""
    m, n = int(yb.sum()), int((~yb).sum())
    prop = (np.sum(boots < auc) + 0.5 * np.sum(boots == auc)) / len(boots)
    prop = min(max(prop, 1.0 / (len(boots) + 1)), 1.0 - 1.0 / (len(boots) + 1))
    z0 = norm.ppf(prop)
    v10, v01 = _placements(yb, s)
    # exact leave-one-out AUCs: drop one positive, or one negative
    jack = np.concatenate([(m * auc - v10) / (m - 1) if m > 1 else np.array([]),
                           (n * auc - v01) / (n - 1) if n > 1 else np.array([])])
    d = jack.mean() - jack
    denom = 6.0 * (np.sum(d ** 2) ** 1.5)
    a = float(np.sum(d ** 3) / denom) if denom > 0 else 0.0
    zs = norm.ppf([alpha / 2, 1 - alpha / 2])
    adj = norm.cdf(z0 + (z0 + zs) / (1 - a * (z0 + zs)))
    lo, hi = np.quantile(boots, adj)
    return float(lo), float(hi)


def delong_variance(y: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """DeLong estimate of the variance of the AUC."""
    yb, s = _binary(y, scores)
    problem = class_problem(yb.astype(int), min_per_class=2)
    if problem:
        raise ValueError(problem)
    v10, v01 = _placements(yb, s)
    return float(np.var(v10, ddof=1) / len(v10) + np.var(v01, ddof=1) / len(v01))


def delong_test(y: Sequence[int] | np.ndarray, scores_a: Sequence[float] | np.ndarray,
                scores_b: Sequence[float] | np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """DeLong test of H0: AUC(b) == AUC(a), both scored on the same cases.

    Returns ``{"auc_a", "auc_b", "diff" (b - a), "se", "z", "p_value", "ci_low", "ci_high"
    (of the difference), "method": "delong", "note", "available", "reason"}``. Identical scores
    give diff 0, z 0, p 1; different AUCs with zero variance (perfect separation against
    perfect inversion) give z None, p 0 and a note; a single-class label vector gives
    :func:`unavailable`.
    """
    yb, sa = _binary(y, scores_a)
    _, sb = _binary(y, scores_b)
    problem = class_problem(yb.astype(int), min_per_class=2)
    if problem:
        return unavailable(problem, method="delong", p_value=None)
    a10, a01 = _placements(yb, sa)
    b10, b01 = _placements(yb, sb)
    auc_a, auc_b = float(a10.mean()), float(b10.mean())
    m, n = len(a10), len(a01)
    s10 = np.cov(np.vstack([a10, b10]), ddof=1)
    s01 = np.cov(np.vstack([a01, b01]), ddof=1)
    cov = s10 / m + s01 / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = auc_b - auc_a
    zq = float(norm.ppf(0.5 + level / 2))
    note = None
    if var <= 1e-15:
        se = 0.0
        if abs(diff) <= 1e-12:
            z, p = 0.0, 1.0
        else:  # e.g. one scorer separates perfectly, the other perfectly inverts: no sampling spread
            z, p = None, 0.0
            note = "zero DeLong variance (degenerate, perfectly separated scores): the difference is taken as significant"
    else:
        se = math.sqrt(var)
        z = diff / se
        p = float(2 * norm.sf(abs(z)))
    return {"auc_a": auc_a, "auc_b": auc_b, "diff": diff, "se": se, "z": None if z is None else float(z),
            "p_value": min(1.0, p), "ci_low": diff - zq * se, "ci_high": diff + zq * se, "level": level,
            "method": "delong", "note": note, "available": True, "reason": None}


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given): controls the chance of any
    false "significant" among the family at the nominal level, without assuming the
    tests are independent (subgroups of one test set overlap across axes)."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p-values must be a 1-D sequence of numbers in [0, 1], got {p_values!r}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out.tolist()


def mean_spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean, sample SD, min and max of the available values (None ignored; count kept)."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    arr = np.asarray(vals)
    return {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "min": float(arr.min()), "max": float(arr.max()), "n": len(vals)}


def agreement(intended: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, Cohen's kappa and confusion matrix (rows intended, columns predicted).

    Kappa is None with a reason when it is undefined (expected agreement of 1, e.g. one
    class only in both vectors).
    """
    intended, predicted = list(intended), list(predicted)
    if len(intended) != len(predicted):
        raise ValueError(f"intended and predicted differ in length ({len(intended)} vs {len(predicted)})")
    if not intended:
        return unavailable("no images with this label")
    idx = {c: i for i, c in enumerate(classes)}
    unknown = {v for v in intended + predicted if v not in idx}
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} not among classes {list(classes)}")
    k = len(classes)
    cm = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(intended, predicted):
        cm[idx[t], idx[p]] += 1
    total = cm.sum()
    po = float(np.trace(cm) / total)
    pe = float((cm.sum(axis=1) * cm.sum(axis=0)).sum() / total ** 2)
    if pe >= 1.0 - 1e-12:
        kappa, kappa_reason = None, "kappa undefined: a single class in both intended and predicted labels"
    else:
        kappa, kappa_reason = (po - pe) / (1.0 - pe), None
    rows = cm.sum(axis=1)
    per_class = {c: (float(cm[i, i] / rows[i]) if rows[i] else None) for c, i in idx.items()}
    return {"value": po, "accuracy": po, "kappa": kappa, "kappa_reason": kappa_reason, "n": int(total),
            "classes": list(classes), "confusion": cm.tolist(), "recall_per_class": per_class,
            "available": True, "reason": None}


def bootstrap_mean_ci(values: Sequence[float] | np.ndarray, n_boot: int = 1000, level: float = 0.95,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (at least one value)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) == 0 or not np.isfinite(v).all():
        raise ValueError(f"need a 1-D array of finite values, got shape {v.shape}")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    alpha = 1.0 - level
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_mean_diff_ci(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, n_boot: int = 1000,
                           level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a) - mean(b), two independent samples resampled separately."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("both samples need at least one value")
    rng = np.random.default_rng(seed)
    diffs = a[rng.integers(0, len(a), size=(n_boot, len(a)))].mean(axis=1) - \
        b[rng.integers(0, len(b), size=(n_boot, len(b)))].mean(axis=1)
    alpha = 1.0 - level
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_auc_diff_ci(y: Sequence[int] | np.ndarray, scores_a: Sequence[float] | np.ndarray,
                          scores_b: Sequence[float] | np.ndarray, n_boot: int = 1000, level: float = 0.95,
                          seed: int = 0) -> dict[str, Any]:
    """AUC(b) - AUC(a) on the same cases with a paired, stratified bootstrap percentile interval
    (each replicate resamples positives and negatives and scores both classifiers on it)."""
    yb, sa = _binary(y, scores_a)
    _, sb = _binary(y, scores_b)
    if len(sa) != len(sb):
        raise ValueError(f"score vectors differ in length ({len(sa)} vs {len(sb)})")
    counts = {"n_pos": int(yb.sum()), "n_neg": int((~yb).sum())}
    problem = class_problem(yb.astype(int))
    if problem:
        return unavailable(problem, **counts)
    pos, neg = np.flatnonzero(yb), np.flatnonzero(~yb)
    m, n = len(pos), len(neg)
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for start in range(0, n_boot, 256):
        k = min(256, n_boot - start)
        ip, ineg = pos[rng.integers(0, m, size=(k, m))], neg[rng.integers(0, n, size=(k, n))]
        aucs = []
        for s in (sa, sb):
            ranks = rankdata(np.concatenate([s[ip], s[ineg]], axis=1), axis=1)
            aucs.append((ranks[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n))
        diffs[start:start + k] = aucs[1] - aucs[0]
    alpha = 1.0 - level
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    value = roc_auc(yb.astype(int), sb) - roc_auc(yb.astype(int), sa)
    return {"value": float(value), "ci_low": float(lo), "ci_high": float(hi), "level": level,
            "method": "paired stratified bootstrap, percentile", "n_boot": n_boot, **counts,
            "available": True, "reason": None}


def wilson_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (n >= 1)."""
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    z = float(norm.ppf(1 - (1 - level) / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
