"""The dataset card (``dataset_card.md``): Markdown with YAML front matter.

The front matter (between ``---`` lines, parsed with ``yaml.safe_load``) holds the
machine-readable record: source data (path, source description, content hash), model
(checkpoint hash, run), generation settings, intended use, limitations and the result of
each protocol step. The Markdown body says the same for people.
"""
from __future__ import annotations

import html
from typing import Any

INTENDED_USE = [
    "Research and development of mammography AI: data augmentation for training, stress tests, teaching.",
    "Only for the task and population evaluated in this card; re-evaluate before any other use.",
]
OUT_OF_SCOPE = [
    "Clinical diagnosis or any decision about a patient.",
    "Sole data for training or validating a clinical model: final testing must use independent real images.",
    "Presenting the images as real mammograms (they carry provenance marks; keep them).",
]


def key_figures(m: dict[str, Any]) -> list[str]:
    """One line per registered check that has something to say (:attr:`Check.card`)."""
    from .registry import checks

    return [line for c in checks() if c.card is not None and (line := c.card(m.get(c.key) or {}))]


def _limits(m: dict[str, Any]) -> list[str]:
    out = ["Synthetic images are labelled with the condition they were generated for, not read by a radiologist.",
           "Evaluation uses a small CPU classifier on downsampled images: it shows whether synthetic data helps or "
           "hurts such a model, not the effect on a production model."]
    for s in m["verdict"]["steps"]:
        if s["status"] in ("warn", "fail", "not computed"):
            out.append(f"{s['step']}: {s['status']} - {s['summary']}")
    return out


def _front_matter(m: dict[str, Any], figures: list[str]) -> dict[str, Any]:
    g = m["governance"]
    syn = m["datasets"]["synthetic"]
    u = m.get("utility") or {}
    return {
        "title": f"Synthetic mammograms: {syn['path']}",
        "card_version": 1,
        "created": m["created"],
        "mammosynth_version": m["mammosynth_version"],
        "dataset": {"path": g["synthetic"]["path"], "kind": g["synthetic"].get("kind"), "source": g["synthetic"].get("source"),
                    "n_images": syn["n_images"], "content_hash": g["synthetic"]["content_hash"],
                    "manifest_sha256": g["synthetic"]["manifest_sha256"], "created": g["synthetic"]["created"],
                    "labels": syn["counts"]},
        "source_data": {"path": g["real"]["path"], "source": g["real"]["source"], "content_hash": g["real"]["content_hash"],
                        "manifest_sha256": g["real"]["manifest_sha256"], "preprocessing": g["real"]["settings"]},
        "model": g["model"],
        "generation_settings": g["generation_settings"],
        "intended_use": INTENDED_USE,
        "out_of_scope": OUT_OF_SCOPE,
        "limitations": _limits(m),
        "evaluation": {
            "overall": m["verdict"]["overall"],
            "task": u.get("task"),
            "protocol": [{"step": s["step"], "status": s["status"], "summary": s["summary"]} for s in m["verdict"]["steps"]],
            "figures": figures,
            "reference": "Pesapane et al., Diagnostics 2025: governance, statistical comparison, with/without "
                         "synthetic training tested on independent real images, subgroup analyses",
        },
    }


def _md(value: Any) -> str:
    """Text from data (labels, paths, summaries) for the Markdown body: HTML escaped, since
    Markdown renderers pass raw HTML through (a crafted label must not become a script), and
    newlines folded so a value cannot start a heading or a list of its own."""
    return html.escape(" ".join(str(value).split()), quote=False)


def dataset_card(m: dict[str, Any]) -> str:
    """The card text for the JSON-safe metrics ``m`` of :func:`mammosynth.report.evaluate`.

    The YAML front matter keeps exact values (it is data, quoted by the YAML writer); every
    value in the Markdown body goes through :func:`_md`.
    """
    import yaml

    figures = key_figures(m)
    fm = _front_matter(m, figures)
    front = yaml.safe_dump(fm, sort_keys=False, allow_unicode=True, width=100)
    src, model = fm["source_data"], fm["model"]
    lines = ["---", front.rstrip("\n"), "---", "", f"# {_md(fm['title'])}", "",
             f"**Overall verdict: {_md(m['verdict']['overall']).upper()}.** {_md(m['verdict']['summary'])}", "",
             "## Source data", "",
             f"- Real dataset: `{_md(src['path'])}` (content hash `{_md(src['content_hash'])}`)",
             f"- Source: {_md(src['source'])}", "",
             "## Model", "",
             f"- Checkpoint SHA-256: `{_md(model.get('checkpoint_sha256'))}`",
             f"- Training run: `{_md(model.get('run'))}` (step {_md(model.get('step'))}, kimg {_md(model.get('kimg'))})",
             f"- Conditioned axes: {_md(model.get('label_axes'))}", "",
             "## Intended use", "", *[f"- {x}" for x in INTENDED_USE], "",
             "## Out of scope", "", *[f"- {x}" for x in OUT_OF_SCOPE], "",
             "## Protocol results", "", "| Step | Result | Summary |", "|---|---|---|",
             *[f"| {_md(s['step']).replace('|', '/')} | {_md(s['status'])} | {_md(s['summary']).replace('|', '/')} |"
               for s in m["verdict"]["steps"]], "",
             "## Key figures", "", *([f"- {_md(x)}" for x in figures] or ["- none computed"]), "",
             "## Limitations", "", *[f"- {_md(x)}" for x in fm["limitations"]], "",
             "Full numbers: `metrics.json`; figures: `report.html`.", ""]
    return "\n".join(lines)
