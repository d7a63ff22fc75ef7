"""Label-distribution comparison."""
from __future__ import annotations

import pytest

from mammosynth.data.prepared import PreparedDataset
from mammosynth.metrics.labels import compare_counts, compare_labels, label_counts


def test_known_answers():
    same = compare_counts({"A": 30, "B": 70}, {"A": 3, "B": 7})
    assert same["tv"] == pytest.approx(0.0) and same["chi2_p"] == pytest.approx(1.0)
    diff = compare_counts({"A": 50, "B": 50}, {"A": 100, "B": 0})
    assert diff["tv"] == pytest.approx(0.5)
    assert diff["chi2_p"] < 1e-6
    assert diff["real"] == {"A": 0.5, "B": 0.5} and diff["synthetic"] == {"A": 1.0, "B": 0.0}


def test_single_category_and_empty():
    assert compare_counts({"A": 4, "B": 0}, {"A": 9})["chi2_p"] == 1.0
    with pytest.raises(ValueError, match="empty"):
        compare_counts({"A": 0}, {"A": 3})


def test_on_datasets(tiny_dataset, tiny_dataset_factory):
    real = PreparedDataset(tiny_dataset)
    syn = PreparedDataset(tiny_dataset_factory(n=8, seed=3))
    out = compare_labels(real.records, syn.records)
    assert set(out) == {"density", "finding", "view"}
    for axis in out.values():
        assert sum(axis["real"].values()) == pytest.approx(1.0)
        assert 0.0 <= axis["tv"] <= 1.0 and 0.0 <= axis["chi2_p"] <= 1.0
    assert label_counts(real.records, "density") == {"A": 3, "B": 3, "C": 3, "D": 3, "unknown": 0}
