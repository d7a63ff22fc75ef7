"""Reader studies and radiology training: a web app (``mammosynth serve``) with MRMC
statistics (:mod:`mammosynth.reader.stats`).

The statistics need only numpy/scipy; the web app needs the ``reader`` extra
(FastAPI, SQLAlchemy, Alembic, uvicorn, argon2-cffi).
"""
