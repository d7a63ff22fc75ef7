"""Alembic environment: runs on the connection handed over by ``db.upgrade``."""
from alembic import context

from mammosynth.reader.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the alembic CLI is not the supported entry point
    raise RuntimeError("run migrations through mammosynth.reader.db.upgrade")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
