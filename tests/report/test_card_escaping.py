"""dataset_card.md never carries raw HTML from crafted labels, paths or summaries (issue 20)."""
from __future__ import annotations

import yaml

from mammosynth.report.card import dataset_card

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _metrics() -> dict:
    gov = {"path": f"/data/{EVIL}", "kind": "synthetic", "source": {"layout": EVIL}, "content_hash": "c" * 64,
           "manifest_sha256": "m" * 64, "created": "2026-01-01", "settings": {"label": EVIL}}
    return {
        "created": "2026-01-01T00:00:00+00:00", "mammosynth_version": "0.0",
        "governance": {"synthetic": gov, "real": {**gov, "path": f"/real/{EVIL}"},
                       "model": {"checkpoint_sha256": EVIL, "run": EVIL, "step": 1, "kimg": 1,
                                 "label_axes": {"density": [EVIL, "B"]}},
                       "generation_settings": {"mix": EVIL}},
        "datasets": {"synthetic": {"path": f"/syn/{EVIL}", "n_images": 3, "counts": {"density": {EVIL: 3}}}},
        "verdict": {"overall": "warn", "summary": f"density {EVIL} is rare",
                    "steps": [{"step": f"labels {EVIL}", "status": "warn", "summary": f"class {EVIL} | missing"}]},
    }


def test_card_body_escapes_html():
    text = dataset_card(_metrics())
    _, front, body = text.split("---\n", 2)
    assert "<script>" not in body and "<img" not in body
    assert "&lt;script&gt;" in body
    # the machine-readable front matter keeps the exact values (YAML, not rendered as HTML)
    fm = yaml.safe_load(front)
    assert fm["dataset"]["labels"]["density"] == {EVIL: 3}
