"""Fixtures for the evaluate/report tests: one torch thread, a contract-shaped image-metrics stub."""
from __future__ import annotations

import json

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here trains small CNNs: one torch thread (see tests/conftest.py)."""


def _m(value, **extra):
    return {"value": value, "available": value is not None, "reason": None if value is not None else "stub: off",
            **extra}


def fake_image_metrics(real, synthetic, train=None, heldout=None, config=None):
    """What compute_image_metrics returns (the contract), with one flagged near-copy."""
    syn_id, train_id = synthetic[0].image_id, train[0].image_id if train is not None else None
    pair = {"synthetic_id": syn_id, "train_id": train_id, "distance": 0.01, "ssim": 0.99}
    return {
        "fidelity": {"frd": _m(1.5), "fd_texture": _m(2.0), "kid_texture": _m(0.01, std=0.002),
                     "fid_inception": _m(None), "kid_inception": _m(None, std=None)},
        "prdc": {"texture": {"precision": 0.8, "recall": 0.7, "density": 0.9, "coverage": 0.75}},
        "intensity": {"moments": {s: {"mean": 0.5, "sd": 0.1, "skewness": 0.0, "kurtosis": -0.5}
                                  for s in ("real", "synthetic")},
                      "distances": {"wasserstein": 0.01, "js": 0.02, "ks": 0.05},
                      "histograms": {"bin_edges": [0, 0.25, 0.5, 0.75, 1.0], "real": [0.1, 0.4, 0.4, 0.1],
                                     "synthetic": [0.2, 0.3, 0.4, 0.1]}},
        "texture": {"real": {"contrast": 1.0}, "synthetic": {"contrast": 1.1}, "distance": 0.1},
        "labels": {"density": {"real": {"A": 0.5, "B": 0.5}, "synthetic": {"A": 0.4, "B": 0.6}, "tv": 0.1,
                               "chi2_p": 0.5}},
        "diversity": {"ms_ssim_real": 0.3, "ms_ssim_synthetic": 0.31, "pairs": 10, "mode_collapse": False,
                      "message": "comparable"},
        "memorization": {"available": True, "reason": None, "threshold": 0.5, "n_flagged": 1, "flagged": [pair],
                         "closest": [pair], "heldout_nn_quantiles": {"q0.01": 0.5}},
        "extractor": {"name": "stub", "version": "0", "dim": 3, "why": "test"},
        "timings_s": {"all": 0.0},
    }


@pytest.fixture
def stub_image_metrics(monkeypatch):
    """Replace compute_image_metrics by :func:`fake_image_metrics` (fast, deterministic)."""
    import mammosynth.metrics.fidelity as fidelity

    monkeypatch.setattr(fidelity, "compute_image_metrics", fake_image_metrics)
    return fake_image_metrics


@pytest.fixture
def eval_sets(tiny_dataset_factory):
    """(real root with train/val/test splits, synthetic root with generator settings)."""
    real = tiny_dataset_factory(n=32, seed=0)
    syn = tiny_dataset_factory(n=16, seed=1, kind="synthetic")
    info = json.loads((syn / "dataset.json").read_text())
    info["settings"] = {"generator": {"checkpoint_sha256": "ab" * 32, "run": "00001-test", "step": 10, "kimg": 1.0,
                                      "resolution": [64, 40], "label_axes": {"density": list("ABCD"),
                                                                             "view": ["CC", "MLO"]}},
                        "seed": 0}
    (syn / "dataset.json").write_text(json.dumps(info))
    return real, syn


@pytest.fixture(autouse=True)
def _small_realism(monkeypatch):
    """The Realism step's default classifier trains 2 x 5 folds x 450 steps (about two CPU
    minutes): evaluations here use a few steps, with the step's code path unchanged. Tests
    of the measures themselves are in tests/metrics/test_realism.py and test_detectability.py."""
    import dataclasses

    from mammosynth.metrics import realism
    from mammosynth.metrics.detectability import DetectabilityConfig

    @dataclasses.dataclass(frozen=True)
    class SmallRealismConfig(realism.RealismConfig):
        detectability: DetectabilityConfig = dataclasses.field(default_factory=lambda: DetectabilityConfig(
            folds=2, steps=4, whole_steps=2, score_crops=2, n_boot=50, threads=1))
        n_boot: int = 50

    monkeypatch.setattr(realism, "RealismConfig", SmallRealismConfig)
