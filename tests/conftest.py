"""Shared fixtures. Tests build their own data; they never need ../shared."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")

from mammosynth.data.prepared import DatasetWriter, split_for_patient  # noqa: E402
from mammosynth.data.schema import Finding, ImageRecord  # noqa: E402


def write_tiny_dataset(root, n: int = 12, size: tuple[int, int] = (64, 40), kind: str = "real", seed: int = 0,
                       fmt: str = "png16"):
    """A small labelled dataset of blob images (breast-like half-ellipse, chest wall on the left)."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    densities, kinds = "ABCD", ("none", "mass", "calcification")
    with DatasetWriter(root, kind=kind, source={"name": "tiny-test"}, fmt=fmt) as wr:
        for i in range(n):
            inside = ((yy - h / 2) / (h / 2)) ** 2 + (xx / w) ** 2 < 1
            dens = densities[i % 4]
            base = 0.3 + 0.12 * "ABCD".index(dens)
            img = np.where(inside, base + 0.1 * rng.standard_normal((h, w)), 0.0)
            kind_i = kinds[i % 3]
            findings = ()
            if kind_i != "none":
                cy, cx = h // 2 + rng.integers(-5, 5), w // 3 + rng.integers(-3, 3)
                img[cy - 3:cy + 3, cx - 3:cx + 3] += 0.3
                findings = (Finding(kind=kind_i, pathology="benign" if i % 2 else "malignant",
                                    box=(cx - 3, cy - 3, cx + 3, cy + 3)),)
            pid = f"p{i // 2:03d}"
            rec = ImageRecord(image_id=f"img{i:04d}", patient_id=pid, laterality="LR"[i % 2],
                              view=("CC", "MLO")[(i // 2) % 2], density=dens, findings=findings,
                              age=40 + i, source_dataset="tiny", split=split_for_patient(pid))
            wr.add(rec, (np.clip(img, 0, 1) * 65535).astype(np.uint16))
    return root


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Keys and feature caches go to a per-session temporary folder, never the user's home."""
    home = tmp_path_factory.getbasetemp() / "mammosynth-home"
    monkeypatch.setenv("MAMMOSYNTH_HOME", str(home))
    monkeypatch.setenv("MAMMOSYNTH_CACHE", str(home / "cache"))


@pytest.fixture
def one_torch_thread():
    """Tests run beside other jobs on few cores: one torch thread avoids OpenMP oversubscription."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def tiny_dataset(tmp_path):
    """Path to a 12-image prepared dataset (64x40, 16-bit PNG)."""
    return write_tiny_dataset(tmp_path / "tiny")


@pytest.fixture(scope="module")
def module_tiny_dataset(tmp_path_factory):
    """The tiny dataset, shared by the tests of one module (one that trains once and checks
    many things on the run)."""
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny") / "tiny")


@pytest.fixture
def tiny_dataset_factory(tmp_path):
    """Call with keyword arguments of :func:`write_tiny_dataset` to make more datasets."""
    counter = iter(range(10_000))

    def make(**kw):
        return write_tiny_dataset(tmp_path / f"tiny{next(counter)}", **kw)

    return make
