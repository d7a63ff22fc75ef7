"""Fixtures for the reader-study tests: tiny phantom datasets and app clients."""
from __future__ import annotations

import os
import re
import uuid

import pytest


@pytest.fixture(scope="session")
def phantoms(tmp_path_factory):
    """Two tiny phantom datasets: one stands in for real, one for synthetic images."""
    from mammosynth.phantom import PhantomConfig, make_phantom_dataset

    root = tmp_path_factory.mktemp("phantoms")
    cfg = dict(size=(96, 64), findings="mass:0.4", density="A:0.3,B:0.3,C:0.2,D:0.2")
    real = make_phantom_dataset(root / "real", 12, PhantomConfig(seed=1, **cfg), workers=1)
    synth = make_phantom_dataset(root / "synth", 12, PhantomConfig(seed=2, **cfg), workers=1)
    return real, synth


def db_urls() -> list:
    urls = ["sqlite"]
    if os.environ.get("MAMMOSYNTH_TEST_PG"):
        urls.append("postgresql")
    return urls


@pytest.fixture(params=db_urls())
def db_url(request, tmp_path):
    """SQLite file per test; on PostgreSQL a fresh schema per test (safe under xdist)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'reader.db'}"
        return
    from sqlalchemy import text

    from mammosynth.reader.db import make_engine

    base = os.environ["MAMMOSYNTH_TEST_PG"]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = make_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """A logged-in TestClient with the page's CSRF token at hand."""

    def __init__(self, app, username=None, password=None):
        from fastapi.testclient import TestClient

        self.c = TestClient(app, follow_redirects=False)
        if username:
            r = self.c.get("/login")
            tok = CSRF.search(r.text).group(1)
            r = self.c.post("/login", data={"csrf": tok, "username": username, "password": password})
            assert r.status_code == 303, r.text
        self.csrf = None

    def get(self, url, **kw):
        r = self.c.get(url, **kw)
        m = CSRF.search(r.text) if r.headers.get("content-type", "").startswith("text/html") else None
        if m:
            self.csrf = m.group(1)
        return r

    def post(self, url, data=None, csrf=True, **kw):
        if csrf and self.csrf is None:
            self.get("/")
        data = dict(data or {})
        if csrf:
            data["csrf"] = self.csrf
        return self.c.post(url, data=data, **kw)


@pytest.fixture
def make_app(db_url):
    from mammosynth.reader.app import create_app
    from mammosynth.reader import service

    def make(**kw):
        app = create_app(db_url, **kw)
        with app.state.sessionmaker.begin() as db:
            service.create_user(db, "admin", "admin-pass-1", "admin")
            for name in ("alice", "bob"):
                service.create_user(db, name, f"{name}-pass-1", "reader")
            service.create_user(db, "tina", "tina-pass-1", "trainee")
        return app

    return make


@pytest.fixture
def browser():
    return Browser
