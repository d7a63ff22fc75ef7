"""A standalone HTML report of a study analysis (``mammosynth study analyze --html``)."""
from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape


def render_html(res) -> str:
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(default=True))
    css = (Path(__file__).parent / "static" / "style.css").read_text(encoding="utf-8")
    return env.get_template("report.html").render(res=res, css=css)
