"""The self-contained HTML report (inline CSS, plots and thumbnails as base64 PNG; no scripts).

:func:`render_report` takes the JSON-safe metrics of :func:`mammosynth.report.evaluate`
and the datasets (for thumbnails and nearest-neighbour pairs, loaded by image id).
Every metric that was not computed is shown as "not computed: <reason>".
"""
from __future__ import annotations

import json
from html import escape
from typing import Any

import numpy as np

from . import plots

STATUS_COLOURS = {"pass": "#1a7f37", "warn": "#b26b00", "fail": "#c62828", "not computed": "#6e7781"}
CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1180px;padding:16px 28px;
color:#1f2328;line-height:1.4}
h1{font-size:26px;margin-bottom:2px} h2{border-bottom:2px solid #d0d7de;padding-bottom:4px;margin-top:34px}
h3{margin-bottom:6px} table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top} th{background:#f6f8fa}
.badge{display:inline-block;color:#fff;border-radius:4px;padding:2px 8px;font-weight:600;font-size:12px;
white-space:nowrap}
.overall{font-size:18px;padding:12px 16px;border-radius:6px;color:#fff;margin:10px 0}
.na{color:#6e7781;font-style:italic} .small{font-size:12px;color:#57606a}
.grid{display:flex;flex-wrap:wrap;gap:4px} .grid figure{margin:0;text-align:center;font-size:10px;color:#57606a}
.pairs{display:flex;flex-wrap:wrap;gap:14px} .pair{border:1px solid #d0d7de;padding:4px;font-size:11px}
.row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start} pre{background:#f6f8fa;padding:8px;font-size:11px;
overflow-x:auto;max-height:260px}
"""


def badge(status: str) -> str:
    return f'<span class="badge" style="background:{STATUS_COLOURS.get(status, "#6e7781")}">{escape(status)}</span>'


def na(reason: Any) -> str:
    return f'<span class="na">not computed: {escape(str(reason or "unknown reason"))}</span>'


def num(v: Any, fmt: str = ".3f") -> str:
    if v is None:
        return '<span class="na">n/a</span>'
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        return format(v, fmt) if isinstance(v, float) else str(v)
    return escape(str(v))


def metric(m: Any, fmt: str = ".4g") -> str:
    """A ``{"value", "available", "reason"}`` record (or a bare number) as HTML."""
    if isinstance(m, dict):
        if not m.get("available", m.get("value") is not None) or m.get("value") is None:
            return na(m.get("reason"))
        s = format(m["value"], fmt)
        if m.get("std") is not None:
            s += f" ± {format(m['std'], fmt)}"
        return s
    return num(m, fmt)


def auc_ci(r: dict[str, Any]) -> str:
    if not r or not r.get("available"):
        return na((r or {}).get("reason"))
    return f"{r['value']:.3f} <span class='small'>({r['ci_low']:.3f}–{r['ci_high']:.3f})</span>"


def img(uri: str, alt: str = "", extra: str = "") -> str:
    return f'<img src="{uri}" alt="{escape(alt)}" {extra}>'


def table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


# -- sections ------------------------------------------------------------------------
def _verdict(m: dict[str, Any]) -> str:
    v = m["verdict"]
    rows = [[escape(s["step"]), badge(s["status"]), escape(s["summary"]) +
             ("<ul class='small'>" + "".join(f"<li>{escape(d)}</li>" for d in s["details"]) + "</ul>" if s["details"] else "")]
            for s in v["steps"]]
    return (f'<div class="overall" style="background:{STATUS_COLOURS[v["overall"]]}"><b>Overall: '
            f'{escape(v["overall"].upper())}</b> — {escape(v["summary"])}</div>'
            + table(["Protocol step", "Result", "What it means"], rows))


def _governance(m: dict[str, Any]) -> str:
    g = m["governance"]
    mo = g["model"]
    rows = [["Real data", escape(g["real"]["path"]), f"<code>{escape(str(g['real']['content_hash']))}</code>"],
            ["Real source", f"<pre>{escape(json.dumps(g['real']['source'], indent=1))}</pre>", ""],
            ["Synthetic set", escape(g["synthetic"]["path"]), f"<code>{escape(str(g['synthetic']['content_hash']))}</code>"],
            ["Generator checkpoint (SHA-256)", f"<code>{escape(str(mo.get('checkpoint_sha256')))}</code>", ""],
            ["Training run / step / kimg", escape(f"{mo.get('run')} / {mo.get('step')} / {mo.get('kimg')}"), ""],
            ["Conditioned axes", escape(json.dumps(mo.get("label_axes"))), ""]]
    ds_rows = []
    for name, d in m["datasets"].items():
        if d is None:
            ds_rows.append([name, na("not available"), "", ""])
            continue
        c = d["counts"]
        ds_rows.append([name, escape(f"{d['path']}{':' + d['split'] if d['split'] else ''}"), str(d["n_images"]),
                        escape(f"density {c['density']}; finding {c['finding']}; view {c['view']}")])
    return (table(["Item", "Value", "Content hash"], rows)
            + "<h3>Datasets used</h3>" + table(["Role", "Path", "Images", "Labels"], ds_rows)
            + f"<details><summary>Generation settings</summary><pre>{escape(json.dumps(g['generation_settings'], indent=1))}</pre></details>")


def _grid(ds, n: int, seed: int) -> str:
    if ds is None or len(ds) == 0:
        return na("no images")
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), min(n, len(ds)), replace=False))
    figs = []
    for i in idx:
        r = ds[int(i)]
        cap = f"{r.density} {r.view} {r.finding_kind}"
        figs.append(f"<figure>{img(plots.image_uri(ds.image(int(i)), 150), r.image_id)}<figcaption>{escape(cap)}"
                    "</figcaption></figure>")
    return f'<div class="grid">{"".join(figs)}</div>'


def _population(m: dict[str, Any], datasets: dict[str, Any]) -> str:
    im = m["image_metrics"]
    parts = ["<h3>Example images</h3><div class='row'><div><b>Real</b>" + _grid(datasets["real"], 8, 0)
             + "</div><div><b>Synthetic</b>" + _grid(datasets["synthetic"], 8, 1) + "</div></div>"]
    if not im.get("available", True) and "labels" not in im:
        parts.append(f"<p>Image metrics {na(im.get('reason'))}</p>")
    labels = im.get("labels") or {}
    if not labels and m["datasets"].get("real") and m["datasets"].get("synthetic"):
        # image metrics off or failed: still show the label counts (without distances)
        rc, sc = m["datasets"]["real"]["counts"], m["datasets"]["synthetic"]["counts"]
        labels = {a: {"real": rc.get(a, {}), "synthetic": sc.get(a, {})} for a in ("density", "finding", "view")}
    plots_html, rows = [], []
    for axis, d in labels.items():
        if isinstance(d, dict) and "real" in d:
            plots_html.append(img(plots.label_bars(axis, d["real"], d["synthetic"]), axis))
            rows.append([escape(axis), num(d.get("tv")), num(d.get("chi2_p"), ".3g")])
    if rows:
        parts.append("<h3>Label distributions</h3><div class='row'>" + "".join(plots_html) + "</div>"
                     + table(["Axis", "Total-variation distance", "χ² p-value"], rows))
    inten = im.get("intensity") or {}
    if inten.get("histograms"):
        h = inten["histograms"]
        mo = inten.get("moments", {})
        mrows = [[k] + [num((mo.get(s) or {}).get(k), ".4g") for s in ("real", "synthetic")]
                 for k in ("mean", "sd", "skewness", "kurtosis")]
        drows = [[escape(k), num(v, ".4g")] for k, v in (inten.get("distances") or {}).items()]
        parts.append("<h3>Pixel intensities (breast region)</h3><div class='row'>"
                     + img(plots.histograms(h["bin_edges"], h["real"], h["synthetic"]), "histograms")
                     + table(["Moment", "Real", "Synthetic"], mrows) + table(["Distance", "Value"], drows) + "</div>")
    fid = im.get("fidelity") or {}
    if fid:
        frows = [[escape(k), metric(v) + (f"<br><span class='small'>{escape(str(v['note']))}</span>"
                                          if isinstance(v, dict) and v.get("note") else "")] for k, v in fid.items()]
        tex = im.get("texture") or {}
        if "distance" in tex:
            frows.append(["texture (GLCM) distance", num(tex.get("distance"), ".4g")])
        ex = im.get("extractor") or {}
        parts.append("<h3>Fidelity (lower is closer)</h3>" + table(["Metric", "Value"], frows)
                     + (f"<p class='small'>Feature extractor: {escape(str(ex.get('name')))} v{escape(str(ex.get('version')))}"
                        f" ({escape(str(ex.get('dim')))} dims). {escape(str(ex.get('why', '')))}</p>" if ex else ""))
    prdc = im.get("prdc") or {}
    if prdc:
        prow = [[escape(s)] + [num((v or {}).get(k)) for k in ("precision", "recall", "density", "coverage")]
                for s, v in prdc.items() if isinstance(v, dict)]
        parts.append("<h3>Precision / recall / density / coverage</h3><div class='row'>" + img(plots.prdc_bars(prdc), "PRDC")
                     + table(["Features", "Precision", "Recall", "Density", "Coverage"], prow) + "</div>"
                     "<p class='small'>Precision: synthetic images inside the real manifold (realism). Recall / coverage: "
                     "real variety reproduced. Density near 1 is ideal.</p>")
    return "".join(parts)


def _conditioning(m: dict[str, Any]) -> str:
    c = m.get("conditioning") or {}
    if not c.get("available"):
        return f"<p>{na(c.get('reason'))}</p>"
    parts = [f"<p class='small'>Axes from: {escape(c['axes_from'])}. A CNN trained on the real training split "
             "predicts each synthetic image's class; the same CNN on real test images is the ceiling.</p>"]
    for axis, d in c["axes"].items():
        if not d.get("available"):
            parts.append(f"<h3>{escape(axis)}</h3><p>{na(d.get('reason'))}</p>")
            continue
        rows, figs = [], []
        for name, key in (("real test (ceiling)", "real_test"), ("synthetic (as generated)", "synthetic")):
            r = d[key]
            if not r.get("available"):
                rows.append([name, na(r.get("reason")), "", "", ""])
                continue
            rows.append([name, str(r["n"]), num(r["accuracy"]),
                         num(r["kappa"]) if r["kappa"] is not None else na(r["kappa_reason"]), num(r.get("chance"))])
            figs.append(img(plots.confusion(r["confusion"], r["classes"], f"{axis}: {name}"), name))
        parts.append(f"<h3>{escape(axis)} {badge(d['status'])}</h3><p>{escape(d['summary'])}</p>"
                     + table(["Images", "n", "Accuracy", "Cohen's κ", "Majority-class rate"], rows)
                     + f"<div class='row'>{''.join(figs)}</div>")
    return "".join(parts)


def _utility(m: dict[str, Any]) -> str:
    u = m.get("utility") or {}
    if not u.get("available"):
        return f"<p>{na(u.get('reason'))}</p>"
    rows, forest = [], []
    for regime, r in u["regimes"].items():
        seeds = r.get("seeds") or {}
        spread = (f"{seeds['mean']:.3f} ± {seeds['sd']:.3f} (n={seeds['n']})" if seeds.get("mean") is not None else "")
        rows.append([escape(r["label"]), auc_ci(r), spread])
        if r.get("available"):
            forest.append({"label": r["label"], "regime": regime, **r})
    p = u["paired_b_vs_a"]
    ptxt = (f"(b) − (a) = {p['diff']:+.3f} (95% CI {p['ci_low']:+.3f} to {p['ci_high']:+.3f}), z = {num(p['z'], '.2f')}, "
            f"DeLong p = {p['p_value']:.3g}" + (f" ({escape(p['note'])})" if p.get("note") else "")
            if p.get("available") else na(p.get("reason")))
    labels = {k: v["label"] for k, v in u["regimes"].items()}
    figs = (img(plots.forest(forest, "AUC on the real test split"), "forest") if forest else "") + \
        (img(plots.roc_curves(u["roc"], labels), "ROC") if u.get("roc") else "")
    n = u["n_test"]
    return (f"<p><b>Task:</b> {escape(u['task'])} — {escape(u['task_definition'])}. <span class='small'>"
            f"{escape(u['task_choice'])}</span></p><p>Training images: {u['n_train']['real']} real, "
            f"{u['n_train']['synthetic']} synthetic. Real test images: {n['total']} ({n['positive']} positive, "
            f"{n['negative']} negative).</p>"
            + table(["Training regime", "AUC (95% CI)", "Seed mean ± SD"], rows)
            + f"<p><b>Paired test:</b> {ptxt}</p><div class='row'>{figs}</div>"
            f"<p class='small'>Classifier: {escape(u['classifier']['model'])}; input "
            f"{u['classifier']['input_size'][0]}×{u['classifier']['input_size'][1]}, {u['classifier'].get('steps', '?')} optimiser steps "
            f"({u['classifier']['epochs']} epochs, at least {u['classifier'].get('min_steps', '?')}), "
            f"seeds {u['seeds']}. CI: {escape(u['ci'])}. Paired test: {escape(u['paired_test'])}.</p>")


def _equity(m: dict[str, Any]) -> str:
    e = m.get("equity") or {}
    if not e.get("available"):
        return f"<p>{na(e.get('reason'))}</p>"
    parts = [f"<p class='small'>Subgroups need ≥ {e['min_per_class']} positive and negative real test images. "
             "Δ = AUC(b) − AUC(a), DeLong p within the subgroup; Holm p adjusted over all "
             f"{e.get('tests', '?')} subgroup tests (the verdict uses it).</p>"]
    forest = []
    for axis, data in e["axes"].items():
        rows = []
        for name, r in data["subgroups"].items():
            d = r["delong"]
            rows.append([escape(name), str(r["n"]), f"{r['n_pos']}/{r['n_neg']}", auc_ci(r.get("real")),
                         auc_ci(r.get("real+synthetic")),
                         f"{d['diff']:+.3f}" if d.get("available") else "",
                         num(d.get("p_value"), ".3g") if d.get("available") else "",
                         num(d.get("p_holm"), ".3g") if d.get("available") else ""])
            for regime in ("real", "real+synthetic"):
                if (r.get(regime) or {}).get("available"):
                    forest.append({"label": f"{axis} {name} ({'a' if regime == 'real' else 'b'})", "regime": regime,
                                   **r[regime]})
        gap = data["gap"]
        gtxt = "; ".join(f"{'(a) real' if k == 'real' else '(b) real+synthetic'}: "
                         + (f"{g['value']:.3f} (best {escape(g['best'])}, worst {escape(g['worst'])})"
                            if g.get("available") else na(g.get("reason"))) for k, g in gap.items())
        parts.append(f"<h3>{escape(axis)}</h3>" + table(["Subgroup", "n", "pos/neg", "AUC (a) real", "AUC (b) real+synthetic",
                                                          "Δ", "p", "Holm p"], rows) + f"<p>Best–worst gap: {gtxt}</p>")
    if forest:
        parts.append(img(plots.forest(forest, "Subgroup AUCs: (a) real vs (b) real+synthetic"), "subgroups"))
    return "".join(parts)


def _memorisation(m: dict[str, Any], datasets: dict[str, Any]) -> str:
    mem = (m["image_metrics"] or {}).get("memorization") or {}
    if not mem.get("available"):
        return f"<p>{na(mem.get('reason') or m['image_metrics'].get('reason'))}</p>"
    syn, train = datasets.get("synthetic"), datasets.get("train")
    ids = {name: ({r.image_id: i for i, r in enumerate(ds)} if ds is not None else {}) for name, ds in
           (("synthetic", syn), ("train", train))}

    def pair(p: dict[str, Any]) -> str:
        cells = []
        for name, ds, key in (("synthetic", syn, "synthetic_id"), ("nearest training image", train, "train_id")):
            i = ids[name if name == "synthetic" else "train"].get(p.get(key))
            cells.append(img(plots.image_uri(ds.image(i), 150), name) if i is not None else na(f"{p.get(key)} not found"))
        return (f"<div class='pair'>{' '.join(cells)}<br>left: synthetic {escape(str(p.get('synthetic_id')))}<br>"
                f"right: training {escape(str(p.get('train_id')))}<br>"
                f"distance {num(p.get('distance'), '.3g')}, SSIM {num(p.get('ssim'))}</div>")

    flagged, closest = mem.get("flagged") or [], mem.get("closest") or []
    q = mem.get("heldout_nn_quantiles") or {}
    qtxt = ", ".join(f"{escape(str(k))}: {num(v, '.3g')}" for k, v in q.items()) or "n/a"
    out = [f"<p>Flagged near-copies: <b>{mem.get('n_flagged', 0)}</b>. Distance threshold: {num(mem.get('threshold'), '.3g')}"
           f"{' (' + escape(str(mem['rule'])) + ')' if mem.get('rule') else ''}. "
           f"Nearest-training distances of held-out real images: {qtxt}.</p>"]
    if flagged:
        out.append("<h3>Flagged pairs</h3><div class='pairs'>" + "".join(pair(p) for p in flagged[:12]) + "</div>")
    if closest:
        out.append("<h3>Closest synthetic–training pairs</h3><div class='pairs'>" + "".join(pair(p) for p in closest[:8]) + "</div>")
    return "".join(out)


def _diversity(m: dict[str, Any]) -> str:
    d = (m["image_metrics"] or {}).get("diversity") or {}
    if "mode_collapse" not in d:
        return f"<p>{na(d.get('reason') or m['image_metrics'].get('reason'))}</p>"
    return table(["Mean MS-SSIM between random pairs", "Value"],
                 [["real", num(d.get("ms_ssim_real"))], ["synthetic", num(d.get("ms_ssim_synthetic"))],
                  ["pairs", num(d.get("pairs"))], ["mode collapse", badge("fail") if d["mode_collapse"] else badge("pass")]]) \
        + f"<p>{escape(str(d.get('message') or ''))}</p>"


def render_report(m: dict[str, Any], datasets: dict[str, Any]) -> str:
    """The full HTML document."""
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in (m.get("timings_s") or {}).items())
    sections = [("Verdict", _verdict(m)), ("1. Governance record", _governance(m)),
                ("2. Comparison with the real population", _population(m, datasets)),
                ("2b. Conditioning fidelity", _conditioning(m)),
                ("3. Utility: training with and without synthetic images", _utility(m)),
                ("4. Subgroup equity", _equity(m)),
                ("Near-copies of training images (memorisation)", _memorisation(m, datasets)),
                ("Diversity", _diversity(m))]
    body = "".join(f"<h2>{escape(t)}</h2>{html}" for t, html in sections)
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>mammosynth evaluation report</title>"
            f"<style>{CSS}</style></head><body><h1>Synthetic mammogram evaluation</h1>"
            f"<p class='small'>mammosynth {escape(m['mammosynth_version'])}, {escape(m['created'])}. "
            f"Synthetic: {escape(m['governance']['synthetic']['path'])} — real: {escape(m['governance']['real']['path'])}</p>"
            f"{body}<h2>Run details</h2><p class='small'>Timings: {escape(timings)}. Full numbers in metrics.json.</p>"
            "</body></html>\n")
