"""``mammosynth study``: analyse a reader study, export or analyse score files."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..reader import DEFAULT_DB

    p = subparsers.add_parser("study", help="analyse reader studies; MRMC analysis of iMRMC/CSV score files",
                              description="Analyse a study of the reader app, export its scores, or run the "
                                          "Obuchowski-Rockette-Hillis MRMC analysis on an iMRMC/CSV/LRC file.")
    sub = p.add_subparsers(dest="study_command", metavar="ACTION")
    db_default = os.environ.get("MAMMOSYNTH_READER_DB", DEFAULT_DB)

    a = sub.add_parser("analyze", help="analyse a study (per-reader and pooled AUC, AFROC, training scores)")
    a.add_argument("study", help="study id or name")
    a.add_argument("--db", default=db_default, help="database URL (default %(default)s)")
    a.add_argument("--json", dest="json_out", default=None, help="write the analysis as JSON here")
    a.add_argument("--html", dest="html_out", default=None, help="write an HTML report here")
    a.set_defaults(func=analyze)

    e = sub.add_parser("export", help="export a study's ratings as iMRMC input or CSV")
    e.add_argument("study", help="study id or name")
    e.add_argument("--db", default=db_default, help="database URL (default %(default)s)")
    e.add_argument("--format", choices=("imrmc", "csv"), default="imrmc")
    e.add_argument("--out", required=True, help="output file")
    e.set_defaults(func=export)

    m = sub.add_parser("mrmc", help="OR-Hillis MRMC ROC analysis of a score file (.imrmc, .csv, .lrc)")
    m.add_argument("file", help="scores: iMRMC input format, CSV (reader,case,modality,score,truth) or LRC")
    m.add_argument("--cov", choices=("jackknife", "delong"), default="jackknife", help="covariance (default %(default)s)")
    m.add_argument("--json", dest="json_out", default=None, help="write the result as JSON here")
    m.set_defaults(func=mrmc)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _study(db, key: str):
    from sqlalchemy import select

    from ..reader.db import Study

    study = db.get(Study, int(key)) if key.isdigit() else db.scalar(select(Study).where(Study.name == key))
    if study is None:
        raise ValueError(f"no study {key!r} in the database")
    return study


def analyze(args: argparse.Namespace) -> int:
    from ..reader.analysis import analyze_study
    from ..reader.db import open_db
    from ..reader.report import render_html

    with open_db(args.db)() as db:
        res = analyze_study(db, _study(db, args.study))
    print(summary(res))
    if args.json_out:
        Path(args.json_out).write_text(res.to_json(), encoding="utf-8")
    if args.html_out:
        Path(args.html_out).write_text(render_html(res), encoding="utf-8")
    return 0


def summary(res) -> str:
    lines = [f"study {res.study!r} ({res.kind}): {res.n_cases} cases, {res.n_answers} answers"]
    for r in res.readers:
        lines.append(f"  {r.reader}: AUC {r.auc:.3f} (95% CI {r.ci[0]:.3f}-{r.ci[1]:.3f}) over {r.n} cases"
                     + ("  beats chance" if r.beats_chance else ""))
    if res.pooled:
        p = res.pooled
        lines.append(f"  pooled AUC {p['fom']:.3f} (95% CI {p['ci'][0]:.3f}-{p['ci'][1]:.3f}), p vs 0.5 = {p['p_vs_chance']:.3g}; "
                     f"readers beating chance: {100 * res.proportion_beating_chance:.0f}%")
    if res.localisation:
        loc = res.localisation["pooled"]
        lines.append(f"  AFROC FOM {loc['fom']:.3f} (95% CI {loc['ci'][0]:.3f}-{loc['ci'][1]:.3f})")
    for t in res.training:
        lines.append(f"  {t['trainee']} session {t['session']}: {t['score']}% over {t['cases']} cases")
    lines.extend(f"  note: {n}" for n in res.notes)
    return "\n".join(lines)


def export(args: argparse.Namespace) -> int:
    from ..reader.analysis import score_table
    from ..reader.db import open_db
    from ..reader.stats import write_csv, write_imrmc

    with open_db(args.db)() as db:
        table = score_table(db, _study(db, args.study))
    (write_csv if args.format == "csv" else write_imrmc)(table, args.out)
    print(f"wrote {args.out}")
    return 0


def mrmc(args: argparse.Namespace) -> int:
    from ..reader.stats import or_hillis, read_csv, read_imrmc, read_lrc

    path = Path(args.file)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    reader = {".csv": read_csv, ".lrc": read_lrc}.get(path.suffix.lower(), read_imrmc)
    s = reader(path)
    if not s.complete:
        raise ValueError(f"{path}: not fully crossed (some reader/case/modality scores are missing)")
    res = or_hillis(s.scores, s.truth, s.modalities, s.readers, method=args.cov)
    print(f"{path.name}: {len(s.readers)} readers, {len(s.cases)} cases ({int(s.truth.sum())} abnormal), "
          f"modalities {', '.join(s.modalities)}; covariance {args.cov}")
    for m, f in zip(res.modalities, res.modality_fom):
        print(f"  AUC[{m}] = {f:.4f}")
    print(f"  OR-Hillis: F = {res.f:.3f}, df = ({res.ndf}, {res.ddf:.2f}), p = {res.p:.4f}")
    for d in res.diffs:
        print(f"  {d['modalities'][0]} - {d['modalities'][1]}: {d['estimate']:.4f} "
              f"(95% CI {d['ci'][0]:.4f} to {d['ci'][1]:.5f})")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res.to_dict(), indent=2), encoding="utf-8")
    return 0
