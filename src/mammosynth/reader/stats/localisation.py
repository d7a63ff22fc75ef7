"""Localisation figure of merit: the AFROC area (JAFROC with normal cases as the only
source of false positives; Chakraborty and Berbaum 2004), with case-jackknife CIs.

Each reader's marks carry a rating and, after scoring against the truth with the hit
rule of :mod:`mammosynth.reader.scoring`, the index of the lesion they hit (None for a
non-lesion localisation). Per normal case the highest-rated mark is its false-positive
rating (``-inf`` without marks); per lesion the highest-rated mark on it is its
lesion-localisation rating (``-inf`` when missed; further marks on the same lesion are
ignored). FOM = P(lesion rating > normal-case rating), ties one half.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .orh import SingleModalityResult, single_from_cov


@dataclass(frozen=True)
class Mark:
    case: str
    rating: float
    lesion: int | None = None  # index of the lesion hit on that case, None = non-lesion


@dataclass(frozen=True)
class LocalisationResult:
    readers: tuple[str, ...]
    fom: tuple[float, ...]
    se: tuple[float, ...]
    ci: tuple[tuple[float, float], ...]
    pooled: SingleModalityResult
    n_normal: int
    n_lesions: int
    cov: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        return {"readers": list(self.readers), "fom": list(self.fom), "se": list(self.se),
                "ci": [list(c) for c in self.ci], "pooled": self.pooled.to_dict(),
                "n_normal": self.n_normal, "n_lesions": self.n_lesions, "figure_of_merit": "AFROC (JAFROC)"}


def _ratings(marks: list[Mark], lesions: dict[str, int]) -> tuple[dict[str, float], dict[tuple[str, int], float]]:
    fp: dict[str, float] = {}
    ll: dict[tuple[str, int], float] = {}
    for m in marks:
        if m.lesion is None:
            fp[m.case] = max(fp.get(m.case, -np.inf), m.rating)
        elif m.case in lesions and 0 <= m.lesion < lesions[m.case]:
            key = (m.case, m.lesion)
            ll[key] = max(ll.get(key, -np.inf), m.rating)
    return fp, ll


def afroc_fom(fp: np.ndarray, ll: np.ndarray) -> float:
    """AFROC area from normal-case FP ratings and lesion ratings (-inf = no mark)."""
    if len(fp) == 0 or len(ll) == 0:
        raise ValueError("the AFROC figure of merit needs at least one normal case and one lesion")
    gt = ll[None, :] > fp[:, None]
    eq = ll[None, :] == fp[:, None]  # -inf == -inf: an unmarked lesion vs a clean normal ties
    psi = gt + 0.5 * eq
    return float(psi.mean())


def _case_arrays(reader_marks: list[Mark], cases: list[str], lesions: dict[str, int]):
    fp_map, ll_map = _ratings(reader_marks, lesions)
    fp = np.array([fp_map.get(c, -np.inf) for c in cases if lesions.get(c, 0) == 0])
    ll = np.array([ll_map.get((c, k), -np.inf) for c in cases for k in range(lesions.get(c, 0))])
    return fp, ll


def analyze_localisation(marks: dict[str, list[Mark]], lesions: dict[str, int], alpha: float = 0.05) -> LocalisationResult:
    """Per-reader AFROC FOM with jackknife SE, and the random-reader pooled FOM.

    ``marks``: reader -> marks; ``lesions``: case -> number of lesions (0 = normal).
    """
    cases = list(lesions)
    readers = tuple(marks)
    if not readers:
        raise ValueError("no readers with marks")
    n = len(cases)
    foms, jk = [], []
    for r in readers:
        fp, ll = _case_arrays(marks[r], cases, lesions)
        foms.append(afroc_fom(fp, ll))
        row = []
        for k in range(n):
            sub = {c: lesions[c] for c in cases if c != cases[k]}
            fpk, llk = _case_arrays(marks[r], list(sub), sub)
            row.append(afroc_fom(fpk, llk) if len(fpk) and len(llk) else foms[-1])
        jk.append(row)
    jk_arr = np.array(jk)
    centred = jk_arr - jk_arr.mean(axis=1, keepdims=True)
    cov = (n - 1) / n * centred @ centred.T
    se = tuple(float(np.sqrt(max(cov[i, i], 0.0))) for i in range(len(readers)))
    z = stats.norm.ppf(1 - alpha / 2)
    ci = tuple((max(0.0, f - z * s), min(1.0, f + z * s)) for f, s in zip(foms, se))
    pooled = single_from_cov(np.array(foms), cov, chance=0.5, alpha=alpha)
    n_normal = sum(1 for c in cases if lesions[c] == 0)
    return LocalisationResult(readers, tuple(foms), se, ci, pooled, n_normal, sum(lesions.values()), cov)
