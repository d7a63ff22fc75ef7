"""Reader scores on disk: iMRMC input format, long CSV, and the LABMRMC ``.lrc`` format.

iMRMC (FDA/DIDSR) input: free header lines (``N0:``, ``N1:``, ``NR:``, ``NM:`` are
informative), a ``BEGIN DATA:`` line, then ``readerID,caseID,modalityID,score`` rows;
truth rows use reader ``-1`` and modality ``truth`` with score 1 (abnormal) or 0.
CSV: one row per score with columns ``reader,case,modality,score,truth``.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ReaderScores:
    """A fully crossed score table: ``scores[modality, reader, case]`` (NaN = not read)."""

    modalities: tuple[str, ...]
    readers: tuple[str, ...]
    cases: tuple[str, ...]
    truth: np.ndarray = field(repr=False)  # (cases,) 0/1
    scores: np.ndarray = field(repr=False)  # (modalities, readers, cases)
    title: str = ""

    @property
    def complete(self) -> bool:
        return not np.isnan(self.scores).any()

    def modality(self, name: str) -> np.ndarray:
        return self.scores[self.modalities.index(name)]


def _build(rows: list[tuple[str, str, str, float]], truth: dict[str, int], title: str, where: str) -> ReaderScores:
    if not truth:
        raise ValueError(f"{where}: no truth rows")
    cases = tuple(truth)
    mods = tuple(dict.fromkeys(m for _, _, m, _ in rows))
    readers = tuple(dict.fromkeys(r for r, _, _, _ in rows))
    if not rows:
        raise ValueError(f"{where}: no score rows")
    ci = {c: i for i, c in enumerate(cases)}
    mi = {m: i for i, m in enumerate(mods)}
    ri = {r: i for i, r in enumerate(readers)}
    scores = np.full((len(mods), len(readers), len(cases)), np.nan)
    for r, c, m, s in rows:
        if c not in ci:
            raise ValueError(f"{where}: case {c!r} has a score but no truth row")
        scores[mi[m], ri[r], ci[c]] = s
    return ReaderScores(mods, readers, cases, np.array([truth[c] for c in cases], dtype=int), scores, title)


def _truth_value(text: str, where: str) -> int:
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"{where}: truth must be 0 or 1, got {text!r}") from None
    if v not in (0.0, 1.0):
        raise ValueError(f"{where}: truth must be 0 or 1, got {text!r}")
    return int(v)


def read_imrmc(path: str | os.PathLike) -> ReaderScores:
    """Read an iMRMC input file; errors name the file and line."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip().upper().startswith("BEGIN DATA"))
    except StopIteration:
        raise ValueError(f"{path}: not an iMRMC file (no 'BEGIN DATA:' line)") from None
    title = next((ln.strip() for ln in lines[:start] if ln.strip() and ":" not in ln), "")
    truth: dict[str, int] = {}
    rows = []
    for n, line in enumerate(lines[start + 1:], start + 2):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            raise ValueError(f"{path}:{n}: expected readerID,caseID,modalityID,score, got {line!r}")
        reader, case, mod, score = parts
        if mod.lower() == "truth" or reader == "-1":
            truth[case] = _truth_value(score, f"{path}:{n}")
            continue
        try:
            rows.append((reader, case, mod, float(score)))
        except ValueError:
            raise ValueError(f"{path}:{n}: score is not a number: {score!r}") from None
    return _build(rows, truth, title, str(path))


def _rows(scores: ReaderScores):
    for mi, m in enumerate(scores.modalities):
        for ri, r in enumerate(scores.readers):
            for ci, c in enumerate(scores.cases):
                s = scores.scores[mi, ri, ci]
                if not np.isnan(s):
                    yield r, c, m, float(s), int(scores.truth[ci])


def write_imrmc(scores: ReaderScores, path: str | os.PathLike | None = None) -> str:
    """Write (and return) the iMRMC input text for ``scores``."""
    out = io.StringIO()
    out.write(f"{scores.title or 'mammosynth reader study'}\n")
    out.write(f"N0:{int((scores.truth == 0).sum())}\nN1:{int((scores.truth == 1).sum())}\n")
    out.write(f"NR:{len(scores.readers)}\nNM:{len(scores.modalities)}\nBEGIN DATA:\n")
    for c, t in zip(scores.cases, scores.truth):
        out.write(f"-1,{c},truth,{int(t)}\n")
    for r, c, m, s, _ in _rows(scores):
        out.write(f"{r},{c},{m},{s:.6f}\n")
    text = out.getvalue()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


CSV_FIELDS = ("reader", "case", "modality", "score", "truth")


def write_csv(scores: ReaderScores, path: str | os.PathLike | None = None) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for r, c, m, s, t in _rows(scores):
        w.writerow([r, c, m, f"{s:.6g}", t])
    text = out.getvalue()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def read_csv(path: str | os.PathLike) -> ReaderScores:
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(CSV_FIELDS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing CSV columns {sorted(missing)} (need {', '.join(CSV_FIELDS)})")
        truth: dict[str, int] = {}
        rows = []
        for n, row in enumerate(reader, 2):
            t = _truth_value(row["truth"], f"{path}:{n}")
            if truth.setdefault(row["case"], t) != t:
                raise ValueError(f"{path}:{n}: case {row['case']!r} has conflicting truth values")
            try:
                rows.append((row["reader"], row["case"], row["modality"], float(row["score"])))
            except ValueError:
                raise ValueError(f"{path}:{n}: score is not a number: {row['score']!r}") from None
    return _build(rows, truth, "", str(path))


def read_lrc(path: str | os.PathLike) -> ReaderScores:
    """Read a LABMRMC ``.lrc`` file (title, then per reader: id, [modality names and
    L/S direction on the first], normal rows, ``*``, abnormal rows, ``*``; ``#`` ends).
    Scores with direction ``S`` (small = abnormal) are negated."""
    path = Path(path)
    lines = [ln.rstrip("\r\n") for ln in path.read_text(encoding="utf-8").splitlines()]
    pos, title = 1, lines[0].replace("\t", " ").strip() if lines else ""
    mods: list[str] = []
    sign = None
    rows, truth = [], {}
    while pos < len(lines) and lines[pos].strip() != "#":
        reader = lines[pos].strip()
        pos += 1
        if not mods:
            mods = [m.strip().strip('"') for m in lines[pos].split("\t") if m.strip()]
            sign = np.array([1.0 if d.strip().upper() == "L" else -1.0 for d in lines[pos + 1].split("\t") if d.strip()])
            pos += 2
        for t in (0, 1):
            while pos < len(lines) and lines[pos].strip() != "*":
                parts = lines[pos].split()
                if len(parts) != len(mods) + 1:
                    raise ValueError(f"{path}:{pos + 1}: expected {len(mods)} scores and a case id, got {lines[pos]!r}")
                case = parts[-1]
                truth[case] = t
                for m, s, sg in zip(mods, parts[:-1], sign):
                    rows.append((reader, case, m, sg * float(s)))
                pos += 1
            pos += 1
    return _build(rows, truth, title, str(path))
