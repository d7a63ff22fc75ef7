"""The protocol's checks, registered on import (:mod:`mammosynth.report.registry`).

One module per step family; importing it registers its checks. A new step is a new
module here and one line below.
"""
from __future__ import annotations

from . import core, edits, realism  # noqa: F401  (registration on import)
