"""Sampling test fixtures (helpers live in sampling_helpers.py)."""
from __future__ import annotations

import pytest

from sampling_helpers import FREQ, tiny_generator, tiny_model_config

from mammosynth.sampling import GanPipeline


@pytest.fixture(autouse=True)
def _keys_in_tmp(tmp_path_factory, monkeypatch):
    """Provenance signing keys go to a temporary MAMMOSYNTH_HOME, never the user's."""
    monkeypatch.setenv("MAMMOSYNTH_HOME", str(tmp_path_factory.getbasetemp() / "mammosynth-home"))


@pytest.fixture
def tiny_pipe():
    """A GanPipeline on a tiny FastGAN generator, with training label frequencies."""
    return GanPipeline(tiny_generator(), model_config=tiny_model_config(), label_freq=FREQ,
                       provenance={"run": "00001-tiny", "checkpoint_sha256": "0" * 64, "step": 10})
