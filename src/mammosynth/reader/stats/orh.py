"""Obuchowski-Rockette (1995) analysis with Hillis (2007, 2008) degrees of freedom.

Random readers and random cases: the test statistic for equal modality figures of merit
is ``F = MS(T) / (MS(TR) + r * max(Cov2 - Cov3, 0))`` with denominator df
``(MS(TR) + r max(Cov2 - Cov3, 0))^2 / (MS(TR)^2 / ((t-1)(r-1)))``. Cov1..3 are the
averaged case-sampling covariances of the figures of merit (same reader/different
modality, different reader/same modality, different reader and modality), estimated
by the jackknife or DeLong. On the Van Dyke et al. (1993) data with the jackknife this
gives F = 4.456, ddf = 15.26, p = 0.0517 (Hillis 2008).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .roc import auc, delong_cov, jackknife_cov


def _finite(x: float) -> float | None:
    """JSON has no infinity: an infinite df (one reader, no reader variance) is null."""
    return float(x) if np.isfinite(x) else None


@dataclass(frozen=True)
class ORHResult:
    """Random-reader random-case OR-Hillis test of equal figures of merit."""

    modalities: tuple[str, ...]
    readers: tuple[str, ...]
    fom: np.ndarray = field(repr=False)  # t x r
    modality_fom: tuple[float, ...]
    ms_t: float
    ms_tr: float
    var_error: float
    cov1: float
    cov2: float
    cov3: float
    f: float
    ndf: int
    ddf: float
    p: float
    diffs: tuple[dict, ...]  # one per pair: modalities, estimate, se, ci, p
    cov_method: str

    def to_dict(self) -> dict:
        return {
            "modalities": list(self.modalities), "readers": list(self.readers),
            "fom": self.fom.tolist(), "modality_fom": list(self.modality_fom),
            "ms_t": self.ms_t, "ms_tr": self.ms_tr, "var_error": self.var_error,
            "cov1": self.cov1, "cov2": self.cov2, "cov3": self.cov3,
            "f": _finite(self.f), "ndf": self.ndf, "ddf": _finite(self.ddf), "p": self.p,
            "diffs": list(self.diffs), "cov_method": self.cov_method,
        }


@dataclass(frozen=True)
class SingleModalityResult:
    """Mean figure of merit over random readers and cases, with a Hillis-df CI."""

    fom: float
    se: float
    df: float
    ci: tuple[float, float]
    p_vs_chance: float  # two-sided test of fom == chance
    chance: float

    def to_dict(self) -> dict:
        return {"fom": self.fom, "se": self.se, "df": _finite(self.df), "ci": list(self.ci),
                "p_vs_chance": self.p_vs_chance, "chance": self.chance}


def _covariance(scores: np.ndarray, truth: np.ndarray, method: str, fom) -> np.ndarray:
    t, r, n = scores.shape
    flat = scores.reshape(t * r, n)
    if method == "jackknife":
        return jackknife_cov(flat, truth, fom)
    if method == "delong":
        if fom is not None and fom is not auc:
            raise ValueError("the DeLong covariance applies to the ROC AUC only; use the jackknife")
        return delong_cov(flat, truth)
    raise ValueError(f"covariance method must be 'jackknife' or 'delong', got {method!r}")


def _mean_covs(cov: np.ndarray, t: int, r: int) -> tuple[float, float, float, float]:
    """Average the (t*r)^2 covariance into var, Cov1, Cov2, Cov3 (index = i*r + j)."""
    mi, mj = np.divmod(np.arange(t * r), r)
    same_t = mi[:, None] == mi[None, :]
    same_r = mj[:, None] == mj[None, :]
    var = float(np.mean(np.diag(cov)))
    pick = lambda m: float(cov[m].mean()) if m.any() else 0.0  # noqa: E731
    return var, pick(~same_t & same_r), pick(same_t & ~same_r), pick(~same_t & ~same_r)


def or_hillis(scores, truth, modalities=None, readers=None, method: str = "jackknife",
              fom=None, alpha: float = 0.05) -> ORHResult:
    """OR-Hillis analysis of ``scores`` shaped (modalities, readers, cases)."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 3:
        raise ValueError(f"scores must be (modalities, readers, cases), got shape {scores.shape}")
    t, r, _ = scores.shape
    if t < 2 or r < 2:
        raise ValueError(f"OR-Hillis needs at least 2 modalities and 2 readers, got {t} and {r}")
    truth = np.asarray(truth)
    fom_fn = fom or auc
    theta = np.asarray(fom_fn(scores.reshape(t * r, -1), truth)).reshape(t, r)
    var, cov1, cov2, cov3 = _mean_covs(_covariance(scores, truth, method, fom), t, r)
    ti, rj, grand = theta.mean(axis=1), theta.mean(axis=0), theta.mean()
    ms_t = r * float(np.sum((ti - grand) ** 2)) / (t - 1)
    ms_tr = float(np.sum((theta - ti[:, None] - rj[None, :] + grand) ** 2)) / ((t - 1) * (r - 1))
    den = ms_tr + r * max(cov2 - cov3, 0.0)
    ddf = den**2 / (ms_tr**2 / ((t - 1) * (r - 1))) if ms_tr > 0 else float("inf")
    f = ms_t / den if den > 0 else float("inf")
    p = float(stats.f.sf(f, t - 1, ddf))
    mods = tuple(modalities or (str(i) for i in range(t)))
    diffs = []
    se = float(np.sqrt(2.0 / r * den))
    q = stats.t.ppf(1 - alpha / 2, ddf)
    for a in range(t):
        for b in range(a + 1, t):
            d = float(ti[a] - ti[b])
            diffs.append({"modalities": [mods[a], mods[b]], "estimate": d, "se": se,
                          "ci": [float(d - q * se), float(d + q * se)],
                          "p": float(2 * stats.t.sf(abs(d) / se, ddf)) if se > 0 else 0.0})
    return ORHResult(mods, tuple(readers or (str(j) for j in range(r))), theta, tuple(float(x) for x in ti),
                     ms_t, ms_tr, var, cov1, cov2, cov3, float(f), t - 1, float(ddf), p, tuple(diffs), method)


def single_modality(scores, truth, method: str = "jackknife", fom=None, chance: float = 0.5,
                    alpha: float = 0.05) -> SingleModalityResult:
    """Random-reader mean figure of merit for one modality: ``scores`` (readers, cases).

    Hillis (2007): var = MS(R)/r + max(Cov2, 0), df = (MS(R) + r max(Cov2,0))^2 /
    (MS(R)^2/(r-1)). With one reader it falls back to the fixed-reader case (normal CI).
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    r = scores.shape[0]
    truth = np.asarray(truth)
    theta = np.asarray((fom or auc)(scores, truth), dtype=float).reshape(r)
    cov = jackknife_cov(scores, truth, fom) if method == "jackknife" else delong_cov(scores, truth)
    return single_from_cov(theta, cov, chance, alpha)


def single_from_cov(theta, cov, chance: float = 0.5, alpha: float = 0.05) -> SingleModalityResult:
    """:func:`single_modality` from per-reader figures of merit and their covariance."""
    theta = np.asarray(theta, dtype=float).reshape(-1)
    cov = np.atleast_2d(cov)
    r = len(theta)
    mean = float(theta.mean())
    if r == 1:
        se, df = float(np.sqrt(max(cov[0, 0], 0.0))), float("inf")
    else:
        cov2 = float(cov[~np.eye(r, dtype=bool)].mean())
        ms_r = float(np.sum((theta - mean) ** 2) / (r - 1))
        num = ms_r + r * max(cov2, 0.0)
        se = float(np.sqrt(num / r))
        df = num**2 / (ms_r**2 / (r - 1)) if ms_r > 0 else float("inf")
    q = stats.t.ppf(1 - alpha / 2, df)
    p = float(2 * stats.t.sf(abs(mean - chance) / se, df)) if se > 0 else (0.0 if mean != chance else 1.0)
    return SingleModalityResult(mean, se, float(df), (float(mean - q * se), float(mean + q * se)), p, chance)
