"""InceptionV3 from a local TorchScript file: unavailable paths and a tiny scripted fake."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mammosynth.data.prepared import PreparedDataset
from mammosynth.metrics import MetricUnavailable
from mammosynth.metrics.cache import FeatureCache
from mammosynth.metrics.inception import inception_features, load_inception, run_inception, to_inception_input


class FakeInception(torch.nn.Module):
    """Same call convention as inception-2015-12-05.pt: uint8 [N,3,H,W], return_features -> [N,2048]."""

    def __init__(self, dim: int = 2048):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.proj = torch.nn.Parameter(torch.randn(3 * 8 * 8, dim, generator=g), requires_grad=False)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        assert x.dtype == torch.uint8
        pooled = torch.nn.functional.adaptive_avg_pool2d(x.to(torch.float32) / 255.0, 8).flatten(1)
        return pooled @ self.proj


@pytest.fixture
def fake_weights(tmp_path):
    def make(dim: int = 2048):
        path = tmp_path / f"fake{dim}.pt"
        torch.jit.script(FakeInception(dim)).save(str(path))
        return path

    return make


def test_missing_or_bad_weights_are_unavailable(tmp_path):
    with pytest.raises(MetricUnavailable, match="no InceptionV3 weights"):
        load_inception(None)
    with pytest.raises(MetricUnavailable, match="not found"):
        load_inception(tmp_path / "inception-2015-12-05.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(MetricUnavailable, match="not a loadable TorchScript"):
        load_inception(bad)


def test_fake_model_computes_features(tiny_dataset, fake_weights, tmp_path):
    ds = PreparedDataset(tiny_dataset)
    path = fake_weights()
    cache = FeatureCache(tmp_path / "cache")
    f = inception_features(ds, path, cache=cache, batch=5)
    assert f.shape == (len(ds), 2048) and np.isfinite(f).all()
    again = inception_features(ds, path, cache=cache)
    assert cache.hits == 1 and np.array_equal(f, again)


def test_wrong_output_shape_is_unavailable(fake_weights):
    model = load_inception(fake_weights(10))
    x = np.stack([to_inception_input(np.zeros((64, 40), np.uint16))] * 2)
    assert x.shape == (2, 3, 299, 299) and x.dtype == np.uint8
    with pytest.raises(MetricUnavailable, match="expected \\(2, 2048\\)"):
        run_inception(model, x)


def test_model_that_fails_is_unavailable(tmp_path):
    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # no return_features argument
            return x

    path = tmp_path / "broken.pt"
    torch.jit.script(Broken()).save(str(path))
    with pytest.raises(MetricUnavailable, match="return_features=True failed"):
        run_inception(load_inception(path), np.zeros((1, 3, 299, 299), np.uint8))
