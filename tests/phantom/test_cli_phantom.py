"""``mammosynth phantom`` end to end on a tiny set."""
from __future__ import annotations

from mammosynth.cli import main
from mammosynth.data.prepared import PreparedDataset


def test_cli_writes_a_prepared_phantom_set(tmp_path, capsys):
    out = tmp_path / "ph"
    rc = main(["phantom", "--n", "5", "--out", str(out), "--size", "64", "48", "--seed", "3",
               "--density", "A:0.5,D:0.5", "--findings", "mass:0.5,calcification:0.5", "--views", "CC",
               "--workers", "1"])
    assert rc == 0
    assert "wrote 5 phantom images" in capsys.readouterr().out
    ds = PreparedDataset(out)
    assert ds.kind == "phantom" and len(ds) == 5
    assert {r.view for r in ds} == {"CC"} and {r.density for r in ds} <= {"A", "D"}
    assert all(r.finding_kind in ("mass", "calcification") for r in ds)
    assert ds.image(0).shape == (64, 48)
    for i, r in enumerate(ds):
        m = ds.mask(i, 0)
        assert m is not None and m.shape == (64, 48) and m.any()
    assert ds.info["settings"]["size"] == [64, 48] and ds.info["settings"]["seed"] == 3


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    rc = main(["phantom", "--n", "2", "--out", str(tmp_path / "x"), "--density", "A:0.5,B:0.4"])
    assert rc == 1
    assert "density: proportions must sum to 1" in capsys.readouterr().err
    rc = main(["phantom", "--n", "0", "--out", str(tmp_path / "y"), "--size", "64", "40"])
    assert rc == 1
    assert "n must be an integer >= 1" in capsys.readouterr().err
