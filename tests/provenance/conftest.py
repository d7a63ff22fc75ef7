"""Fixtures for provenance tests."""
from __future__ import annotations

import pytest

from prov_helpers import write_set


@pytest.fixture
def keydir(tmp_path):
    from mammosynth.provenance.keys import new_keypair

    new_keypair(tmp_path / "keys")
    return tmp_path / "keys"


@pytest.fixture
def signed_set(tmp_path, keydir):
    return write_set(tmp_path / "set", key=keydir)


@pytest.fixture
def tiny_pipe_for_prov():
    """A tiny GanPipeline (64x40 output is enough for the watermark) for generate tests."""
    import torch

    from mammosynth.models import ModelConfig, build_generator
    from mammosynth.sampling import GanPipeline

    cfg = ModelConfig.for_family("fastgan", resolution=(16, 16), condition=("density",), z_dim=8, g_channels=4,
                                 max_channels=16, embed_dim=4).to_dict()
    torch.manual_seed(0)
    g = build_generator(cfg)
    return GanPipeline(g, model_config=cfg, label_freq={"density": {"A": 0.5, "B": 0.5}},
                       provenance={"run": "00001-tiny", "checkpoint_sha256": "0" * 64, "step": 1})
