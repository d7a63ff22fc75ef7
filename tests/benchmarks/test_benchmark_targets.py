"""The realism issue's targets as ``benchmarks/train_gan.py`` checks them (benchmarks/targets.py)."""
import math
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import targets  # noqa: E402

GOOD = targets.RunFigures(family="fastgan", minutes=10, seed=0, detectability=0.70, beta=3.1, beta_real=3.0,
                          highpass_ratio=0.95, frd_matched=5.0, frd_floor_matched=4.5, gen_network=620.0)


def by_target(checks):
    return {c.target.split(" ")[0]: c for c in checks}


def test_a_run_inside_every_bound_meets_every_target_it_can_judge():
    checks = targets.check_run(GOOD, (128, 128), threads=2)
    judged = [c for c in checks if c.met is not None]
    assert [c.met for c in judged] == [True] * 5
    assert all(c.miss == 0.0 and "met" in c.line() for c in judged)
    # no DCGAN run at this budget: said, not guessed
    ahead = checks[-1]
    assert ahead.met is None and ahead.line() == ("ahead of DCGAN (lower FRD, detectability not higher): "
                                                  "not judged (no DCGAN run at this budget and seed)")


@pytest.mark.parametrize("change, key, miss, shown", [
    ({"detectability": 0.807}, "detectability", 0.057, "0.057"),
    ({"beta": 2.3}, "beta", 0.2, "0.20"),
    ({"beta": 3.9}, "beta", 0.4, "0.40"),
    ({"highpass_ratio": 0.79}, "high-pass", 0.01, "0.01"),
    ({"highpass_ratio": 1.40}, "high-pass", 0.15, "0.15"),
    ({"frd_matched": 8.97, "frd_floor_matched": 4.56}, "FRD", 3.41, "3.41"),
    ({"gen_network": 430.0}, "generation", 70.0, "70"),
])
def test_a_missed_target_says_by_how_much(change, key, miss, shown):
    c = by_target(targets.check_run(replace(GOOD, **change), (128, 128), threads=2))[key]
    assert c.met is False
    assert c.miss == pytest.approx(miss)
    assert c.line().endswith(f"MISSED by {shown}")
    # every other target still met
    others = [x for k, x in by_target(targets.check_run(replace(GOOD, **change), (128, 128), 2)).items()
              if k != key and x.met is not None]
    assert all(x.met for x in others)


def test_generation_is_judged_only_where_the_issue_sets_it():
    for size, threads in (((256, 160), 2), ((128, 128), 1)):
        c = by_target(targets.check_run(replace(GOOD, gen_network=100.0), size, threads))["generation"]
        assert c.met is None and "measured at" in c.line()


def test_a_failed_figure_is_not_judged():
    c = by_target(targets.check_run(replace(GOOD, frd_matched=math.nan), (128, 128), 2))["FRD"]
    assert c.met is None and "not available" in c.line()


def test_ahead_of_dcgan_needs_lower_frd_and_no_higher_detectability():
    dc = replace(GOOD, family="dcgan", detectability=1.0, frd_matched=70.0)
    assert targets.ahead_of_dcgan(GOOD, dc).met is True
    behind_frd = targets.ahead_of_dcgan(replace(GOOD, frd_matched=72.5), dc)
    assert behind_frd.met is False and behind_frd.miss == pytest.approx(2.5)
    behind_det = targets.ahead_of_dcgan(GOOD, replace(dc, detectability=0.65))
    assert behind_det.met is False and behind_det.miss == pytest.approx(0.05)
    assert behind_det.line().endswith("MISSED by 0.050")


def test_report_pairs_dcgan_by_budget_and_seed_and_counts_seeds():
    runs = [GOOD, replace(GOOD, seed=1, detectability=0.9),
            replace(GOOD, family="dcgan", detectability=1.0, frd_matched=70.0)]
    text = targets.report(runs, (128, 128), threads=2)
    assert "sets them at 10 CPU-minutes for 128x128" in text
    assert "detectability AUC <= 0.75: 0.900 - MISSED by 0.150" in text
    assert "fastgan 10 min, detectability AUC <= 0.75: 1 of 2" in text
    # seed 0 has a DCGAN run of the same budget and seed, seed 1 has none
    seed0, seed1 = text.split("fastgan 10 min, seed 1:")[0], text.split("fastgan 10 min, seed 1:")[1]
    assert "ahead of DCGAN (lower FRD, detectability not higher): FRD 5.00 vs 70.00" in seed0
    assert "no DCGAN run" in seed1.split("dcgan 10 min")[0]
    assert "the realism issue sets none for 64x64" in targets.report(runs, (64, 64), 2)
