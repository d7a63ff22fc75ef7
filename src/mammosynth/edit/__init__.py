"""mammosynth.edit: edit real films - insert or remove a lesion, change breast density - with
the labels kept right, every edited film marked and signed, and pixels outside the edit
mask bit for bit the source's.

>>> from mammosynth.edit import EditConfig, edit                        # doctest: +SKIP
>>> edit("prepared:test", "edited", EditConfig(insert="calcification"))  # doctest: +SKIP

Routes behind one interface (:class:`~.editors.Editor`): the physics route inserts the
phantom's lesion models (:mod:`.physics`); the learned routes (inpainting, SDEdit) need the
diffusion family (:mod:`.editors`). Validation: :mod:`.validate` (``evaluate --edits``).
"""
from .api import EditConfig, EditResult, edit, edited_id, read_sites
from .editors import EditError, EditOutcome, EditRequest, Editor, Site, make_editor
from .film import FilmModel, estimate_film
from .physics import INSERT_KINDS, PhysicsInserter, parse_insert

__all__ = ["EditConfig", "EditResult", "edit", "edited_id", "read_sites", "EditError", "EditOutcome", "EditRequest",
           "Editor", "Site", "make_editor", "FilmModel", "estimate_film", "INSERT_KINDS", "PhysicsInserter",
           "parse_insert"]
