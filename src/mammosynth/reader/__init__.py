"""Reader studies and radiology training: a web app (``mammosynth serve``) with MRMC
statistics (:mod:`mammosynth.reader.stats`).

The statistics need only numpy/scipy; the web app needs the ``reader`` extra
(FastAPI, SQLAlchemy, Alembic, uvicorn, argon2-cffi).
"""

#: The default database: a SQLite file in the working directory (WAL mode).
DEFAULT_DB = "sqlite:///mammosynth-reader.db"
