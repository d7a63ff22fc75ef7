"""The check registry, autoescaped templates and decode-once (mammosynth.report.registry)."""
from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pytest
import yaml

from mammosynth.metrics.result import MetricResult
from mammosynth.metrics.utility import ClassifierConfig
from mammosynth.report import EvaluateConfig, evaluate
from mammosynth.report.registry import Check, Step, checks, register, unregister

FAST = EvaluateConfig(seeds=1, n_boot=50, realism=False,
                      classifier=ClassifierConfig(input_size=(16, 16), epochs=1, min_steps=1))
HOSTILE = "<script>alert(1)</script>"


def _card_front_matter(path):
    head, _, _ = path.read_text()[4:].partition("\n---\n")
    return yaml.safe_load(head)


@pytest.fixture
def dummy_check():
    """A metric from outside the package: one module-level compute, rule, card line and inline partial."""
    seen = {}

    def compute(inputs):
        seen["n"] = len(inputs.synthetic)
        return MetricResult.of(0.75, ci=(0.7, 0.8), n_synthetic=len(inputs.synthetic), note=HOSTILE)

    def rule(s):
        return Step("9. Dummy metric", "fail", f"dummy value {s['value']:.2f} is above 0.5", ("because " + HOSTILE,))

    check = register(Check(key="dummy", title="9. Dummy metric section", step="9. Dummy metric", order=90,
                           compute=compute, rule=rule, template="dummy.html",
                           card=lambda s: f"Dummy metric {s['value']:.2f} ({s['ci_low']:.2f}-{s['ci_high']:.2f})",
                           template_source="<p>dummy value {{ s.value|num }} CI {{ s.ci_low|num }}–{{ s.ci_high|num }};"
                                           " note {{ s.note }}</p>"))
    yield seen
    unregister(check.step)


def test_registered_metric_appears_everywhere_and_its_fail_fails_the_protocol(eval_sets, stub_image_metrics,
                                                                              dummy_check, tmp_path):
    real, syn = eval_sets
    m = evaluate(real, syn, tmp_path / "o", FAST)
    assert dummy_check["n"] == 16
    saved = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert saved["dummy"] == {"value": 0.75, "available": True, "reason": None, "ci_low": 0.7, "ci_high": 0.8,
                              "n_synthetic": 16, "note": HOSTILE}
    assert "dummy" in saved["timings_s"]
    steps = {s["step"]: s for s in m["verdict"]["steps"]}
    assert steps["9. Dummy metric"]["status"] == "fail" and m["verdict"]["overall"] == "fail"
    assert [s["step"] for s in m["verdict"]["steps"]] == [c.step for c in checks()]
    html = (tmp_path / "o" / "report.html").read_text()
    assert "9. Dummy metric section" in html and "dummy value 0.750 CI 0.700–0.800" in html
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    fm = _card_front_matter(tmp_path / "o" / "dataset_card.md")
    assert "Dummy metric 0.75 (0.70-0.80)" in fm["evaluation"]["figures"]
    assert {"step": "9. Dummy metric", "status": "fail", "summary": "dummy value 0.75 is above 0.5"} in \
        fm["evaluation"]["protocol"]
    assert "- Dummy metric 0.75 (0.70-0.80)" in (tmp_path / "o" / "dataset_card.md").read_text()


def test_registry_refuses_duplicates_and_rules_must_return_steps():
    existing = checks()[0]
    with pytest.raises(ValueError, match="already registered"):
        register(existing)
    bad = Check(key="x", title="x", step="x", rule=lambda s: {"status": "pass"}, template="x.html")
    with pytest.raises(TypeError, match="expected Step"):
        bad.judge({})
    with pytest.raises(ValueError, match="status"):
        Step("x", "great", "no such status")


def test_metric_result_record_and_refusals():
    assert MetricResult.of(1.5, std=0.1).to_dict() == {"value": 1.5, "available": True, "reason": None, "std": 0.1}
    assert MetricResult.unavailable("no weights").to_dict() == {"value": None, "available": False,
                                                                "reason": "no weights"}
    r = MetricResult.of(0.8, ci=(0.7, 0.9))
    assert MetricResult.from_dict(r.to_dict()) == r
    with pytest.raises(ValueError, match="not finite"):
        MetricResult.of(float("nan"))
    with pytest.raises(ValueError, match="reason"):
        MetricResult(value=None, available=False)


def test_hostile_paths_and_labels_are_escaped(tiny_dataset_factory, stub_image_metrics, tmp_path):
    real = tiny_dataset_factory(n=32)
    evil = tmp_path / f"evil{HOSTILE.replace('/', '')}"
    syn = tiny_dataset_factory(n=16, seed=1, kind="synthetic").rename(evil)
    info = json.loads((real / "dataset.json").read_text())
    info["source"] = {"name": HOSTILE, "label": "\"><img src=x onerror=alert(2)>"}
    (real / "dataset.json").write_text(json.dumps(info))
    evaluate(real, evil, tmp_path / "o", FAST)
    html = (tmp_path / "o" / "report.html").read_text()
    assert "<script" not in html.lower() and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;script&gt;" in html  # the folder name, in the header and governance
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the source description


def test_each_image_is_decoded_once_per_evaluation(tiny_dataset_factory, monkeypatch, tmp_path):
    import mammosynth.data.prepared as prepared
    from mammosynth.metrics.fidelity import ImageMetricsConfig

    reads: Counter = Counter()
    real_read = prepared.read_image

    def counting(path, *a, **kw):
        reads[str(path)] += 1
        return real_read(path, *a, **kw)

    monkeypatch.setattr(prepared, "read_image", counting)
    real = tiny_dataset_factory(n=32)
    syn = tiny_dataset_factory(n=16, seed=1, kind="synthetic")
    ic = ImageMetricsConfig(size=(64, 40), thumb_size=(32, 20), frd=False, ms_ssim_pairs=10, kid_subsets=5)
    m = evaluate(real, syn, tmp_path / "o", EvaluateConfig(seeds=1, n_boot=50, use_cache=False, image_config=ic,
                                                           classifier=ClassifierConfig(input_size=(16, 16), epochs=1,
                                                                                       min_steps=1)))
    assert m["image_metrics"]["available"] and m["utility"]["available"]
    assert reads and max(reads.values()) == 1, [p for p, n in reads.items() if n > 1][:3]
    assert len(reads) == 32 + 16 == m["images"]["decoded"]  # every real and synthetic film, once


def test_realism_step_in_a_tiny_evaluation(tiny_dataset_factory, stub_image_metrics, tmp_path):
    from mammosynth.metrics.realism import RealismConfig
    from mammosynth.report.steps.realism import realism_config

    rc = realism_config(detect_folds=2, floor_splits=2)
    assert rc.detectability.folds == 2 and rc.detectability.floor_splits == 2
    rc = dataclasses.replace(rc, n_boot=50, detectability=dataclasses.replace(rc.detectability, steps=4, whole_steps=2,
                                                                              n_boot=50))
    assert isinstance(rc, RealismConfig)
    real = tiny_dataset_factory(n=32, size=(128, 80))
    syn = tiny_dataset_factory(n=24, seed=1, kind="synthetic", size=(128, 80))
    info = json.loads((syn / "dataset.json").read_text())  # as generate writes a set that went through the gate
    info["shape_gate"] = {"images": 24, "redrawn": 3, "failed": 1}
    info.setdefault("settings", {})["shape_gate"] = {"quantile": 0.99, "attempts": 8}
    (syn / "dataset.json").write_text(json.dumps(info))
    m = evaluate(real, syn, tmp_path / "o", dataclasses.replace(FAST, realism=True, realism_config=rc))
    r = m["realism"]
    assert r["available"], r["reason"]
    det = r["detectability"]
    for side in ("synthetic_vs_real", "real_vs_real"):
        assert 0.0 <= det[side]["auc"] <= 1.0 and det[side]["ci_low"] <= det[side]["ci_high"]
    assert r["verdict"]["status"] in ("pass", "warn", "fail") and r["seconds"] > 0 and "realism" in m["timings_s"]
    step = {s["step"]: s for s in m["verdict"]["steps"]}["2c. Realism"]
    assert step["status"] == r["verdict"]["status"] and step["details"] == r["verdict"]["reasons"]
    html = (tmp_path / "o" / "report.html").read_text()
    assert len(det["real_vs_real"]["splits"]) == 2
    assert "2c. Realism" in html and "real vs real (floor: mean of 2 random halvings" in html and "Verdict rule." in html
    views = det["synthetic_vs_real"]["views"]
    assert 0.0 <= views["texture"] <= 1.0 and 0.0 <= views["layout"] <= 1.0
    assert f"tissue texture (crops at native resolution) AUC {views['texture']:.3f}" in html
    lt = r["local_texture"]
    assert "Local texture statistics" in html
    assert lt["available"], lt["reason"]
    for name, c in lt["statistics"].items():  # one table row per statistic, with its AUC
        assert f"<td>{name}<br>" in html and (c["auc"] is None or f"{c['auc']:.3f}" in html)
    assert (tmp_path / "o" / "realism_crops.png").is_file() == (r["sheet"]["file"] is not None)
    card = (tmp_path / "o" / "dataset_card.md").read_text()
    assert "Realism: detectability AUC" in card and "shape gate redrew 3 of 24 images" in card
    assert r["shape_gate"] == {"images": 24, "redrawn": 3, "failed": 1, "quantile": 0.99, "attempts": 8}
    assert "<b>3 of 24</b> (12.5%) were redrawn" in html and "1 kept failing after 8 candidates" in html
    off = evaluate(real, syn, tmp_path / "off", FAST)
    assert off["realism"]["available"] is False and "switched off" in off["realism"]["reason"]


def test_second_synthetic_set_reuses_the_real_only_utility_regime(tiny_dataset_factory, stub_image_metrics,
                                                                   monkeypatch, tmp_path):
    import mammosynth.metrics.utility as utility

    trained = []  # the utility regimes trained (conditioning trains classifiers of its own)
    real_train = utility.train_classifier

    def counting(*a, **k):
        regime = str(k.get("desc", "")).split(" seed")[0]
        if regime in utility.REGIMES:
            trained.append(regime)
        return real_train(*a, **k)

    monkeypatch.setattr(utility, "train_classifier", counting)
    real = tiny_dataset_factory(n=32)
    syn1 = tiny_dataset_factory(n=16, seed=1, kind="synthetic")
    syn2 = tiny_dataset_factory(n=16, seed=2, kind="synthetic")
    fast = dataclasses.replace(FAST, cache_dir=str(tmp_path / "cache"))  # empty: other tests share the default
    first = evaluate(real, syn1, tmp_path / "a", fast)
    assert sorted(trained) == ["real", "real+synthetic", "synthetic"]
    second = evaluate(real, syn2, tmp_path / "b", fast)
    assert sorted(trained[3:]) == ["real+synthetic", "synthetic"]  # (a) from the cache
    ra, rb = (m["utility"]["regimes"]["real"] for m in (first, second))
    assert ra == rb, (ra, rb)
    evaluate(real, syn2, tmp_path / "c", dataclasses.replace(fast, use_cache=False))
    assert sorted(trained[5:]) == ["real", "real+synthetic", "synthetic"]
