"""Figures for the HTML report, each returned as a base64 PNG ``data:`` URI (no files, no CDN).

matplotlib runs with the non-interactive Agg backend; thumbnails of mammograms are
encoded with Pillow directly (faster, exact pixels).
"""
from __future__ import annotations

import base64
import io
from typing import Any, Sequence

import numpy as np

REAL_COLOUR, SYN_COLOUR, MIX_COLOUR = "#1f77b4", "#d62728", "#2ca02c"
REGIME_COLOURS = {"real": REAL_COLOUR, "real+synthetic": MIX_COLOUR, "synthetic": SYN_COLOUR}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _fig_uri(fig) -> str:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_uri(img: np.ndarray, height: int = 160) -> str:
    """A mammogram (any dtype) as an 8-bit PNG data URI, windowed to its 0.5-99.5 percentiles."""
    from PIL import Image

    x = np.asarray(img, dtype=np.float64)
    lo, hi = np.percentile(x, [0.5, 99.5])
    x = np.clip((x - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(x)
    im = Image.fromarray((x * 255).astype(np.uint8), mode="L")
    if im.height != height:
        im = im.resize((max(1, round(im.width * height / im.height)), height), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def histograms(bin_edges: Sequence[float], real: Sequence[float], synthetic: Sequence[float]) -> str:
    """Real vs synthetic pixel-intensity histograms (breast pixels)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    e = np.asarray(bin_edges)
    centres = (e[:-1] + e[1:]) / 2
    ax.plot(centres, real, color=REAL_COLOUR, label="real")
    ax.plot(centres, synthetic, color=SYN_COLOUR, label="synthetic")
    ax.set_xlabel("pixel intensity (breast, 0-1)")
    ax.set_ylabel("fraction of pixels")
    ax.legend(frameon=False)
    return _fig_uri(fig)


def label_bars(title: str, real: dict[str, float], synthetic: dict[str, float]) -> str:
    """Side-by-side class proportions of one label axis."""
    plt = _plt()
    classes = list(dict.fromkeys(list(real) + list(synthetic)))
    rt, st = sum(real.values()) or 1, sum(synthetic.values()) or 1
    x = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(max(3.0, 0.8 * len(classes) + 1.5), 2.6))
    ax.bar(x - 0.2, [real.get(c, 0) / rt for c in classes], 0.4, color=REAL_COLOUR, label="real")
    ax.bar(x + 0.2, [synthetic.get(c, 0) / st for c in classes], 0.4, color=SYN_COLOUR, label="synthetic")
    ax.set_xticks(x, classes)
    ax.set_ylabel("proportion")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    return _fig_uri(fig)


def confusion(cm: Sequence[Sequence[int]], classes: Sequence[str], title: str) -> str:
    """Confusion matrix, rows = label, columns = prediction, row-normalised colours + counts."""
    plt = _plt()
    m = np.asarray(cm, dtype=np.float64)
    rows = m.sum(axis=1, keepdims=True)
    frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * k, 0.8 + 0.6 * k))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if frac[i, j] > 0.6 else "black")
    ax.set_xticks(range(k), classes, fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("label")
    ax.set_title(title, fontsize=9)
    return _fig_uri(fig)


def forest(rows: Sequence[dict[str, Any]], title: str = "") -> str:
    """AUC point estimates with 95% CIs; rows: ``{"label", "regime", "value", "ci_low", "ci_high"}``."""
    plt = _plt()
    rows = [r for r in rows if r.get("value") is not None]
    fig, ax = plt.subplots(figsize=(6.5, 0.6 + 0.28 * max(1, len(rows))))
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        c = REGIME_COLOURS.get(r["regime"], "black")
        ax.errorbar(r["value"], y, xerr=[[r["value"] - r["ci_low"]], [r["ci_high"] - r["value"]]], fmt="o",
                    color=c, capsize=3, ms=4)
    ax.set_yticks(range(len(rows)), [r["label"] for r in reversed(rows)], fontsize=8)
    ax.axvline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("AUC (95% CI)")
    if title:
        ax.set_title(title, fontsize=9)
    return _fig_uri(fig)


def roc_curves(roc: dict[str, dict[str, Sequence[float]]], labels: dict[str, str]) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    for regime, pts in roc.items():
        ax.plot(pts["fpr"], pts["tpr"], color=REGIME_COLOURS.get(regime, "black"), label=labels.get(regime, regime))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    return _fig_uri(fig)


def prdc_bars(prdc: dict[str, dict[str, Any]]) -> str:
    """Precision / recall / density / coverage per feature space."""
    plt = _plt()
    names = ("precision", "recall", "density", "coverage")
    spaces = [s for s, v in prdc.items() if isinstance(v, dict) and any(v.get(n) is not None for n in names)]
    fig, ax = plt.subplots(figsize=(5.0, 2.6))
    width = 0.8 / max(1, len(spaces))
    for k, space in enumerate(spaces):
        vals = [prdc[space].get(n) or 0.0 for n in names]
        ax.bar(np.arange(4) + k * width - 0.4 + width / 2, vals, width, label=space)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(4), names)
    ax.legend(frameon=False, fontsize=8)
    return _fig_uri(fig)


def summary_boxes(comparison: dict[str, Any], label: str) -> str:
    """Median and interquartile range of a per-image measure for real and synthetic images,
    overall and per stratum; ``comparison`` holds ``real`` / ``synthetic`` summaries
    (``median``, ``q25``, ``q75``) and optional ``strata`` of the same shape."""
    plt = _plt()
    rows = [("all", comparison)] + list((comparison.get("strata") or {}).items())
    fig, ax = plt.subplots(figsize=(5.5, 0.7 + 0.45 * len(rows)))
    for k, (name, c) in enumerate(rows):
        y = len(rows) - 1 - k
        for side, colour, dy in (("real", REAL_COLOUR, 0.12), ("synthetic", SYN_COLOUR, -0.12)):
            s = c.get(side) or {}
            if s.get("median") is None:
                continue
            lo, hi = s.get("q25", s["median"]), s.get("q75", s["median"])
            ax.errorbar(s["median"], y + dy, xerr=[[s["median"] - lo], [hi - s["median"]]], fmt="o", color=colour,
                        capsize=3, ms=4, label=side if k == 0 else None)
    ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)], fontsize=8)
    ax.set_xlabel(f"{label}: median and IQR")
    ax.legend(frameon=False, fontsize=8)
    return _fig_uri(fig)
