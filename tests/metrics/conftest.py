"""Fixtures for the image-metric tests: prepared datasets built from numpy images."""
from __future__ import annotations

import numpy as np
import pytest

from mammosynth.data.prepared import DatasetWriter, PreparedDataset
from mammosynth.data.schema import ImageRecord


def _breast_images(n: int, size: tuple[int, int] = (64, 40), seed: int = 0, brightness: float = 0.0,
                   noise: float = 0.1) -> list[np.ndarray]:
    """``n`` float [0, 1] breast-like images: half-ellipse on a black background, noisy tissue."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for _ in range(n):
        a = rng.uniform(0.8, 1.0)
        inside = ((yy - h / 2) / (a * h / 2)) ** 2 + (xx / (a * w)) ** 2 < 1
        base = rng.uniform(0.3, 0.6) + brightness
        out.append(np.clip(np.where(inside, base + noise * rng.standard_normal((h, w)), 0.0), 0, 1))
    return out


def _write_image_set(root, images, kind: str = "real", prefix: str = "img") -> PreparedDataset:
    """Write float [0, 1] images as a prepared dataset at ``root`` and open it."""
    with DatasetWriter(root, kind=kind, source={"name": "metrics-test"}) as wr:
        for i, img in enumerate(images):
            rec = ImageRecord(image_id=f"{prefix}{i:04d}", patient_id=f"p{i}", laterality="LR"[i % 2],
                              view=("CC", "MLO")[i % 2], density="ABCD"[i % 4], synthetic=kind == "synthetic")
            wr.add(rec, (np.clip(img, 0, 1) * 65535).round().astype(np.uint16))
    return PreparedDataset(root)


@pytest.fixture(scope="session")
def breast_images():
    """The image generator ``breast_images(n, size=(64, 40), seed=0, brightness=0.0, noise=0.1)``."""
    return _breast_images


@pytest.fixture(scope="session")
def write_image_set():
    """``write_image_set(root, images, kind="real", prefix="img")`` -> PreparedDataset."""
    return _write_image_set


@pytest.fixture
def image_set_factory(tmp_path):
    """``make(images, kind="real", prefix="img")`` -> PreparedDataset of float [0, 1] images."""
    counter = iter(range(10_000))

    def make(images, kind: str = "real", prefix: str = "img") -> PreparedDataset:
        return _write_image_set(tmp_path / f"set{next(counter)}", images, kind, prefix)

    return make
