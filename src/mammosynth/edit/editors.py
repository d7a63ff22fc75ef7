"""One interface for every edit route: an :class:`Editor` turns one film into an edited one.

``edit()`` (:mod:`.api`) reads each film, checks what does not depend on the route (box in
the image, finding present for a removal, breast mask for a density edit), hands an
:class:`EditRequest` to the route's editor and writes the :class:`EditOutcome`. A route
raises :class:`EditError` for a film it cannot edit (the run goes on; the film goes to
``rejects.jsonl``) and ``ValueError`` for a configuration it cannot run at all.

Routes:

=========  ===========  ========================================================  ==========
operation  route        how                                                       status
=========  ===========  ========================================================  ==========
insert     physics      phantom lesion models in log-attenuation space            here
insert     diffusion    RePaint of the physics route's lesion mask, finding=KIND  :mod:`.learned`
remove     diffusion    RePaint with finding=none over the finding's mask         :mod:`.learned`
density    diffusion    SDEdit: noise to ``strength``, denoise under the target   :mod:`.learned`
=========  ===========  ========================================================  ==========

The learned routes (:mod:`.learned`) are built lazily by :func:`make_editor` from a trained
run through the diffusion family (``mammosynth.sampling.load_pipeline``), imported
lazily; without diffusers installed, asking for them says so.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..data.schema import Finding, ImageRecord

OPERATIONS = ("insert", "remove", "density")
ROUTES = ("auto", "physics", "diffusion")
#: the route ``auto`` picks per operation
DEFAULT_ROUTE = {"insert": "physics", "remove": "diffusion", "density": "diffusion"}


class EditError(ValueError):
    """A film this edit cannot be applied to (the message names the image and the reason)."""


@dataclass(frozen=True)
class Site:
    """Where to edit: a box ``(x0, y0, x1, y1)`` in stored pixels and/or a boolean mask."""

    box: tuple[int, int, int, int] | None = None
    mask: np.ndarray | None = None


@dataclass
class EditRequest:
    """One film to edit, with what the route needs."""

    image: np.ndarray  # uint16, stored orientation
    record: ImageRecord
    masks: dict[int, np.ndarray]  # the source findings' masks (finding index -> bool)
    rng: np.random.Generator
    site: Site | None = None  # insert: where; None = a random plausible site
    finding: int | None = None  # remove: index of the finding to remove
    density: str | None = None  # density: the target ACR class
    strength: float = 0.5  # density: SDEdit noise level


@dataclass
class EditOutcome:
    """An edited film: the pixels, where they may differ from the source, and the new labels."""

    image: np.ndarray  # uint16
    edit_mask: np.ndarray  # bool: pixels outside are the source's, bit for bit
    findings: tuple[Finding, ...]  # the edited film's findings (all of them)
    masks: dict[int, np.ndarray]  # finding index -> bool mask, for ``findings``
    density: str | None = None  # None: unchanged
    params: dict[str, Any] = field(default_factory=dict)  # JSON-ready: what was done


@runtime_checkable
class Editor(Protocol):
    """A route for one operation."""

    operation: str
    route: str

    def settings(self) -> dict[str, Any]:
        """JSON-ready settings that identify the route (stored in dataset.json)."""
        ...

    def apply(self, request: EditRequest) -> EditOutcome:
        """Edit one film; raise :class:`EditError` when this film cannot be edited."""
        ...


def diffusion_available() -> bool:
    """Whether the diffusion family (``mammosynth.sampling.diffusion``) is installed."""
    try:
        return importlib.util.find_spec("mammosynth.sampling.diffusion") is not None
    except (ImportError, ValueError):
        return False


def make_editor(config: Any) -> Editor:
    """The editor for ``config`` (an :class:`~mammosynth.edit.api.EditConfig`)."""
    op = config.operation
    route = DEFAULT_ROUTE[op] if config.route == "auto" else config.route
    if op == "insert" and route == "physics":
        from .physics import PhysicsInserter

        return PhysicsInserter(config.insert, feather_px=config.feather_px, size_mm=config.size_mm)
    if route == "physics":
        raise ValueError(f"--{op} has no physics route (the phantom's models only add lesions); "
                         "it needs the diffusion route (--route diffusion --run RUN)")
    if not diffusion_available():
        raise ValueError(f"the {route} route of --{op} needs the diffusion family (mammosynth.sampling.diffusion, "
                         "load_pipeline), which this installation lacks")
    if not config.model:
        raise ValueError(f"the {route} route of --{op} needs a trained diffusion model (--run RUN, EditConfig.model)")
    from .learned import DiffusionDensity, DiffusionInserter, DiffusionPrior, DiffusionRemover
    from .physics import PhysicsInserter

    if op == "insert":  # a bad lesion spec or size fails before the model is loaded
        PhysicsInserter(config.insert, feather_px=config.feather_px, size_mm=config.size_mm)
    prior = DiffusionPrior.from_run(config.model, guidance=config.guidance)
    if op == "insert":
        return DiffusionInserter(prior, config.insert, config.feather_px, config.size_mm)
    return DiffusionRemover(prior, config.feather_px) if op == "remove" else DiffusionDensity(prior)
