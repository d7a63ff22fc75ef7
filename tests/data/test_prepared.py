import json

import numpy as np
import pytest

from mammosynth.data.prepared import DatasetWriter, PreparedDataset, parse_dataset_spec, split_for_patient
from mammosynth.data.schema import (CONDITION_AXES, Finding, ImageRecord, condition_value, normalise_finding_kind,
                                    parse_proportions)


def test_round_trip(tiny_dataset):
    ds = PreparedDataset(tiny_dataset)
    assert len(ds) == 12
    img = ds.image(0)
    assert img.dtype == np.uint16 and img.shape == (64, 40)
    info = json.loads((tiny_dataset / "dataset.json").read_text())
    assert set(info["files"]) == {r.file for r in ds}
    assert info["counts"]["images"]["total"] == 12


def test_split_filter_and_no_patient_in_two_splits(tiny_dataset):
    full = PreparedDataset(tiny_dataset)
    seen = {}
    for r in full:
        assert seen.setdefault(r.patient_id, r.split) == r.split
    train = PreparedDataset(f"{tiny_dataset}:train")
    assert all(r.split == "train" for r in train)
    assert parse_dataset_spec("/a/b:test") == (tiny_dataset.__class__("/a/b"), "test")


def test_writer_refuses_silent_overwrite_and_resumes(tmp_path):
    rec = ImageRecord(image_id="a", patient_id="p", laterality="L", view="CC")
    w = DatasetWriter(tmp_path / "d", kind="real")
    w.add(rec, np.zeros((4, 4), np.uint16))
    w.close()
    w2 = DatasetWriter(tmp_path / "d", kind="real")
    assert w2.has("a")
    with pytest.raises(FileExistsError):
        w2.add(rec, np.zeros((4, 4), np.uint16))


def test_store_then_commit_is_add_in_two_halves(tmp_path):
    rec = ImageRecord(image_id="a", patient_id="p", laterality="L", view="CC")
    img = np.arange(16, dtype=np.uint16).reshape(4, 4)
    w = DatasetWriter(tmp_path / "d", kind="real")
    stored = w.store(rec, img)
    # on disk but not part of the set until committed: a reopened writer does not count it
    assert (tmp_path / "d" / stored.file).is_file() and not w.has("a")
    assert not DatasetWriter(tmp_path / "d", kind="real").has("a")
    assert w.commit(stored).sha256 == stored.sha256 and w.has("a")
    with pytest.raises(FileExistsError, match="already written"):
        w.store(rec, img)
    with pytest.raises(FileExistsError, match="already written"):
        w.commit(stored)
    ghost = rec.replace(image_id="b", file="images/b.png")
    with pytest.raises(ValueError, match="image b has no stored file"):
        w.commit(ghost)
    w.close()
    ds = PreparedDataset(tmp_path / "d")
    assert len(ds) == 1 and np.array_equal(ds.image(0), img)


def test_schema_rejects_bad_values():
    with pytest.raises(ValueError, match="laterality"):
        ImageRecord(image_id="a", patient_id="p", laterality="X", view="CC")
    with pytest.raises(ValueError, match="box"):
        Finding(kind="mass", box=(5, 5, 1, 1))
    with pytest.raises(ValueError, match="sum to 1"):
        parse_proportions("A:0.5,B:0.1", ("A", "B"), "density")


def test_unspecified_finding_is_a_finding_but_unknown_on_the_condition_axis():
    assert normalise_finding_kind("Lesion") == "unspecified" and "unspecified" not in CONDITION_AXES["finding"]
    rec = ImageRecord(image_id="a", patient_id="p", laterality="L", view="CC",
                      findings=(Finding(kind="unspecified", pathology="malignant"),))
    assert rec.finding_kind == "unspecified" and rec.malignant is True
    assert condition_value(rec, "finding") is None
    mass = ImageRecord.from_dict({**rec.to_dict(), "findings": [{"kind": "mass"}]})
    assert condition_value(mass, "finding") == "mass"
    assert ImageRecord.from_dict(rec.to_dict()) == rec


def test_split_is_deterministic():
    assert split_for_patient("abc") == split_for_patient("abc")
    splits = [split_for_patient(str(i)) for i in range(2000)]
    assert 0.6 < splits.count("train") / 2000 < 0.8
