"""Analysis of a study from its answers: typed results, JSON and HTML.

* real vs synthetic: truth = synthetic; per-reader AUC (DeLong CI) and the
  random-reader pooled AUC (OR-Hillis, jackknife) on the cases every reader read;
  a reader "beats chance" when the lower end of their 95 % CI is above 0.5.
* detection: case-level ROC (the highest mark rating per case, 0 without marks;
  truth = abnormal) and the AFROC localisation figure of merit per reader and pooled.
* training: the mean score per trainee session.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import scoring
from .db import Answer, Study, User
from .service import cases_of, images_of
from .stats import Mark, ReaderScores, analyze_localisation, auc_ci, single_modality


@dataclass(frozen=True)
class ReaderResult:
    reader: str
    n: int
    auc: float
    se: float
    ci: tuple[float, float]
    beats_chance: bool


@dataclass(frozen=True)
class StudyAnalysis:
    study: str
    kind: str
    n_cases: int
    n_answers: int
    readers: tuple[ReaderResult, ...] = ()
    pooled: dict | None = None
    proportion_beating_chance: float | None = None
    localisation: dict | None = None
    training: tuple[dict, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"study": self.study, "kind": self.kind, "n_cases": self.n_cases, "n_answers": self.n_answers,
                "readers": [r.__dict__ | {"ci": list(r.ci)} for r in self.readers], "pooled": self.pooled,
                "proportion_beating_chance": self.proportion_beating_chance,
                "localisation": self.localisation, "training": list(self.training), "notes": list(self.notes)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)


def _answers(db: Session, study: Study) -> list[tuple[Answer, str]]:
    return list(db.execute(select(Answer, User.username).join(User, User.id == Answer.user_id)
                           .where(Answer.study_id == study.id).order_by(Answer.id)).all())


def score_table(db: Session, study: Study) -> ReaderScores:
    """The study's first-session ratings as a (1, readers, cases) table (NaN = unread)."""
    cases = cases_of(db, study)
    key = "synthetic" if study.kind == "realsynth" else "abnormal"
    truth = np.array([int(c.truth_dict[key]) for c in cases])
    idx = {c.id: i for i, c in enumerate(cases)}
    rows = [(a, u) for a, u in _answers(db, study) if a.session_no <= 1]  # training: first session only
    readers = tuple(dict.fromkeys(u for _, u in rows))
    scores = np.full((1, len(readers), len(cases)), np.nan)
    for a, u in rows:
        if np.isnan(scores[0, readers.index(u), idx[a.case_id]]):
            scores[0, readers.index(u), idx[a.case_id]] = a.rating
    return ReaderScores((study.kind,), readers, tuple(f"c{c.id}" for c in cases), truth, scores, study.name)


def _roc(table: ReaderScores, notes: list[str]) -> tuple[tuple[ReaderResult, ...], dict | None, float | None]:
    results = []
    for ri, r in enumerate(table.readers):
        s = table.scores[0, ri]
        ok = ~np.isnan(s)
        t = table.truth[ok]
        if t.all() or not t.any():
            notes.append(f"{r}: too few cases of each class read for an AUC")
            continue
        a, se, lo, hi = auc_ci(s[ok], t)
        results.append(ReaderResult(r, int(ok.sum()), a, se, (lo, hi), lo > 0.5))
    pooled = None
    full = ~np.isnan(table.scores[0]).any(axis=0)
    t = table.truth[full]
    if results and full.sum() >= 2 and t.any() and not t.all():
        pooled = single_modality(table.scores[0][:, full], t).to_dict() | {"n_cases": int(full.sum())}
    elif results:
        notes.append("pooled AUC needs cases of both classes read by every reader")
    share = sum(r.beats_chance for r in results) / len(results) if results else None
    return tuple(results), pooled, share


def _localisation(db: Session, study: Study, notes: list[str]) -> dict | None:
    cases = cases_of(db, study)
    # an abnormal case without lesion boxes (e.g. RSNA's cancer=1) can be neither a
    # normal case nor a lesion for the AFROC: leave it out of the localisation analysis
    cases = [c for c in cases if c.truth_dict["lesions"] or not c.truth_dict["abnormal"]]
    lesions = {f"c{c.id}": len(c.truth_dict["lesions"]) for c in cases}
    if not any(lesions.values()) or all(lesions.values()):
        notes.append("localisation needs normal cases and cases with lesion boxes")
        return None
    by_id = {c.id: c for c in cases}
    short = {c.id: [min(i.height, i.width) for i in images_of(db, c)] for c in cases}
    marks: dict[str, list[Mark]] = {}
    for a, u in _answers(db, study):
        if a.session_no > 1:
            continue
        c = by_id.get(a.case_id)
        if c is None:
            continue
        ms = json.loads(a.marks)
        hit = scoring.assign(ms, c.truth_dict["lesions"], short[c.id])
        marks.setdefault(u, []).extend(Mark(f"c{c.id}", m["rating"], h) for m, h in zip(ms, hit))
    if not marks:
        return None
    return analyze_localisation(marks, lesions).to_dict()


def analyze_study(db: Session, study: Study) -> StudyAnalysis:
    answers = _answers(db, study)
    notes: list[str] = []
    base = dict(study=study.name, kind=study.kind, n_cases=len(cases_of(db, study)), n_answers=len(answers))
    if study.kind == "training":
        sessions: dict[tuple[str, int], list[float]] = {}
        for a, u in answers:
            sessions.setdefault((u, a.session_no), []).append(a.score or 0.0)
        rows = tuple({"trainee": u, "session": s, "cases": len(v), "score": round(100 * float(np.mean(v)), 1)}
                     for (u, s), v in sorted(sessions.items()))
        return StudyAnalysis(**base, training=rows)
    if not answers:
        return StudyAnalysis(**base, notes=("no answers yet",))
    readers, pooled, share = _roc(score_table(db, study), notes)
    loc = _localisation(db, study, notes) if study.kind == "detection" else None
    return StudyAnalysis(**base, readers=readers, pooled=pooled, proportion_beating_chance=share,
                         localisation=loc, notes=tuple(notes))
