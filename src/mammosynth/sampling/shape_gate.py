"""The shape gate: redraw a generated image whose breast outline no training film comes near.

Why: texture is not the generators' only failure. At 256x160 two to five of every 32
samples of a 30-minute model had a broken outline (a detached fragment, a torn or crumbly
top, a hole through the breast): a reader rejects such a film at a glance. A serious
tool does not hand them out as training data or reader-study cases.

How: a run stores the outlines of its training films (:class:`ShapeReference`: their width
profiles, how far each is from its nearest other film, their skin lines' jaggedness and
the share of their breast in rows of more than one run, at the model's resolution). At
sampling, each image's breast mask (the one the background step finds) gives the same
figures (:mod:`mammosynth.data.outline`); an image with any of them above the films' own
``quantile`` (a shape far from every film's, a torn skin line, a breast in two lobes or
with a fragment beside it) is redrawn from another latent for the same index and
labels (attempt ``k`` uses :func:`~mammosynth.sampling.pipeline.latent_seed`'s ``attempt``),
up to ``attempts`` candidates; when none passes, the candidate least above the thresholds
is kept and recorded as failed. Image ``i`` remains a pure function of checkpoint, seed,
``i`` and the gate's settings. The gate reads the outline alone: it never selects on
tissue (keeping the samples a critic finds most film-like was measured and dropped; the
realism log), and the share it redraws is recorded with the set, since it is itself a
measure of the model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..data.outline import MIN_FILMS, ShapeReference, ShapeVerdict


@dataclass(frozen=True)
class ShapeGateConfig:
    """Settings of the shape gate (the CLI's defaults)."""

    #: an image passes when its nearest-film distance, jaggedness and split-row share are at
    #: most the training films' own values at this quantile (Harrell-Davis; 0.99 rejects about one
    #: real film in a hundred, so the gate removes outliers, not the real set's tail)
    quantile: float = 0.99
    #: candidates drawn per image at most (the first included)
    attempts: int = 8

    def __post_init__(self) -> None:
        if not 0.5 <= self.quantile < 1:
            raise ValueError(f"shape gate quantile must be in [0.5, 1), got {self.quantile}")
        if self.attempts < 1:
            raise ValueError(f"shape gate attempts must be >= 1, got {self.attempts}")

    def to_dict(self) -> dict[str, Any]:
        return {"quantile": self.quantile, "attempts": self.attempts}


def reference_from_dataset(spec: str, size: tuple[int, int]) -> ShapeReference:
    """The outlines of a prepared dataset's films (``PATH[:split]``, the train split when it
    has splits), fitted to ``size`` as training fits them: for models trained before runs
    stored their reference."""
    from ..training.data import film_outlines, load_training_data

    data = load_training_data(spec, tuple(size), (), show_progress=False)
    return film_outlines(data.images, source=str(data.info["path"]))


__all__ = ["MIN_FILMS", "ShapeGateConfig", "ShapeReference", "ShapeVerdict", "reference_from_dataset"]
