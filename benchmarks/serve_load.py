"""Load benchmark of the reader-study app: concurrent readers on loopback, SQLite.

Starts ``mammosynth serve`` in a subprocess on a fresh SQLite database, creates one
real-vs-synthetic study (from two tiny phantom datasets, its cases replicated so no
reader runs out) and N reader accounts, then runs N reader threads for a fixed time:
each repeatedly loads its next case page, fetches the image and posts an answer. It
stops by itself after ``--seconds`` and reports answers per second, p50/p95 latency
per request kind, and checks the database: every accepted answer stored exactly once
(zero lost, zero duplicated).

    .venv/bin/python benchmarks/serve_load.py [--readers 20] [--seconds 60]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")
import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from mammosynth.phantom import PhantomConfig, make_phantom_dataset  # noqa: E402
from mammosynth.reader import service  # noqa: E402
from mammosynth.reader.db import Answer, Case, CaseImage, User, open_db  # noqa: E402
from mammosynth.reader.studies import Source, StudySpec, new_token  # noqa: E402

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CASE = re.compile(r'name="case" value="([^"]+)"')
IMG = re.compile(r'data-src="([^"]+)"')


def setup(tmp: Path, readers: int, cases: int) -> str:
    cfg = dict(size=(128, 80), findings="mass:0.3")
    real = make_phantom_dataset(tmp / "real", 8, PhantomConfig(seed=1, **cfg), workers=1)
    synth = make_phantom_dataset(tmp / "synth", 8, PhantomConfig(seed=2, **cfg), workers=1)
    url = f"sqlite:///{tmp / 'load.db'}"
    Session = open_db(url)
    with Session.begin() as db:
        admin = service.create_user(db, "admin", "admin-password", "admin")
        names = [f"r{i:02d}" for i in range(readers)]
        for n in names:
            service.create_user(db, n, n + "-password", "reader")
        spec = StudySpec("load", "realsynth", "5point", (Source(str(real), 8, "real"), Source(str(synth), 8, "synthetic")))
        study = service.create_study(db, spec, admin, names)
        base = list(db.scalars(select(Case).where(Case.study_id == study.id)))
        imgs = {c.id: list(db.scalars(select(CaseImage).where(CaseImage.case_id == c.id))) for c in base}
        for k in range(cases - len(base)):  # replicate cases (new random ids) so nobody runs out
            src = base[k % len(base)]
            c = Case(study_id=study.id, token=new_token(), label=src.label, truth=src.truth, tier=src.tier)
            db.add(c)
            db.flush()
            for im in imgs[src.id]:
                db.add(CaseImage(case_id=c.id, token=new_token(), position=im.position, view=im.view, path=im.path,
                                 height=im.height, width=im.width, scale=im.scale))
    return url


def reader_loop(base: str, name: str, stop: float, lat: dict, accepted: list, errors: list) -> None:
    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as c:
        pre = CSRF.search(c.get("/login").text).group(1)
        r = c.post("/login", data={"csrf": pre, "username": name, "password": name + "-password"})
        if r.status_code != 303:
            errors.append(f"{name}: login {r.status_code}")
            return
        i = 0
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            page = c.get("/study/1/read")
            t1 = time.perf_counter()
            m, csrf = CASE.search(page.text), CSRF.search(page.text)
            if not m:
                errors.append(f"{name}: no case ({page.status_code})")
                return
            img = c.get(IMG.search(page.text).group(1))
            t2 = time.perf_counter()
            r = c.post("/study/1/answer", data={"csrf": csrf.group(1), "case": m.group(1), "rating": str(1 + i % 5)})
            t3 = time.perf_counter()
            if r.status_code != 303 or img.status_code != 200:
                errors.append(f"{name}: answer {r.status_code}, image {img.status_code}")
                continue
            accepted.append((name, m.group(1)))
            lat["page"].append(t1 - t0)
            lat["image"].append(t2 - t1)
            lat["answer"].append(t3 - t2)
            i += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readers", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--cases", type=int, default=3000, help="cases in the study (replicated phantoms)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mammosynth-serve-load-"))
    proc = None
    try:
        url = setup(tmp, args.readers, args.cases)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
        proc = subprocess.Popen([sys.executable, "-m", "mammosynth", "serve", "--db", url, "--port", str(port)],
                                env=env, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(base + "/login", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        lat = {"page": [], "image": [], "answer": []}
        accepted: list = []
        errors: list = []
        t_start = time.monotonic()
        stop = t_start + args.seconds
        threads = [threading.Thread(target=reader_loop, args=(base, f"r{i:02d}", stop, lat, accepted, errors))
                   for i in range(args.readers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.seconds + 60)
        wall = time.monotonic() - t_start
        proc.terminate()
        proc.wait(timeout=20)
        Session = open_db(url)
        with Session() as db:
            stored = db.scalar(select(func.count()).select_from(Answer))
            dup = db.execute(select(Answer.case_id, Answer.user_id).group_by(Answer.case_id, Answer.user_id)
                             .having(func.count() > 1)).all()
            pairs = set(db.execute(select(User.username, Case.token).join(Answer, Answer.user_id == User.id)
                                   .join(Case, Case.id == Answer.case_id)).all())
        lost = len(set(accepted) - pairs)
        print(f"serve_load: {args.readers} readers, {wall:.1f} s, SQLite (WAL), uvicorn 1 process, loopback")
        print(f"  answers accepted {len(accepted)}, stored {stored}, lost {lost}, duplicated {len(dup)}, "
              f"errors {len(errors)}")
        print(f"  answers/s {len(accepted) / wall:.1f}")
        for k, v in lat.items():
            if v:
                a = np.array(v) * 1000
                print(f"  {k:6s} latency ms: p50 {np.percentile(a, 50):.1f}  p95 {np.percentile(a, 95):.1f}  "
                      f"max {a.max():.1f}")
        for e in errors[:5]:
            print("  error:", e)
        ok = lost == 0 and not dup and stored == len(accepted) and not errors
        print("  OK: zero lost or duplicated answers" if ok else "  FAILED")
        return 0 if ok else 1
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
