"""MRMC statistics: the Van Dyke (1993) OR-Hillis figures, AUC/DeLong, formats, AFROC."""
from pathlib import Path

import numpy as np
import pytest

from mammosynth.reader.stats import (
    Mark, afroc_fom, analyze_localisation, auc, auc_ci, delong_cov, jackknife_cov, or_hillis,
    read_csv, read_imrmc, read_lrc, single_modality, write_csv, write_imrmc,
)

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def vandyke():
    return read_imrmc(DATA / "VanDyke.imrmc")


def test_vandyke_shape(vandyke):
    assert vandyke.scores.shape == (2, 5, 114)
    assert int(vandyke.truth.sum()) == 45 and vandyke.complete
    assert vandyke.title == "Van Dyke Data File"


def test_vandyke_or_hillis_reproduces_published_figures(vandyke):
    r = or_hillis(vandyke.scores, vandyke.truth, vandyke.modalities, vandyke.readers)
    assert r.f == pytest.approx(4.456, abs=5e-4)
    assert r.ddf == pytest.approx(15.26, abs=5e-3)
    assert r.p == pytest.approx(0.0517, abs=5e-5)
    d = r.diffs[0]
    assert d["estimate"] == pytest.approx(-0.0438, abs=5e-5)
    assert d["ci"][0] == pytest.approx(-0.0880, abs=5e-5)
    assert d["ci"][1] == pytest.approx(0.00036, abs=5e-6)
    assert r.modality_fom == pytest.approx((0.897037, 0.940837), abs=1e-6)


def test_vandyke_delong_close_to_jackknife(vandyke):
    r = or_hillis(vandyke.scores, vandyke.truth, method="delong")
    assert r.f == pytest.approx(4.48, abs=0.02) and 0.04 < r.p < 0.06


def test_lrc_and_imrmc_agree(vandyke):
    lrc = read_lrc(DATA / "VanDyke.lrc")
    np.testing.assert_array_equal(lrc.scores, vandyke.scores)
    np.testing.assert_array_equal(lrc.truth, vandyke.truth)


def test_imrmc_roundtrip_is_byte_identical(vandyke, tmp_path):
    text = write_imrmc(vandyke, tmp_path / "x.imrmc")
    assert text == (DATA / "VanDyke.imrmc").read_text()


def test_csv_roundtrip(vandyke, tmp_path):
    write_csv(vandyke, tmp_path / "x.csv")
    back = read_csv(tmp_path / "x.csv")
    np.testing.assert_array_equal(back.scores, vandyke.scores)
    assert back.readers == vandyke.readers and back.modalities == vandyke.modalities


def test_bad_files_name_file_and_line(tmp_path):
    p = tmp_path / "bad.imrmc"
    p.write_text("x\nBEGIN DATA:\n-1,1,truth,0\n0,1,A,notanumber\n")
    with pytest.raises(ValueError, match=r"bad.imrmc:4: score is not a number"):
        read_imrmc(p)
    p.write_text("no data here\n")
    with pytest.raises(ValueError, match="BEGIN DATA"):
        read_imrmc(p)
    c = tmp_path / "bad.csv"
    c.write_text("reader,case,score\n")
    with pytest.raises(ValueError, match="missing CSV columns"):
        read_csv(c)


def test_auc_and_delong_against_brute_force():
    rng = np.random.default_rng(0)
    truth = np.r_[np.zeros(30), np.ones(20)].astype(int)
    s = rng.normal(size=50) + truth
    brute = np.mean([(p > q) + 0.5 * (p == q) for p in s[truth == 1] for q in s[truth == 0]])
    assert auc(s, truth) == pytest.approx(brute)
    # DeLong variance is close to the jackknife variance for a continuous score
    assert delong_cov(s, truth)[0, 0] == pytest.approx(jackknife_cov(s, truth)[0, 0], rel=0.15)
    a, se, lo, hi = auc_ci(s, truth)
    assert lo < a < hi and se > 0
    with pytest.raises(ValueError, match="positive and one negative"):
        auc(s, np.ones(50))


def test_single_modality_chance_and_signal():
    rng = np.random.default_rng(1)
    truth = np.r_[np.zeros(60), np.ones(60)].astype(int)
    noise = rng.normal(size=(6, 120))
    chance = single_modality(noise, truth)
    assert chance.ci[0] < 0.5 < chance.ci[1]
    strong = single_modality(noise + 2 * truth, truth)
    assert strong.fom > 0.85 and strong.ci[0] > 0.5 and strong.p_vs_chance < 1e-3


def test_afroc_perfect_and_chance():
    assert afroc_fom(np.array([-np.inf, 1.0]), np.array([5.0, 4.0])) == 1.0
    assert afroc_fom(np.array([-np.inf]), np.array([-np.inf])) == 0.5
    lesions = {"n1": 0, "n2": 0, "a1": 1, "a2": 2}
    perfect = [Mark("a1", 5, 0), Mark("a2", 5, 0), Mark("a2", 4, 1), Mark("n1", 1)]
    missed = [Mark("n1", 5), Mark("n2", 5), Mark("a1", 1, None)]
    res = analyze_localisation({"r1": perfect, "r2": missed}, lesions)
    assert res.fom[0] == 1.0 and res.fom[1] == 0.0
    assert res.n_lesions == 3 and res.n_normal == 2
