"""The reader-study database: SQLAlchemy 2 models, engine set-up, Alembic upgrade.

SQLite (the default, a file in the working directory) runs in WAL mode with a busy
timeout so that concurrent readers do not block each other; PostgreSQL is used by URL
(``postgresql+psycopg://user:pass@host/db``). The schema is created and upgraded by the
Alembic migrations in ``migrations/``, never by ``create_all``.
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Float, ForeignKey, Integer, String, Text, UniqueConstraint, create_engine, event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from . import DEFAULT_DB
ROLES = ("admin", "reader", "trainee")


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[_dt.datetime] = mapped_column(default=utcnow)


class AuthSession(Base):
    __tablename__ = "auth_sessions"
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[_dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[_dt.datetime]


class Study(Base):
    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # realsynth | detection | training
    scale: Mapped[str] = mapped_column(String(8))  # 5point | 100
    settings: Mapped[str] = mapped_column(Text, default="{}")  # the StudySpec as JSON
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[_dt.datetime] = mapped_column(default=utcnow)


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)  # random, shown to readers
    label: Mapped[str] = mapped_column(String(200))  # admin-facing id (dataset/image ids)
    truth: Mapped[str] = mapped_column(Text)  # JSON: synthetic, source, lesions
    tier: Mapped[int] = mapped_column(Integer, default=1)

    @property
    def truth_dict(self) -> dict[str, Any]:
        return json.loads(self.truth)


class CaseImage(Base):
    __tablename__ = "case_images"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)  # random image id
    position: Mapped[int] = mapped_column(Integer, default=0)
    view: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)  # stored image file (never sent to readers)
    height: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    scale: Mapped[float] = mapped_column(Float, default=1.0)  # stored pixels per served pixel


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("study_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    seed: Mapped[int] = mapped_column(Integer)  # per-reader case order


class Answer(Base):
    """Append-only: one row per (case, reader, session); never updated or deleted."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("case_id", "user_id", "session_no"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    session_no: Mapped[int] = mapped_column(Integer, default=0)
    rating: Mapped[float | None] = mapped_column(Float, nullable=True)
    marks: Mapped[str] = mapped_column(Text, default="[]")  # JSON, stored-image pixels
    score: Mapped[float | None] = mapped_column(Float, nullable=True)  # training feedback
    elapsed_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[_dt.datetime] = mapped_column(default=utcnow)


@event.listens_for(Answer, "before_update")
@event.listens_for(Answer, "before_delete")
def _answers_are_append_only(mapper, connection, target) -> None:  # noqa: ARG001
    raise RuntimeError("answers are append-only")


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str = DEFAULT_DB) -> Engine:
    """An engine for ``url``: SQLite gets WAL and a busy timeout, others a pool check."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_db(url: str = DEFAULT_DB) -> sessionmaker[Session]:
    """Engine + migrations + a session factory for ``url``."""
    engine = make_engine(url)
    upgrade(engine)
    return sessionmaker(engine, expire_on_commit=False)
