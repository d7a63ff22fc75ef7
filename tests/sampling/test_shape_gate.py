"""The shape gate: generated images whose breast outline no training film comes near are redrawn."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sampling_helpers import FREQ, tiny_generator

from mammosynth.cli import main
from mammosynth.data.outline import ShapeReference
from mammosynth.data.prepared import PreparedDataset
from mammosynth.sampling import GanPipeline, GenerateConfig, generate
from mammosynth.sampling.pipeline import latent_seed
from mammosynth.sampling.shape_gate import ShapeGateConfig
from mammosynth.training.checkpoint import load_checkpoint, save_checkpoint

H, W = 32, 24
pytestmark = pytest.mark.filterwarnings("ignore:images smaller than")


def half_discs(radii) -> np.ndarray:
    """Masks [N, H, W]: half-discs on the left edge, centred vertically."""
    yy, xx = np.mgrid[:H, :W] + 0.5
    return np.stack([(yy - H / 2) ** 2 + xx ** 2 < (r * H) ** 2 for r in radii])


def reference() -> ShapeReference:
    """The outlines of 26 films drawn as the stub draws them, segmented as the pipeline segments."""
    return ShapeReference.from_images(0.6 * half_discs([*np.linspace(0.36, 0.46, 24), 0.38, 0.43]).astype(np.float32))


class BrokenTops(torch.nn.Module):
    """Models-contract stub: a bright half-disc of one of the reference's radii (by the sign
    of z[1]; a whole one always passes); when z[0] > 0.5
    (about a third of latents) its upper half is missing, a broken outline."""

    z_dim, resolution, label_axes = 4, (H, W), {"density": ("A", "B", "C", "D")}

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, z, labels):
        yy, xx = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
        r = (0.38 + 0.05 * (z[:, 1] > 0).float())[:, None, None] * H
        disc = ((yy - H / 2) ** 2 + xx ** 2 < r ** 2).float()
        disc = torch.where((z[:, 0] > 0.5)[:, None, None] & (yy < H / 2), torch.zeros_like(disc), disc)
        return self.scale * (disc * 1.2 - 1)[:, None]


def broken(pipe, seed, indices, attempts=None) -> np.ndarray:
    return (pipe.latents(seed, indices, attempts)[:, 0] > 0.5).numpy()


def test_the_reference_flags_a_missing_upper_half_and_a_torn_skin_line():
    ref = reference()
    cut = half_discs([0.41])
    cut[:, : H // 2] = False
    torn = half_discs([0.41])
    torn[0, ::2, 6:] = False  # every other row shortened: a crumbly skin line
    v = ref.judge(np.concatenate([half_discs([0.38, 0.43]), cut, torn]))
    assert v.passed.tolist() == [True, True, False, False]
    assert v.atypicality[2] > ref.thresholds(0.99)[0] and v.jaggedness[3] > ref.thresholds(0.99)[1]
    assert not ref.judge(np.zeros((1, H, W), bool)).passed[0]  # no breast at all fails
    with pytest.raises(ValueError, match="reference made at"):
        ref.judge(np.zeros((1, H + 2, W), bool))


def test_a_breast_in_two_lobes_fails_by_its_split_rows():
    ref = reference()
    lobes = half_discs([0.43])
    lobes[:, : int(0.6 * H), 5:9] = False  # a notch cut from the top: two runs in those rows
    v = ref.judge(lobes)
    assert not v.passed[0] and v.split[0] > ref.thresholds(0.99)[2]
    assert ref.thresholds(0.99)[2] >= 0.01  # whole half-discs are one run per row: the floor applies
    old = ShapeReference.from_dict({k: v for k, v in ref.to_dict().items() if k != "split"})
    assert old.split is None and old.thresholds(0.99)[2] == float("inf")  # a reference made without it


def test_the_reference_round_trips_and_refuses_too_few_films_or_a_corrupt_dict():
    ref = reference()
    back = ShapeReference.from_dict(json.loads(json.dumps(ref.to_dict())))
    assert back.size == ref.size and np.allclose(back.profiles, ref.profiles, rtol=1e-5)
    assert np.allclose(back.thresholds(0.99), ref.thresholds(0.99), rtol=1e-4)
    with pytest.raises(ValueError, match="at least 5"):
        ShapeReference.from_masks(half_discs([0.4] * 3), source="three films")
    with pytest.raises(ValueError, match="not a shape reference"):
        ShapeReference.from_dict({**ref.to_dict(), "profiles": "x"})
    with pytest.raises(ValueError, match="quantile"):
        ShapeGateConfig(quantile=1.0)


def test_the_gate_redraws_broken_outlines_and_keeps_every_other_image_as_drawn():
    pipe = GanPipeline(BrokenTops(), shape_reference=reference())
    plain = pipe(n=24, seed=3, batch_size=8)
    gated = pipe(n=24, seed=3, batch_size=8, shape_gate=ShapeGateConfig())
    first_broken = broken(pipe, 3, range(24))
    assert 3 <= first_broken.sum() <= 20
    attempts = np.array([s["attempt"] for s in gated.shape])
    assert all(s["passed"] for s in gated.shape)
    assert np.array_equal(attempts > 0, first_broken)  # exactly the broken first draws were redrawn
    for i in np.flatnonzero(~first_broken):
        assert np.array_equal(gated.images[i], plain.images[i])
    for i in np.flatnonzero(first_broken):  # the kept candidate is the first whole one
        k = attempts[i]
        assert not broken(pipe, 3, [int(i)], [int(k)])[0] and broken(pipe, 3, [int(i)] * k, list(range(k))).all()
        assert (gated.images[i][: H // 2] > 0).any()  # its upper half is there
    assert gated.labels == plain.labels
    # image i is a pure function of (checkpoint, seed, i, gate): alone it is the same
    i = int(np.flatnonzero(first_broken)[0])
    alone = pipe(n=1, seed=3, start=i, shape_gate=ShapeGateConfig())
    assert alone.shape == [gated.shape[i]] and np.array_equal(alone.images[0], gated.images[i])
    assert plain.shape is None


def test_with_one_candidate_nothing_is_redrawn_and_the_failures_are_recorded():
    pipe = GanPipeline(BrokenTops(), shape_reference=reference())
    gated = pipe(n=16, seed=1, shape_gate=ShapeGateConfig(attempts=1))
    assert [s["attempt"] for s in gated.shape] == [0] * 16
    assert [not s["passed"] for s in gated.shape] == broken(pipe, 1, range(16)).tolist()
    assert np.array_equal(gated.images, pipe(n=16, seed=1).images)


def test_redraws_use_their_own_latents():
    assert latent_seed(0, 5, 0) == latent_seed(0, 5)
    assert len({latent_seed(0, 5, k) for k in range(4)} | {latent_seed(0, 6)}) == 5
    with pytest.raises(ValueError, match="attempt"):
        latent_seed(0, 5, -1)


def test_the_gate_needs_a_reference_at_the_models_size():
    pipe = GanPipeline(BrokenTops())
    with pytest.raises(ValueError, match="no shape reference"):
        pipe(n=2, shape_gate=ShapeGateConfig())
    pipe.shape_reference = ShapeReference.from_masks(np.pad(half_discs([0.4] * 6), ((0, 0), (0, 4), (0, 0))))
    with pytest.raises(ValueError, match=r"made at \(36, 24\)"):
        pipe(n=2, shape_gate=ShapeGateConfig())


def test_the_reference_travels_with_save_pretrained_and_a_corrupt_one_names_the_file(tmp_path):
    pipe = GanPipeline(tiny_generator(), model_config=_tiny_config(), label_freq=FREQ,
                       shape_reference=ShapeReference.from_masks(np.ones((6, 16, 16), bool)))
    saved = GanPipeline.from_pretrained(pipe.save_pretrained(tmp_path / "pre"))
    assert saved.shape_reference is not None and saved.shape_reference.size == (16, 16)
    cfg = json.loads((tmp_path / "pre" / "config.json").read_text())
    cfg["shape_reference"]["bins"] = "many"
    (tmp_path / "pre" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"config.json: shape_reference: not a shape reference"):
        GanPipeline.from_pretrained(tmp_path / "pre")


def _tiny_config():
    from sampling_helpers import tiny_model_config

    return tiny_model_config()


def test_generate_records_each_redraw_and_the_sets_summary(tmp_path):
    pipe = GanPipeline(BrokenTops(), label_freq={"density": {"A": 0.5, "B": 0.5}}, shape_reference=reference())
    out = generate("stub", 12, tmp_path / "syn", GenerateConfig(batch=4), pipe=pipe)
    ds = PreparedDataset(out)
    gates = [r.generation["shape_gate"] for r in ds]
    expected = broken(pipe, 0, range(12))
    assert [g["attempt"] > 0 for g in gates] == expected.tolist() and all(g["passed"] for g in gates)
    assert ds.info["shape_gate"] == {"images": 12, "redrawn": int(expected.sum()), "failed": 0}
    settings = ds.info["settings"]["shape_gate"]
    assert settings["quantile"] == 0.99 and settings["attempts"] == 8 and settings["reference"] == "model"
    # the gate is part of what identifies the set: a rerun without it is refused
    with pytest.raises(ValueError):
        generate("stub", 12, tmp_path / "syn", GenerateConfig(batch=4, shape_gate="off"), pipe=pipe)
    off = PreparedDataset(generate("stub", 4, tmp_path / "off", GenerateConfig(batch=4, shape_gate="off"), pipe=pipe))
    assert "shape_gate" not in off.info and "shape_gate" not in off.info["settings"]
    assert all("shape_gate" not in r.generation for r in off)


def test_generate_with_the_gate_on_and_no_reference_refuses_before_writing(tmp_path):
    pipe = GanPipeline(BrokenTops())
    with pytest.raises(ValueError, match="no shape reference"):
        generate("stub", 4, tmp_path / "syn", GenerateConfig(shape_gate="on"), pipe=pipe)
    assert not (tmp_path / "syn").exists()
    auto = PreparedDataset(generate("stub", 2, tmp_path / "auto", GenerateConfig(), pipe=pipe))
    assert "shape_gate" not in auto.info["settings"]  # auto: off for a model without a reference


def test_cli_gate_from_a_runs_checkpoint_or_a_training_set(tmp_path, capsys):
    from mammosynth.phantom.dataset import PhantomConfig, make_phantom_dataset
    from test_sampling_checkpoint import write_run

    run, paths = write_run(tmp_path / "runs", kimgs=(1.0,), best=1.0)
    assert main(["generate", str(run), "--n", "2", "--out", str(tmp_path / "a"), "--shape-gate", "on"]) == 1
    assert "no shape reference" in capsys.readouterr().err
    prepared = tmp_path / "films"
    make_phantom_dataset(prepared, 8, PhantomConfig(size=(48, 32)))
    assert main(["generate", str(run), "--n", "3", "--out", str(tmp_path / "b"), "--shape-reference",
                 str(prepared), "--shape-attempts", "2"]) == 0
    text = capsys.readouterr().out
    assert "shape gate:" in text and "of 3 images redrawn" in text
    info = PreparedDataset(tmp_path / "b").info
    assert info["settings"]["shape_gate"]["reference"] == str(prepared) and info["shape_gate"]["images"] == 3
    # a run that stored its films' outlines gates by default
    ck = load_checkpoint(paths["best"])
    ck["shape_reference"] = ShapeReference.from_masks(np.ones((6, 16, 16), bool)).to_dict()
    save_checkpoint(paths["best"], ck)
    assert main(["generate", str(run), "--n", "2", "--out", str(tmp_path / "c"), "--shape-attempts", "1"]) == 0
    assert "shape_gate" in PreparedDataset(tmp_path / "c").info["settings"]
    assert main(["generate", str(run), "--n", "2", "--out", str(tmp_path / "d"), "--shape-quantile", "1.5"]) == 1
    assert "quantile" in capsys.readouterr().err
