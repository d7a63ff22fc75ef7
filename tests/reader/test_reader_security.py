"""Security of the reader app: truth and other readers' answers stay hidden, CSRF-less
posts are refused, injection strings are inert, image URLs and bytes leak nothing."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the reader extra is not installed")
from PIL import Image
from sqlalchemy import select

from mammosynth.reader.db import Case, CaseImage, User
from mammosynth.reader.imaging import png_chunks

CASE = re.compile(r'name="case" value="([^"]+)"')
XSS = '<script>alert("x")</script>'


@pytest.fixture
def study(make_app, browser, phantoms):
    app = make_app()
    admin = browser(app, "admin", "admin-pass-1")
    admin.get("/")
    real, synth = phantoms
    r = admin.post("/admin/studies", {"name": "Blind " + XSS, "kind": "realsynth", "scale": "5point",
                                      "sources": f"3 {real} as real\n3 {synth} as synthetic", "readers": ["alice"]})
    assert r.status_code == 303
    sid = int(r.headers["location"].split("/")[2])
    return app, admin, sid


def test_truth_refused_to_readers(study, browser):
    app, admin, sid = study
    alice = browser(app, "alice", "alice-pass-1")
    tok = CASE.search(alice.get(f"/study/{sid}/read").text).group(1)
    assert alice.get(f"/study/{sid}/truth/{tok}").status_code == 403
    alice.post(f"/study/{sid}/answer", {"case": tok, "rating": "3"})
    assert alice.get(f"/study/{sid}/truth/{tok}").status_code == 403  # not even after answering
    assert admin.get(f"/study/{sid}/truth/{tok}").json()["synthetic"] in (True, False)


def test_readers_cannot_see_results_or_other_studies(study, browser):
    app, admin, sid = study
    alice = browser(app, "alice", "alice-pass-1")
    for url in (f"/study/{sid}/results", f"/study/{sid}/results.json", f"/study/{sid}/export.csv",
                f"/study/{sid}/export.imrmc"):
        r = alice.get(url)
        assert r.status_code == 403 and "rating" not in r.text, url
    bob = browser(app, "bob", "bob-pass-1")  # not assigned to this study
    assert bob.get(f"/study/{sid}/read").status_code == 404
    with app.state.sessionmaker() as db:
        img = db.scalars(select(CaseImage)).first().token
    assert bob.get(f"/img/{img}.png").status_code == 404
    assert browser(app).c.get(f"/img/{img}.png").status_code == 401  # not logged in
    assert alice.get(f"/img/{img}.png").status_code == 200


def test_posts_without_csrf_refused(study, browser):
    app, admin, sid = study
    alice = browser(app, "alice", "alice-pass-1")
    tok = CASE.search(alice.get(f"/study/{sid}/read").text).group(1)
    bad = [(alice, f"/study/{sid}/answer", {"case": tok, "rating": "3"}),
           (admin, "/admin/users", {"username": "mallory", "password": "mallory-pass", "role": "admin"}),
           (admin, "/admin/studies", {"name": "x", "kind": "detection", "sources": "1 /tmp"}),
           (admin, f"/admin/studies/{sid}/assign", {"username": "bob"}),
           (alice, "/logout", {})]
    for who, url, data in bad:
        assert who.post(url, data, csrf=False).status_code == 403, url
        assert who.post(url, {**data, "csrf": "forged"}, csrf=False).status_code == 403, url
    # a login form post without the pre-login cookie's token is refused too
    assert browser(app).c.post("/login", data={"username": "admin", "password": "admin-pass-1"}).status_code == 403
    with app.state.sessionmaker() as db:
        assert db.scalar(select(User).where(User.username == "mallory")) is None
    assert admin.get(f"/study/{sid}/results.json").json()["n_answers"] == 0


def test_injection_strings_are_harmless(study, browser, phantoms):
    app, admin, sid = study
    page = admin.get("/").text + admin.get(f"/study/{sid}/results").text
    assert XSS not in page and "&lt;script&gt;alert(" in page
    sqli = "x'); DROP TABLE users; --"
    for name in ('<img/src=x/onerror=alert(1)>', sqli.replace(" ", "")):
        assert admin.post("/admin/users", {"username": name, "password": "long-enough-1", "role": "reader"}).status_code == 303
    assert "<img/src=x" not in admin.get("/").text
    r = admin.post("/admin/studies", {"name": sqli, "kind": "detection", "sources": f"1 {sqli}"})
    assert r.status_code == 400 and "<script" not in r.text
    r = admin.post("/admin/studies", {"name": XSS, "kind": XSS, "scale": XSS, "sources": XSS})
    assert r.status_code == 400 and XSS not in r.text
    assert admin.post(f"/admin/studies/{sid}/assign", {"username": sqli}).status_code == 404
    login = browser(app)
    pre = re.search(r'name="csrf" value="([^"]+)"', login.c.get("/login").text).group(1)
    r = login.c.post("/login", data={"csrf": pre, "username": "' OR '1'='1", "password": "' OR '1'='1"})
    assert r.status_code == 401
    with app.state.sessionmaker() as db:
        assert len(db.scalars(select(User)).all()) == 6  # users table intact, two odd names stored as text
    alice = browser(app, "alice", "alice-pass-1")
    tok = CASE.search(alice.get(f"/study/{sid}/read").text).group(1)
    assert alice.post(f"/study/{sid}/answer", {"case": tok, "rating": sqli}).status_code == 400
    assert alice.post(f"/study/{sid}/answer", {"case": sqli, "rating": "3"}).status_code == 404
    assert alice.get("/study/1%20OR%201=1/read").status_code == 422


def test_images_and_pages_leak_nothing(study, browser, phantoms):
    app, admin, sid = study
    alice = browser(app, "alice", "alice-pass-1")
    with app.state.sessionmaker() as db:
        cases = db.scalars(select(Case).where(Case.study_id == sid)).all()
        secrets_ = [c.label for c in cases] + [c.label.split("@")[0] for c in cases]
        paths = [i.path for i in db.scalars(select(CaseImage))]
    secrets_ += paths + [p.split("/")[-1] for p in paths] + [str(phantoms[0]), str(phantoms[1]), "phantom-"]
    html = alice.get(f"/study/{sid}/read").text
    for s in secrets_:
        assert s not in html
    url = re.search(r'data-src="(/img/[^"]+)"', html).group(1)
    assert re.fullmatch(r"/img/[A-Za-z0-9_-]{24}\.png", url)
    r = alice.get(url)
    assert r.headers["content-type"] == "image/png" and "no-store" in r.headers["cache-control"]
    assert "content-disposition" not in r.headers and "last-modified" not in r.headers and "etag" not in r.headers
    assert set(png_chunks(r.content)) == {"IHDR", "IDAT", "IEND"}
    for s in secrets_:
        assert s.encode() not in r.content
    img = Image.open(io.BytesIO(r.content))
    assert img.mode == "L" and not img.info and np.asarray(img).std() > 0


def test_login_rate_limited_and_cookie_flags(make_app, browser):
    app = make_app()
    c = browser(app).c
    for _ in range(5):
        pre = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        assert c.post("/login", data={"csrf": pre, "username": "admin", "password": "wrong"}).status_code == 401
    pre = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    r = c.post("/login", data={"csrf": pre, "username": "admin", "password": "admin-pass-1"})
    assert r.status_code == 429  # even the right password waits
    fresh = browser(app).c
    pre = re.search(r'name="csrf" value="([^"]+)"', fresh.get("/login").text).group(1)
    r = fresh.post("/login", data={"csrf": pre, "username": "alice", "password": "alice-pass-1"})
    assert r.status_code == 429  # same client address: blocked too


def test_session_cookie_flags_and_headers(make_app, browser):
    app = make_app()
    c = browser(app).c
    pre_resp = c.get("/login")
    assert "httponly" in pre_resp.headers["set-cookie"].lower()
    pre = re.search(r'name="csrf" value="([^"]+)"', pre_resp.text).group(1)
    r = c.post("/login", data={"csrf": pre, "username": "alice", "password": "alice-pass-1"})
    cookie = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("msyn_session=")][0].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = c.get("/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    with app.state.sessionmaker() as db:
        h = db.scalar(select(User.password_hash).where(User.username == "alice"))
    assert h.startswith("$argon2") and "alice-pass-1" not in h
