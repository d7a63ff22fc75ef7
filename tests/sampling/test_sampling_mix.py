"""Label mixes: parsing, validation against the model, per-index drawing."""
from __future__ import annotations

from collections import Counter

import pytest

from mammosynth.sampling.mix import labels_for, mix_from_specs, pick, resolve_mix

AXES = {"density": ("A", "B", "C", "D"), "finding": ("none", "mass"), "view": ("CC", "MLO")}


def test_resolve_fills_axes_from_training_frequencies():
    mix = resolve_mix({"view": "CC:1"}, AXES, {"density": {"A": 3, "B": 1}, "finding": {"none": 1, "mass": 1}})
    assert mix["view"] == {"CC": 1.0, "MLO": 0.0}
    assert mix["density"] == {"A": 0.75, "B": 0.25, "C": 0.0, "D": 0.0}
    assert mix["finding"] == {"none": 0.5, "mass": 0.5}
    assert mix["laterality"] == {"R": 1.0}


def test_resolve_uniform_without_frequencies():
    assert resolve_mix(None, AXES, None)["density"] == {c: 0.25 for c in "ABCD"}


@pytest.mark.parametrize("mix, message", [
    ({"density": "A:0.5,E:0.5"}, "unknown value 'E'"),
    ({"density": "A:0.5,B:0.4"}, "sum to 1"),
    ({"finding": "calcification:1"}, "unknown value 'calcification'"),
    ({"density": "A:-0.5,B:1.5"}, "must be in [0, 1]"),
    ({"colour": "red:1"}, "unknown axis 'colour'"),
])
def test_bad_mix_is_a_clear_error(mix, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        resolve_mix(mix, AXES, None)


def test_mix_on_unconditioned_axis_is_an_error():
    with pytest.raises(ValueError, match="not conditioned on 'view'"):
        resolve_mix({"view": "CC:1"}, {"density": AXES["density"]}, None)


def test_mix_specs():
    assert mix_from_specs(["density=A:1", "view=CC:0.5,MLO:0.5"]) == {"density": "A:1", "view": "CC:0.5,MLO:0.5"}
    with pytest.raises(ValueError, match="given twice"):
        mix_from_specs(["density=A:1", "density=B:1"])
    with pytest.raises(ValueError, match="AXIS=CLASS:P"):
        mix_from_specs(["density"])


def test_pick_inverse_cdf_skips_zero_classes():
    props = {"A": 0.0, "B": 0.5, "C": 0.5}
    assert [pick(props, u) for u in (0.0, 0.49, 0.5, 0.999999)] == ["B", "B", "C", "C"]


def test_labels_depend_only_on_seed_and_index_and_every_prefix_is_balanced():
    mix = resolve_mix({"density": "A:0.25,B:0.25,C:0.25,D:0.25", "finding": "mass:0.3,none:0.7",
                       "laterality": "L:0.2,R:0.8"}, AXES, None)
    labs = [labels_for(7, i, mix) for i in range(300)]
    assert labs[123] == labels_for(7, 123, mix)
    assert labs != [labels_for(8, i, mix) for i in range(300)]
    for n in (10, 37, 100, 300):
        for axis, props in mix.items():
            counts = Counter(lab[axis] for lab in labs[:n])
            for cls, p in props.items():
                assert abs(counts[cls] - n * p) <= 3, (axis, cls, n, counts)
