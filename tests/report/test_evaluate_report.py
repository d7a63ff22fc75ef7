"""End-to-end tests of mammosynth.report.evaluate and the ``mammosynth evaluate`` command."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml

from mammosynth.cli import main
from mammosynth.metrics.utility import ClassifierConfig
from mammosynth.report import EvaluateConfig, evaluate
from mammosynth.report.evaluate import json_safe

FAST = EvaluateConfig(seeds=2, n_boot=100, classifier=ClassifierConfig(input_size=(32, 20), epochs=2, min_steps=1))


def _strict_json(path):
    def bad(c):
        raise ValueError(f"non-standard JSON constant {c}")
    return json.loads(path.read_text(), parse_constant=bad)


def _front_matter(text):
    assert text.startswith("---\n")
    head, sep, _ = text[4:].partition("\n---\n")
    assert sep, "front matter not closed"
    return yaml.safe_load(head)


def test_evaluate_writes_report_metrics_and_card(eval_sets, stub_image_metrics, tmp_path):
    real, syn = eval_sets
    out = tmp_path / "report"
    m = evaluate(real, syn, out, FAST)
    for name in ("report.html", "metrics.json", "dataset_card.md"):
        assert (out / name).is_file()
    saved = _strict_json(out / "metrics.json")
    assert saved["verdict"] == m["verdict"] and saved["non_finite_replaced"] == []
    # utility: three regimes, CIs, paired DeLong test, seeds spread
    u = saved["utility"]
    assert u["task"] == "finding" and "auto-chosen" in u["task_choice"]
    for regime in ("real", "real+synthetic", "synthetic"):
        r = u["regimes"][regime]
        assert r["available"] and r["ci_low"] <= r["value"] <= r["ci_high"] and r["seeds"]["n"] == 2
    assert 0 <= u["paired_b_vs_a"]["p_value"] <= 1
    # conditioning only on the generator's axes; equity per subgroup axis
    assert set(saved["conditioning"]["axes"]) == {"density", "view"}
    assert {"density", "view", "age", "finding"} <= set(saved["equity"]["axes"])
    steps = {s["step"]: s["status"] for s in saved["verdict"]["steps"]}
    assert steps["1. Governance record"] == "pass"
    assert steps["Near-copies of training patients"] == "fail"  # the stub flags one pair
    assert saved["verdict"]["overall"] == "fail"
    # the card: valid YAML front matter with source hash, model hash and the protocol
    fm = _front_matter((out / "dataset_card.md").read_text())
    assert fm["source_data"]["content_hash"] == saved["governance"]["real"]["content_hash"]
    assert fm["model"]["checkpoint_sha256"] == "ab" * 32 and fm["model"]["run"] == "00001-test"
    assert [p["step"] for p in fm["evaluation"]["protocol"]] == list(steps)
    assert fm["intended_use"] and fm["limitations"]
    # the HTML: self-contained, every section, not-computed metrics shown with their reason
    html = (out / "report.html").read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert html.count("data:image/png;base64,") >= 10
    for title in ("Verdict", "Governance", "Conditioning fidelity", "2c. Realism", "Utility", "Subgroup equity", "Near-copies",
                  "Diversity", "Pixel intensities", "Precision / recall"):
        assert title in html, title
    assert "not computed: stub: off" in html
    # realism's outline measure: in metrics.json, in the report with its sheet
    ol = saved["realism"]["outline"]
    assert ol["available"] and set(ol["statistics"]) == {"atypical", "ragged", "fragmented"}
    assert saved["realism"]["outline_sheet"]["file"] == "realism_outlines.png"
    assert (out / "realism_outlines.png").is_file() and "Breast outline" in html and "most atypical" in html
    assert "of synthetic breasts shaped unlike any real film" in (out / "dataset_card.md").read_text()


def _only_density_a(root):
    """Relabel every image of a prepared dataset as density A (non-dense)."""
    path = root / "manifest.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    path.write_text("".join(json.dumps({**r, "density": "A"}) + "\n" for r in rows))
    return root


def test_single_class_test_set_reports_reasons_not_nan(tiny_dataset_factory, tmp_path):
    real = tiny_dataset_factory(n=32)
    test = _only_density_a(tiny_dataset_factory(n=8, seed=4))
    m = evaluate(real, tiny_dataset_factory(n=8, seed=3, kind="synthetic"), tmp_path / "o",
                 EvaluateConfig(seeds=1, n_boot=50, image_metrics=False, task="density",
                                classifier=ClassifierConfig(input_size=(16, 16), epochs=1, min_steps=1)), test=test)
    text = (tmp_path / "o" / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert m["utility"]["available"] is False and m["utility"]["value"] is None
    assert "real test set: only one class" in m["utility"]["reason"]
    assert m["equity"]["available"] is False
    steps = {s["step"]: s for s in m["verdict"]["steps"]}
    assert steps["3. Utility on independent real test images"]["status"] == "not computed"
    assert "only one class" in steps["3. Utility on independent real test images"]["summary"]
    assert steps["Near-copies of training patients"]["status"] == "not computed"
    assert "switched off" in steps["Near-copies of training patients"]["summary"]
    assert "not computed: task &#39;density&#39;: real test set: only one class" in \
        (tmp_path / "o" / "report.html").read_text()


def test_no_splits_means_utility_not_computed(tiny_dataset_factory, stub_image_metrics, tmp_path):
    real = tiny_dataset_factory(n=12)  # 6 patients: no test split
    m = evaluate(real, tiny_dataset_factory(n=8, seed=2, kind="synthetic"), tmp_path / "o",
                 EvaluateConfig(image_metrics=False))
    assert m["utility"]["available"] is False and "test split" in m["utility"]["reason"]
    assert "not computed: no real test split" in (tmp_path / "o" / "report.html").read_text()


def test_cli_fail_on_copies_exits_4_when_synthetic_is_the_training_set(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "r"
    rc = main(["evaluate", "--real", str(tiny_dataset), "--synthetic", f"{tiny_dataset}:train", "--out", str(out),
               "--no-frd", "--no-realism", "--fail-on-copies", "--seeds", "1", "--epochs", "1", "--min-steps", "1", "--n-boot", "50",
               "--cache-dir", str(tmp_path / "cache")])
    assert rc == 4
    assert "near-copies" in capsys.readouterr().err
    m = _strict_json(out / "metrics.json")
    assert m["image_metrics"]["memorization"]["n_flagged"] > 0
    assert (out / "report.html").is_file() and (out / "dataset_card.md").is_file()
    assert m["config"]["realism"] is False and "switched off" in m["realism"]["reason"]


def test_cli_exit_codes_without_copies_and_without_check(eval_sets, stub_image_metrics, monkeypatch, tmp_path):
    real, syn = eval_sets
    args = ["evaluate", "--real", str(real), "--synthetic", str(syn), "--seeds", "1", "--epochs", "1", "--min-steps", "1",
            "--n-boot", "50", "--task", "density", "--detect-folds", "2"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0  # copies found, but no --fail-on-copies
    saved = _strict_json(tmp_path / "a" / "metrics.json")
    assert saved["config"]["realism_config"]["detectability"]["folds"] == 2 and "realism" in saved["timings_s"]
    assert main(args + ["--out", str(tmp_path / "b"), "--no-image-metrics", "--fail-on-copies"]) == 1
    with pytest.raises(SystemExit):
        main(["evaluate", "--real", str(real), "--synthetic", str(syn), "--out", str(tmp_path / "d"),
              "--task", "birads"])


def test_missing_dataset_is_a_clear_error(tmp_path, capsys):
    rc = main(["evaluate", "--real", str(tmp_path / "nope"), "--synthetic", str(tmp_path / "nope2"),
               "--out", str(tmp_path / "o")])
    assert rc == 1 and "nope" in capsys.readouterr().err


def test_json_safe_replaces_non_finite_and_says_where():
    replaced = []
    out = json_safe({"a": float("nan"), "b": [1, np.float32(np.inf)], "c": np.int64(3), "d": (1.5,)}, replaced=replaced)
    assert out == {"a": None, "b": [1, None], "c": 3, "d": [1.5]}
    assert replaced == ["a", "b[1]"]
    assert not any(isinstance(v, float) and math.isnan(v) for v in out.values())


def test_config_validation():
    with pytest.raises(ValueError, match="task"):
        EvaluateConfig(task="birads")
    with pytest.raises(ValueError, match="seeds"):
        EvaluateConfig(seeds=0)
    with pytest.raises(ValueError, match="ci_method"):
        EvaluateConfig(ci_method="normal")
