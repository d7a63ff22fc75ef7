"""`training.distributed`: the process group is left by whoever joined it."""
from __future__ import annotations

import pytest

from mammosynth.training import distributed as D_


class FakeDist:
    def __init__(self, initialized: bool):
        self.initialized, self.calls = initialized, []

    def is_initialized(self):
        return self.initialized

    def init_process_group(self, backend):
        self.calls.append(("init", backend))
        self.initialized = True

    def destroy_process_group(self):
        self.calls.append(("destroy",))
        self.initialized = False

    def broadcast_object_list(self, objects, src=0):
        raise RuntimeError("rank 0 has gone")  # the first collective of a run fails


@pytest.fixture
def two_ranks(monkeypatch):
    for k, v in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(k, v)


def test_a_group_init_joined_is_left_by_shutdown(two_ranks, monkeypatch):
    fake = FakeDist(initialized=False)
    monkeypatch.setattr(D_, "dist", fake)
    info = D_.init("cpu")
    assert info.enabled and info.owns_group and info.rank == 1
    assert fake.calls == [("init", "gloo")]
    D_.shutdown(info)
    assert fake.calls[-1] == ("destroy",) and not fake.initialized


def test_a_group_the_caller_joined_is_left_to_the_caller(two_ranks, monkeypatch):
    fake = FakeDist(initialized=True)
    monkeypatch.setattr(D_, "dist", fake)
    info = D_.init("cpu")
    assert info.enabled and not info.owns_group
    D_.shutdown(info)
    assert fake.calls == [] and fake.initialized


def test_train_leaves_the_group_even_when_it_fails(two_ranks, monkeypatch, tmp_path, tiny_dataset):
    from mammosynth.models import ModelConfig
    from mammosynth.training import TrainConfig, train

    fake = FakeDist(initialized=False)
    monkeypatch.setattr(D_, "dist", fake)
    cfg = TrainConfig(model=ModelConfig.for_family("fastgan", resolution=(16, 16)), kimg=0.01)
    with pytest.raises(RuntimeError, match="rank 0 has gone"):
        train(tiny_dataset, tmp_path / "runs", cfg)
    assert fake.calls == [("init", "gloo"), ("destroy",)]
