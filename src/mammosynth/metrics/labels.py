"""Label-distribution comparison between a real and a synthetic set.

Per axis (density A-D, finding none/mass/calcification/distortion/asymmetry, view CC/MLO;
:data:`~mammosynth.data.schema.CONDITION_AXES`), records whose value is unknown on the
axis are counted as ``"unknown"``. Reported: counts and proportions side by side, the
total-variation distance ``TV = 0.5 * sum |p_real - p_syn|`` (0 = same proportions,
1 = disjoint) and the p-value of Pearson's chi-square test of homogeneity on the 2 x K
table (categories empty in both sets dropped; one category only: p = 1, the proportions
are identical by construction).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

import numpy as np

from ..data.schema import CONDITION_AXES, ImageRecord, condition_value


def label_counts(records: Iterable[ImageRecord], axis: str) -> dict[str, int]:
    """Counts per class of ``axis`` (classes in schema order, then ``unknown``)."""
    c = Counter(condition_value(r, axis) or "unknown" for r in records)
    classes = list(CONDITION_AXES[axis]) + ["unknown"]
    return {k: int(c.get(k, 0)) for k in classes}


def compare_counts(real: dict[str, int], synthetic: dict[str, int]) -> dict[str, Any]:
    """Proportions, total-variation distance and chi-square p-value for two count dicts."""
    from scipy.stats import chi2_contingency

    keys = [k for k in dict.fromkeys([*real, *synthetic]) if real.get(k, 0) + synthetic.get(k, 0) > 0]
    nr, ns = sum(real.values()), sum(synthetic.values())
    if nr == 0 or ns == 0:
        raise ValueError(f"labels: empty set (real {nr}, synthetic {ns} records)")
    pr = {k: real.get(k, 0) / nr for k in keys}
    ps = {k: synthetic.get(k, 0) / ns for k in keys}
    tv = 0.5 * sum(abs(pr[k] - ps[k]) for k in keys)
    if len(keys) < 2:
        p = 1.0
    else:
        table = np.array([[real.get(k, 0) for k in keys], [synthetic.get(k, 0) for k in keys]])
        p = float(chi2_contingency(table, correction=False)[1])
    return {"real": pr, "synthetic": ps, "counts_real": {k: real.get(k, 0) for k in keys},
            "counts_synthetic": {k: synthetic.get(k, 0) for k in keys}, "tv": float(tv), "chi2_p": p}


def compare_labels(real: Iterable[ImageRecord], synthetic: Iterable[ImageRecord]) -> dict[str, Any]:
    """The ``labels`` block: one :func:`compare_counts` result per conditioning axis."""
    real, synthetic = list(real), list(synthetic)
    return {axis: compare_counts(label_counts(real, axis), label_counts(synthetic, axis))
            for axis in CONDITION_AXES}
