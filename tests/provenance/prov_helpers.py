"""Helpers for provenance tests: smooth textured phantom-like images and small signed sets."""
from __future__ import annotations

import numpy as np

from mammosynth.data.prepared import DatasetWriter
from mammosynth.data.schema import Finding, ImageRecord

CKPT = "ab" * 32


def breast_image(h: int = 128, w: int = 80, seed: int = 0, dtype=np.uint16) -> np.ndarray:
    """A half-ellipse 'breast' (chest wall left) with two scales of smooth texture."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((yy - h / 2) / (h / 2 * 0.9)) ** 2 + (xx / (w * 0.85)) ** 2 < 1
    tex = gaussian_filter(rng.standard_normal((h, w)), 2) * 3 + gaussian_filter(rng.standard_normal((h, w)), 8) * 8
    img = gaussian_filter(np.where(inside, 0.45 + 0.15 * tex, 0.0), 1.0)
    full = 65535 if dtype == np.uint16 else 255
    return np.rint(np.clip(img, 0, 1) * full).astype(dtype)


def synthetic_record(i: int, view: str = "CC", laterality: str = "R") -> ImageRecord:
    gen = {"seed": 7, "index": i, "checkpoint_sha256": CKPT, "run": "run-test", "step": 100,
           "conditions": {"density": "B", "view": view}}
    findings = (Finding(kind="mass", pathology="unknown"),) if i % 2 else ()
    return ImageRecord(image_id=f"syn_{i:04d}", patient_id=f"synp{i:04d}", laterality=laterality, view=view,
                       density="B", findings=findings, source_dataset="mammosynth-synthetic", synthetic=True,
                       generation=gen)


def write_set(root, n: int = 3, key=None, fmt: str = "png16"):
    """A finished, signed synthetic set of ``n`` marked images."""
    from mammosynth import provenance

    settings = {"generator": {"checkpoint_sha256": CKPT, "run": "run-test"}, "seed": 7, "format": fmt}
    source = {"provenance": {"dataset": {"manifest_sha256": "cd" * 32, "content_hash": "ef" * 32}}}
    writer_fn = provenance.write_synthetic_dicom if fmt == "dicom" else None
    with DatasetWriter(root, kind="synthetic", source=source, settings=settings, fmt=fmt) as wr:
        for i in range(n):
            rec = synthetic_record(i)
            marked, text = provenance.mark_image(breast_image(seed=i), rec, rec.generation)
            wr.add(rec, marked, text=text, file_writer=writer_fn)
    provenance.finalize_synthetic_set(root, key=key)
    return root


