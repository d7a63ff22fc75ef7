"""The typed result of one metric: :class:`MetricResult`.

Every metric returns one: a finite value (or None), an optional confidence interval,
whether it could be computed and, when not, why. Anything else a metric wants to report
(a standard deviation, a note, the features that carry a distance) goes in ``details``.

``to_dict()`` is the metrics.json record and keeps the keys readers have always used,
``{"value", "available", "reason", **details}``, plus ``ci_low`` / ``ci_high`` when there
is an interval. Nothing here is ever NaN or infinite: :meth:`MetricResult.of` refuses
such a value (a bug upstream should raise, not hide in a report).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping


def _finite(v: Any, what: str) -> float:
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"{what} is not finite ({f})")
    return f


@dataclass(frozen=True)
class MetricResult:
    """One metric: ``value`` with an optional 95% ``ci`` (low, high), or not available with a ``reason``."""

    value: float | None
    ci: tuple[float, float] | None = None
    available: bool = True
    reason: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.available and self.value is None:
            raise ValueError("an available metric needs a value")
        if not self.available and not self.reason:
            raise ValueError("an unavailable metric needs a reason")
        if self.value is not None:
            object.__setattr__(self, "value", _finite(self.value, "metric value"))
        if self.ci is not None:
            lo, hi = (_finite(c, "confidence bound") for c in self.ci)
            object.__setattr__(self, "ci", (lo, hi))

    @classmethod
    def of(cls, value: float, ci: tuple[float, float] | None = None, **details: Any) -> "MetricResult":
        """A computed metric; ValueError when ``value`` or ``ci`` is NaN or infinite."""
        return cls(value=value, ci=ci, available=True, reason=None, details=details)

    @classmethod
    def unavailable(cls, reason: str, **details: Any) -> "MetricResult":
        """A metric that was not computed, with why."""
        return cls(value=None, ci=None, available=False, reason=str(reason), details=details)

    def to_dict(self) -> dict[str, Any]:
        """The metrics.json record: ``value``, ``available``, ``reason`` (+ ``ci_low``/``ci_high``) and the details."""
        out: dict[str, Any] = {"value": self.value, "available": self.available, "reason": self.reason}
        if self.ci is not None:
            out["ci_low"], out["ci_high"] = self.ci
        out.update(self.details)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "MetricResult":
        """Back from a metrics.json record (keys other than the standard ones become details)."""
        core = {"value", "available", "reason", "ci_low", "ci_high"}
        ci = (d["ci_low"], d["ci_high"]) if d.get("ci_low") is not None and d.get("ci_high") is not None else None
        available = bool(d.get("available", d.get("value") is not None))
        return cls(value=d.get("value") if available else None, ci=ci, available=available,
                   reason=d.get("reason") or (None if available else "not computed"),
                   details={k: v for k, v in d.items() if k not in core})


__all__ = ["MetricResult"]
