"""The registry of protocol checks: one :class:`Check` per step of the evaluation.

:func:`mammosynth.report.evaluate` computes, :func:`~mammosynth.report.verdict.verdict`
judges, :func:`~mammosynth.report.html.render_report` shows and
:func:`~mammosynth.report.card.dataset_card` summarises every registered check, in
``order``; none of them names a check. Adding a metric to the protocol is one module
with a compute function, a verdict rule, a card line and a template partial, and one
:func:`register` call (see :mod:`mammosynth.report.steps.realism`).

A check declares

* ``key``: where its numbers go in metrics.json (several checks may read one key; only
  the first, the one with ``compute``, writes it);
* ``title`` (report section heading) and ``step`` (protocol step name in the verdict and
  the card; unique);
* ``compute(inputs) -> dict | MetricResult``: everything from one shared
  :class:`EvalInputs` (decoded images, splits, configuration, artefacts of earlier checks);
* ``rule(section) -> Step``: pass / warn / fail / not computed, with the reason in words,
  from the JSON-safe ``metrics[key]``;
* ``template``: the Jinja2 partial under ``report/templates/`` that renders the section
  (context: ``s`` = metrics[key], ``m`` = all metrics, ``data`` = the EvalImages by role,
  ``step`` = this check's verdict step); a check from outside the package gives the
  partial's text in ``template_source`` (autoescaped like the others);
* ``card(section) -> str | None``: a line for the dataset card's key figures.
"""
from __future__ import annotations

import importlib
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..metrics.images import EvalImages

STATUSES = ("pass", "warn", "fail", "not computed")


@dataclass(frozen=True)
class Step:
    """The verdict on one protocol step."""

    step: str
    status: str
    summary: str
    details: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        object.__setattr__(self, "details", tuple(self.details))

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "status": self.status, "summary": self.summary, "details": list(self.details)}


@dataclass
class EvalInputs:
    """What every check computes from: the evaluation's decoded image sets and its configuration.

    ``train`` / ``test`` / ``heldout`` are None when the real set has no such split.
    ``shared`` carries artefacts between checks (classifier inputs, utility scores for
    equity); it is not written anywhere. ``timings`` collects shared stages (seconds).
    """

    real: EvalImages
    synthetic: EvalImages
    train: EvalImages | None
    test: EvalImages | None
    heldout: EvalImages | None
    config: Any  # EvaluateConfig (not imported: evaluate imports this module)
    out_dir: Path | None = None  # the report folder, for files a check writes next to the report
    shared: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def missing_split(self) -> str | None:
        """Why the classifier checks cannot run (no train or test split), or None."""
        if self.train is None:
            return "no real training split (pass --train)"
        if self.test is None:
            return "no real test split (pass --test)"
        return None

    def roles(self) -> dict[str, EvalImages | None]:
        return {"real": self.real, "synthetic": self.synthetic, "train": self.train, "test": self.test,
                "heldout": self.heldout}

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Time a shared stage (added to ``timings[name]``)."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t


@dataclass(frozen=True)
class Check:
    """One protocol step: what it computes, how it is judged, shown and summarised."""

    key: str
    title: str
    step: str
    rule: Callable[[dict[str, Any]], Step]
    template: str
    compute: Callable[[EvalInputs], Any] | None = None
    card: Callable[[dict[str, Any]], str | None] | None = None
    order: float = 100.0
    template_source: str | None = None

    def judge(self, metrics: dict[str, Any]) -> Step:
        """This check's verdict from the metrics (a rule that raises is a bug: it propagates)."""
        step = self.rule(metrics.get(self.key) or {})
        if not isinstance(step, Step):
            raise TypeError(f"rule of {self.step!r} returned {type(step).__name__}, expected Step")
        return step if step.step == self.step else Step(self.step, step.status, step.summary, step.details)


_REGISTRY: dict[str, Check] = {}
_BUILTINS = "mammosynth.report.steps"


def register(check: Check, replace: bool = False) -> Check:
    """Add ``check`` to the protocol (ValueError when its step name is taken, unless ``replace``)."""
    if check.step in _REGISTRY and not replace:
        raise ValueError(f"a check named {check.step!r} is already registered")
    _REGISTRY[check.step] = check
    return check


def unregister(step: str) -> None:
    """Remove the check named ``step`` (KeyError when there is none)."""
    del _REGISTRY[step]


def checks() -> list[Check]:
    """Every registered check in protocol order (the built-in ones are registered on first call)."""
    importlib.import_module(_BUILTINS)
    return sorted(_REGISTRY.values(), key=lambda c: c.order)


def template_source(name: str) -> str | None:
    """The inline partial of the registered check whose ``template`` is ``name`` (None: none)."""
    for c in _REGISTRY.values():
        if c.template == name and c.template_source is not None:
            return c.template_source
    return None


def writers() -> list[Check]:
    """The checks that compute a metrics.json key, in order (one per key)."""
    seen: set[str] = set()
    out = []
    for c in checks():
        if c.compute is not None and c.key not in seen:
            seen.add(c.key)
            out.append(c)
    return out


__all__ = ["Check", "EvalInputs", "Step", "STATUSES", "checks", "register", "unregister", "writers"]
