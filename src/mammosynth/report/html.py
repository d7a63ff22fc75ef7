"""The self-contained HTML report (inline CSS, plots and thumbnails as base64 PNG; no scripts).

Rendered with Jinja2 from ``report/templates/`` with autoescaping on: every string from
the data (paths, labels, reasons) is escaped; only the helpers below produce markup, and
they escape what they embed. ``report.html`` loops over the registered checks
(:func:`mammosynth.report.registry.checks`) and includes each one's partial with

* ``s``: the check's section of the metrics (``metrics[check.key]``), ``m``: all metrics;
* ``step``: the check's verdict step (dict), ``check``: the :class:`Check`;
* ``data``: the evaluation's images by role (``real``, ``synthetic``, ``train``...);
* ``out_dir``: the report folder (files a check wrote there can be embedded: ``file_uri``).

Every metric that was not computed is shown as "not computed: <reason>".
"""
from __future__ import annotations

import base64
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from . import plots

STATUS_COLOURS = {"pass": "#1a7f37", "warn": "#b26b00", "fail": "#c62828", "not computed": "#6e7781"}


# -- helpers (filters and globals of the templates) -------------------------------------
def badge(status: str) -> Markup:
    return Markup('<span class="badge" style="background:{}">{}</span>').format(
        STATUS_COLOURS.get(status, "#6e7781"), status)


def na(reason: Any) -> Markup:
    return Markup('<span class="na">not computed: {}</span>').format(str(reason or "unknown reason"))


def num(v: Any, fmt: str = ".3f") -> Markup | str:
    if v is None:
        return Markup('<span class="na">n/a</span>')
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return format(v, fmt)
    if isinstance(v, int):
        return str(v)
    return escape(str(v))


def metric(m: Any, fmt: str = ".4g") -> Markup | str:
    """A ``{"value", "available", "reason"}`` record (or a bare number) as HTML."""
    if isinstance(m, dict):
        if not m.get("available", m.get("value") is not None) or m.get("value") is None:
            return na(m.get("reason"))
        s = format(m["value"], fmt)
        if m.get("std") is not None:
            s += f" ± {format(m['std'], fmt)}"
        return s
    return num(m, fmt)


def auc_ci(r: Any) -> Markup:
    """An AUC record ``{"value"|"auc", "ci_low", "ci_high", "available"}`` as 'AUC (lo–hi)'."""
    if not r or (not r.get("available", True)):
        return na((r or {}).get("reason"))
    v = r.get("value", r.get("auc"))
    if v is None:
        return na(r.get("reason"))
    if r.get("ci_low") is None or r.get("ci_high") is None:
        return Markup("{}").format(format(v, ".3f"))
    return Markup("{} <span class='small'>({}–{})</span>").format(format(v, ".3f"), format(r["ci_low"], ".3f"),
                                                                   format(r["ci_high"], ".3f"))


def pretty_json(obj: Any) -> str:
    return json.dumps(obj, indent=1)


def grid(ds: Any, n: int, seed: int) -> list[dict[str, str]]:
    """Thumbnails of ``n`` seeded random images of ``ds`` (an EvalImages): uri, alt, caption."""
    if ds is None or len(ds) == 0:
        return []
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), min(n, len(ds)), replace=False))
    out = []
    for i in idx:
        r = ds[int(i)]
        out.append({"uri": plots.image_uri(ds.image(int(i)), 150), "alt": r.image_id,
                    "caption": f"{r.density} {r.view} {r.finding_kind}"})
    return out


def thumb(ds: Any, image_id: Any) -> str | None:
    """Data URI of the image with ``image_id`` in ``ds`` (None when absent)."""
    if ds is None:
        return None
    for i, r in enumerate(ds):
        if r.image_id == image_id:
            return plots.image_uri(ds.image(i), 150)
    return None


def file_uri(out_dir: Path | None, name: Any) -> str | None:
    """A PNG a check wrote into the report folder, as a data URI (None when missing)."""
    if out_dir is None or not name:
        return None
    path = Path(out_dir) / str(name)
    if not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


@lru_cache(maxsize=1)
def environment():
    """The Jinja2 environment: templates from the package, autoescaping on for every template."""
    from jinja2 import ChainableUndefined, ChoiceLoader, Environment, FunctionLoader, PackageLoader

    from .registry import template_source

    def inline(name: str) -> tuple[str, None, Any] | None:
        src = template_source(name)  # registrations may change: never served from the cache
        return None if src is None else (src, None, lambda: False)

    loader = ChoiceLoader([PackageLoader("mammosynth.report", "templates"), FunctionLoader(inline)])
    env = Environment(loader=loader, autoescape=True, auto_reload=True,
                      undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=num, metric=metric, auc_ci=auc_ci, na=na, badge=badge, pretty_json=pretty_json)
    env.globals.update(plots=plots, grid=grid, thumb=thumb, file_uri=file_uri, badge=badge, na=na,
                       colours=STATUS_COLOURS)
    return env


def render_report(m: dict[str, Any], datasets: dict[str, Any], out_dir: Path | None = None) -> str:
    """The full HTML document for the JSON-safe metrics ``m``; ``datasets``: images by role."""
    from .registry import checks

    steps = {s["step"]: s for s in m["verdict"]["steps"]}
    sections = [{"check": c, "s": m.get(c.key) or {}, "step": steps.get(c.step, {})} for c in checks()]
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in (m.get("timings_s") or {}).items())
    return environment().get_template("report.html").render(m=m, sections=sections, data=datasets,
                                                            out_dir=out_dir, timings=timings)
