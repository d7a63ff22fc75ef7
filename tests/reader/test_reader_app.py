"""The reader-study app end to end through its HTTP API (SQLite always, PostgreSQL when
MAMMOSYNTH_TEST_PG names a server)."""
from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("fastapi", reason="the reader extra is not installed")
from sqlalchemy import select, text

from mammosynth.reader import service
from mammosynth.reader.db import Answer, Case

CASE = re.compile(r'name="case" value="([^"]+)"')


def make_study(admin, phantoms, kind="realsynth", scale="5point", readers=("alice", "bob"), n=4, name="S1"):
    real, synth = phantoms
    sources = f"{n} {real} as real\n{n} {synth} as synthetic" if kind == "realsynth" else f"{n} {real}\n{n} {synth}"
    data = {"name": name, "kind": kind, "scale": scale, "sources": sources, "seed": "3", "group_views": "on"}
    r = admin.c.post("/admin/studies", data={**data, "csrf": admin.csrf, "readers": list(readers)})
    assert r.status_code == 303, r.text
    return int(r.headers["location"].split("/")[2])


def read_all(b, sid, rating=lambda i: str(1 + i % 5), marks=lambda tok: "[]", limit=100):
    order = []
    for i in range(limit):
        r = b.get(f"/study/{sid}/read")
        m = CASE.search(r.text)
        if not m:
            assert "cases read" in r.text
            return order
        order.append(m.group(1))
        r = b.post(f"/study/{sid}/answer", {"case": m.group(1), "rating": rating(i), "marks": marks(m.group(1))})
        assert r.status_code == 303, r.text
    raise AssertionError("study never finished")


@pytest.fixture
def setup(make_app, browser):
    app = make_app()
    admin = browser(app, "admin", "admin-pass-1")
    admin.get("/")
    return app, admin


def test_realsynth_two_readers_resume_and_analysis(setup, browser, phantoms):
    app, admin = setup
    sid = make_study(admin, phantoms)
    alice = browser(app, "alice", "alice-pass-1")
    first = []
    for _ in range(3):  # alice reads 3 cases, then "closes the browser"
        r = alice.get(f"/study/{sid}/read")
        tok = CASE.search(r.text).group(1)
        first.append(tok)
        assert alice.post(f"/study/{sid}/answer", {"case": tok, "rating": "4"}).status_code == 303
    alice2 = browser(app, "alice", "alice-pass-1")
    r = alice2.get(f"/study/{sid}/read")
    assert "case 4 of 8" in r.text and CASE.search(r.text).group(1) not in first
    rest = read_all(alice2, sid)
    assert len(set(first + rest)) == 8
    bob_order = read_all(browser(app, "bob", "bob-pass-1"), sid)
    assert sorted(bob_order) == sorted(first + rest)
    res = admin.get(f"/study/{sid}/results.json").json()
    assert res["n_answers"] == 16 and {r["reader"] for r in res["readers"]} == {"alice", "bob"}
    assert res["pooled"]["n_cases"] == 8 and 0 <= res["proportion_beating_chance"] <= 1
    page = admin.get(f"/study/{sid}/results").text
    assert "Pooled (random readers and cases" in page
    exported = admin.get(f"/study/{sid}/export.imrmc")
    assert exported.status_code == 200 and "BEGIN DATA:" in exported.text and "NR:2" in exported.text
    assert admin.get(f"/study/{sid}/export.csv").text.startswith("reader,case,modality,score,truth")


def test_reader_orders_differ(setup, browser, phantoms):
    app, admin = setup
    sid = make_study(admin, phantoms, n=6)
    a = read_all(browser(app, "alice", "alice-pass-1"), sid)
    b = read_all(browser(app, "bob", "bob-pass-1"), sid)
    assert sorted(a) == sorted(b) and a != b


def test_scale_100_and_bad_ratings(setup, browser, phantoms):
    app, admin = setup
    sid = make_study(admin, phantoms, scale="100")
    b = browser(app, "alice", "alice-pass-1")
    tok = CASE.search(b.get(f"/study/{sid}/read").text).group(1)
    assert 'type="range" name="rating"' in b.get(f"/study/{sid}/read").text
    for bad in ("150", "-1", "abc", ""):
        assert b.post(f"/study/{sid}/answer", {"case": tok, "rating": bad}).status_code == 400
    assert b.post(f"/study/{sid}/answer", {"case": tok, "rating": "72.5"}).status_code == 303


def test_answers_are_append_only(setup, browser, phantoms):
    app, admin = setup
    sid = make_study(admin, phantoms)
    b = browser(app, "alice", "alice-pass-1")
    tok = CASE.search(b.get(f"/study/{sid}/read").text).group(1)
    assert b.post(f"/study/{sid}/answer", {"case": tok, "rating": "2"}).status_code == 303
    assert b.post(f"/study/{sid}/answer", {"case": tok, "rating": "5"}).status_code == 409
    with app.state.sessionmaker() as db:
        answers = list(db.scalars(select(Answer)))
        assert len(answers) == 1 and answers[0].rating == 2 and answers[0].created_at is not None
        answers[0].rating = 5
        with pytest.raises(RuntimeError, match="append-only"):
            db.commit()


def test_detection_marks_scored_against_truth(setup, browser, phantoms):
    app, admin = setup
    sid = make_study(admin, phantoms, kind="detection", n=5)
    with app.state.sessionmaker() as db:
        truth = {c.token: (c.truth_dict, [i.scale for i in service.images_of(db, c)])
                 for c in db.scalars(select(Case).where(Case.study_id == sid))}
    assert any(t["lesions"] for t, _ in truth.values()) and any(not t["lesions"] for t, _ in truth.values())

    def perfect(tok):  # a click at every lesion centre (served pixels), nothing on normals
        t, scale = truth[tok]
        return json.dumps([{"image": les["image"], "x": (les["box"][0] + les["box"][2]) / 2 / scale[les["image"]],
                            "y": (les["box"][1] + les["box"][3]) / 2 / scale[les["image"]], "rating": 5}
                           for les in t["lesions"]])

    read_all(browser(app, "alice", "alice-pass-1"), sid, marks=perfect)
    read_all(browser(app, "bob", "bob-pass-1"), sid, marks=lambda tok: json.dumps([{"image": 0, "x": 1, "y": 1, "rating": 3}]))
    res = admin.get(f"/study/{sid}/results.json").json()
    loc = res["localisation"]
    fom = dict(zip(loc["readers"], loc["fom"]))
    assert fom["alice"] == 1.0 and fom["bob"] < 0.6
    aucs = {r["reader"]: r["auc"] for r in res["readers"]}
    assert aucs["alice"] == 1.0


def test_bad_marks_refused(setup, browser, phantoms):
    app, admin = setup
    sid = make_study(admin, phantoms, kind="detection", n=2, readers=("alice",))
    b = browser(app, "alice", "alice-pass-1")
    tok = CASE.search(b.get(f"/study/{sid}/read").text).group(1)
    for bad in ("{", '[{"image": 9, "x": 1, "y": 1, "rating": 3}]', '[{"image": 0, "x": -5, "y": 1, "rating": 3}]',
                '[{"image": 0, "x": 1, "y": 1, "rating": 9}]', '"x"'):
        assert b.post(f"/study/{sid}/answer", {"case": tok, "marks": bad}).status_code == 400, bad


def test_training_tiers_feedback_and_history(setup, browser, phantoms):
    app, admin = setup
    sid = make_study(admin, phantoms, kind="training", readers=("tina",), n=4)
    with app.state.sessionmaker() as db:
        tiers = sorted({c.tier for c in db.scalars(select(Case).where(Case.study_id == sid))})
    assert set(tiers) <= {1, 2, 3}
    t = browser(app, "tina", "tina-pass-1")
    tier = tiers[0]
    r = t.get(f"/study/{sid}/read?tier={tier}")
    tok = CASE.search(r.text).group(1)
    assert t.get(f"/study/{sid}/truth/{tok}").status_code == 403  # not before the answer
    r = t.post(f"/study/{sid}/answer", {"case": tok, "marks": "[]", "session": "1", "tier": str(tier)})
    assert r.status_code == 303 and "/feedback/" in r.headers["location"]
    fb = t.get(r.headers["location"])
    assert fb.status_code == 200 and "This case:" in fb.text and "data-truth=" in fb.text
    assert t.get(f"/study/{sid}/truth/{tok}").json()["tier"] == tier
    home = t.get("/").text
    assert 'id="history"' in home and "S1" in home.split('id="history"')[1]
    r = t.post(f"/study/{sid}/training/new", {"tier": ""})
    assert r.status_code == 303 and "session=2" in r.headers["location"]
    res = admin.get(f"/study/{sid}/results.json").json()
    assert res["training"][0]["trainee"] == "tina" and res["training"][0]["cases"] == 1


def test_wrong_role_assignments_refused(setup, phantoms):
    app, admin = setup
    real, synth = phantoms
    data = {"name": "T", "kind": "training", "scale": "5point", "sources": f"2 {real}", "csrf": admin.csrf,
            "readers": ["alice"]}
    r = admin.c.post("/admin/studies", data=data)
    assert r.status_code == 400 and "trainees" in r.text
    r = admin.c.post("/admin/studies", data={**data, "kind": "realsynth", "readers": []})
    assert r.status_code == 400 and "real and one synthetic" in r.text
    r = admin.c.post("/admin/studies", data={**data, "kind": "detection", "sources": "999 " + str(real), "readers": []})
    assert r.status_code == 400 and "asked for 999" in r.text


def test_migrations_idempotent(db_url):
    from mammosynth.reader.db import make_engine, open_db

    open_db(db_url)
    open_db(db_url)
    with make_engine(db_url).connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"


def test_cli_create_admin_analyze_export(db_url, phantoms, tmp_path, monkeypatch, capsys):
    from mammosynth.cli import main
    from mammosynth.reader.db import User, open_db
    from mammosynth.reader.stats import read_imrmc
    from mammosynth.reader.studies import Source, StudySpec

    monkeypatch.setenv("MAMMOSYNTH_ADMIN_PASSWORD", "a-long-password")
    assert main(["serve", "--db", db_url, "--create-admin", "root"]) == 0
    assert main(["serve", "--db", db_url, "--create-admin", "root"]) == 1  # exists: clear error
    assert "exists" in capsys.readouterr().err
    Session = open_db(db_url)
    real, synth = phantoms
    with Session.begin() as db:
        root = db.scalar(select(User).where(User.username == "root"))
        r1 = service.create_user(db, "r1", "r1-password", "reader")
        study = service.create_study(db, StudySpec("cli", "realsynth", "5point",
                                                   (Source(str(real), 3, "real"), Source(str(synth), 3, "synthetic"))),
                                     root, ["r1"])
        a = service.get_study(db, study.id, r1)[1]
        for i in range(6):
            case = service.next_case(db, study, a, r1, 0).case
            service.record_answer(db, study, r1, case, float(1 + i % 5), [], 0)
    out = tmp_path / "out"
    assert main(["study", "analyze", "cli", "--db", db_url, "--json", f"{out}.json", "--html", f"{out}.html"]) == 0
    assert "r1: AUC" in capsys.readouterr().out
    assert json.loads(out.with_suffix(".json").read_text())["n_answers"] == 6
    assert "reader study report" in out.with_suffix(".html").read_text()
    assert main(["study", "export", "cli", "--db", db_url, "--out", str(tmp_path / "s.imrmc")]) == 0
    s = read_imrmc(tmp_path / "s.imrmc")
    assert s.scores.shape == (1, 1, 6) and s.complete
    assert main(["study", "analyze", "nope", "--db", db_url]) == 1
    assert main(["study", "mrmc", str(tmp_path / "s.imrmc")]) == 1  # one modality: clear error
