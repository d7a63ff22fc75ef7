"""The learned routes: mask inpainting (RePaint) and SDEdit on a class-conditional diffusion prior.

The prior is anything with the shape of the diffusion family's pipeline
(``mammosynth.sampling.diffusion.DiffusionPipeline``): a UNet called
as ``unet(x, t, class_labels=c).sample``, a fresh deterministic scheduler per film (diffusers'
DDIM: ``set_timesteps``, ``timesteps``, ``step``, ``add_noise``, ``alphas_cumprod``), a
labels -> class-index function and the model's resolution. :meth:`DiffusionPrior.from_run`
builds it from a run through that family's API, imported lazily (diffusers is loaded only
when a learned route runs).

Routes: :class:`DiffusionRemover` (``--remove``: RePaint with finding=none),
:class:`DiffusionInserter` (``--insert``: RePaint of a lesion mask with finding=KIND),
:class:`DiffusionDensity` (``--density``: SDEdit under the target density).

* **RePaint** (Lugmayr et al. 2022): at every step the known region (outside the mask) is
  replaced by the source noised to that step's level, the whole image is denoised one step
  under the target labels, and each step is resampled ``resample`` times (noise back up one
  step, denoise again) so the filled region agrees with its surroundings.
* **SDEdit** (Meng et al. 2022): the source noised to ``strength`` of the schedule, then
  denoised under the target labels.

Films are edited at the model's resolution: the film is resized down, edited, and the edit
(result minus the resized source) resized back up and added inside the edit mask only, which
is then the only place the stored pixels change.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
from scipy import ndimage

from .editors import EditError, EditOutcome, EditRequest
from .film import estimate_film, film_breast, to_gray
from .physics import inserted_labels


@dataclass
class DiffusionPrior:
    """A class-conditional denoiser and its sampler (see the module docstring)."""

    unet: Any
    make_scheduler: Callable[[], Any]
    classes: Callable[[Mapping[str, str]], Any]  # labels -> class index tensor [1] (or None)
    resolution: tuple[int, int]
    label_axes: Mapping[str, tuple[str, ...]]
    steps: int = 25
    resample: int = 2  # RePaint resampling per step
    name: str = "the diffusion prior"  # the run, in messages
    #: classifier-free guidance (1: the conditional prediction only, one UNet pass per step;
    #: otherwise ``uncond + guidance * (cond - uncond)``, two passes), needs ``null``
    guidance: float = 1.0
    null: Any = None  # the unconditional class index tensor [1]

    def __post_init__(self) -> None:
        if not self.guidance >= 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}")
        if self.guidance != 1.0 and self.null is None and self.label_axes:
            raise ValueError("classifier-free guidance needs the prior's unconditional class (null)")

    @classmethod
    def from_run(cls, run: str, steps: int = 25, resample: int = 2, device: Any = None,
                 guidance: float | None = None) -> "DiffusionPrior":
        """From a trained diffusion run, through the diffusion family's public API; ``device``
        (e.g. ``"cuda"``): where the UNet runs (the noise is drawn on the CPU either way);
        ``guidance``: None = the run's saved sampling default (``generate``'s)."""
        try:
            import torch

            from ..models.diffusion import class_index, noise_scheduler, null_class
            from ..sampling.diffusion import DiffusionPipeline
            from ..sampling.pipeline import load_pipeline
        except ImportError as exc:
            raise ValueError(f"the learned edit routes need the diffusion family ({exc})") from exc
        pipe = load_pipeline(run, device=device)
        if not isinstance(pipe, DiffusionPipeline):
            raise ValueError(f"{run}: a {type(pipe).__name__} run; the learned edit routes need a diffusion model "
                             "(mammosynth train --model diffusion)")
        axes = dict(pipe.label_axes)

        def classes(labels: Mapping[str, str]):
            return class_index({a: torch.tensor([c.index(labels[a]) if labels.get(a) in c else -1])
                                for a, c in axes.items()}, axes)

        return cls(pipe.unet, lambda: noise_scheduler(pipe.model_config, "ddim"), classes, tuple(pipe.resolution),
                   axes, steps, resample, str(run), float(pipe.guidance if guidance is None else guidance),
                   null_class(axes, 1))

    def _device(self):
        import torch

        p = next(iter(self.unet.parameters()), None)
        return p.device if p is not None else torch.device("cpu")

    # -- sampling -------------------------------------------------------------------
    def _eps(self, x, t, c):
        from ..models.diffusion import guided_prediction

        c = None if c is None else c.to(x.device)
        return guided_prediction(self.unet, x, t, c, self.null if self.label_axes else None, self.guidance)

    def repaint(self, x0: np.ndarray, keep: np.ndarray, labels: Mapping[str, str], seed: int) -> np.ndarray:
        """Fill ``~keep`` of ``x0`` ([h, w] in [-1, 1] at the model's resolution) under ``labels``."""
        import torch

        gen = torch.Generator().manual_seed(seed)
        dev = self._device()

        def noise():  # drawn on the CPU: the same edit on every device, up to float rounding
            return torch.randn(src.shape, generator=gen).to(dev)

        sched = self.make_scheduler()
        sched.set_timesteps(self.steps)
        src = torch.from_numpy(x0[None, None].astype(np.float32)).to(dev)
        k = torch.from_numpy(keep[None, None].astype(np.float32)).to(dev)
        c = self.classes(labels)
        ac = sched.alphas_cumprod
        x = noise()
        ts = list(sched.timesteps)
        for i, t in enumerate(ts):
            for r in range(self.resample):
                known = sched.add_noise(src, noise(), torch.tensor([int(t)]))
                x = k * known + (1 - k) * x
                prev = sched.step(self._eps(x, t, c), t, x).prev_sample
                if r == self.resample - 1 or i == len(ts) - 1:
                    x = prev
                    break
                # back up one step: q(x_t | x_{t-1}) with the ratio of the cumulative alphas
                a_t = float(ac[int(t)])
                a_p = float(ac[int(ts[i + 1])])
                x = math.sqrt(a_t / a_p) * prev + math.sqrt(1 - a_t / a_p) * noise()
        return (k * src + (1 - k) * x)[0, 0].float().cpu().numpy()

    def sdedit(self, x0: np.ndarray, strength: float, labels: Mapping[str, str], seed: int) -> np.ndarray:
        """Noise ``x0`` to ``strength`` of the schedule and denoise it under ``labels``."""
        import torch

        gen = torch.Generator().manual_seed(seed)
        sched = self.make_scheduler()
        sched.set_timesteps(self.steps)
        ts = list(sched.timesteps)[self.steps - max(1, int(round(strength * self.steps))):]
        src = torch.from_numpy(x0[None, None].astype(np.float32))
        x = sched.add_noise(src, torch.randn(src.shape, generator=gen), torch.tensor([int(ts[0])])).to(self._device())
        c = self.classes(labels)
        for t in ts:
            x = sched.step(self._eps(x, t, c), t, x).prev_sample
        return x[0, 0].float().cpu().numpy()


def _resize(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    return resize(x, shape, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)


def _composite(image: np.ndarray, small_src: np.ndarray, small_out: np.ndarray, mask: np.ndarray,
               weight: np.ndarray | None = None) -> np.ndarray:
    """The film with the edit (model-resolution result minus resized source, brought back to
    the film's size; times ``weight`` where given) added inside ``mask`` only: outside it,
    the source's pixels."""
    delta = _resize((small_out - small_src) / 2.0, image.shape)  # [-1, 1] -> grey
    if weight is not None:
        delta *= weight
    out = image.copy()
    new = to_gray(image)[mask] + delta[mask]
    out[mask] = np.clip(np.rint(new * 65535.0), 0, 65535).astype(np.uint16)
    return out


def _cover(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``mask`` brought to ``shape``: a pixel is set when any film pixel it covers is, so a
    lesion smaller than one model pixel (a calcification speck) is still repainted."""
    h, w = shape
    rows = (np.arange(h) * mask.shape[0]) // h
    cols = (np.arange(w) * mask.shape[1]) // w
    m = np.asarray(mask, np.uint8)
    return np.maximum.reduceat(np.maximum.reduceat(m, rows, axis=0), cols, axis=1) > 0


def _labels(request: EditRequest, finding: str, density: str | None = None) -> dict[str, str]:
    r = request.record
    return {"density": density or r.density, "view": r.view, "finding": finding}


class DiffusionRemover:
    """``--remove``: RePaint the finding's mask (dilated by ``feather_px``) with finding=none."""

    operation, route = "remove", "diffusion"

    def __init__(self, prior: DiffusionPrior, feather_px: int = 3):
        self.prior, self.feather_px = prior, feather_px

    def settings(self) -> dict[str, Any]:
        return {"operation": "remove", "route": "diffusion", "steps": self.prior.steps,
                "resample": self.prior.resample, "guidance": self.prior.guidance, "feather_px": self.feather_px}

    def apply(self, request: EditRequest) -> EditOutcome:
        k, rec = request.finding, request.record
        mask = request.masks.get(k)
        if mask is None:
            x0, y0, x1, y1 = (int(round(v)) for v in rec.findings[k].box)
            mask = np.zeros(request.image.shape, bool)
            mask[y0:y1, x0:x1] = True
        breast = film_breast(request.image)
        region = ndimage.binary_dilation(mask, iterations=self.feather_px) & breast
        if not region.any():
            raise EditError(f"{rec.image_id}: finding {k} lies outside the breast")
        small = _resize(to_gray(request.image), self.prior.resolution) * 2 - 1
        keep = ~_cover(region, self.prior.resolution)  # a finding under one model pixel is still repainted
        seed = int(request.rng.integers(2 ** 31))
        out = self.prior.repaint(small, keep, _labels(request, "none"), seed)
        image = _composite(request.image, small, out, region)
        findings = tuple(f for j, f in enumerate(rec.findings) if j != k)
        masks = {j - (j > k): m for j, m in request.masks.items() if j != k}
        params = {**self.settings(), "removed": rec.findings[k].to_dict()}
        return EditOutcome(image, region, findings, masks, None, params)


class DiffusionDensity:
    """``--density``: SDEdit of the breast under the target density; outline, lesions and
    (MLO) the pectoral muscle kept.

    The pectoral muscle is not breast tissue and density does not describe it; a weak prior
    redraws it as mottled tissue, so it stays the source's (the edit-film estimate of
    :mod:`.film`, dilated 2 px), like the lesions."""

    operation, route = "density", "diffusion"

    def __init__(self, prior: DiffusionPrior, keep_lesions: bool = True, keep_pectoral: bool = True):
        self.prior, self.keep_lesions, self.keep_pectoral = prior, keep_lesions, keep_pectoral

    def settings(self) -> dict[str, Any]:
        return {"operation": "density", "route": "diffusion", "steps": self.prior.steps,
                "guidance": self.prior.guidance, "keep_lesions": self.keep_lesions,
                "keep_pectoral": self.keep_pectoral}

    def apply(self, request: EditRequest) -> EditOutcome:
        rec = request.record
        region = film_breast(request.image)
        if self.keep_pectoral and region.any():
            region &= ~ndimage.binary_dilation(estimate_film(request.image, rec, region).pectoral, iterations=2)
        if self.keep_lesions:
            for m in request.masks.values():
                region &= ~ndimage.binary_dilation(m, iterations=2)
        small = _resize(to_gray(request.image), self.prior.resolution) * 2 - 1
        seed = int(request.rng.integers(2 ** 31))
        finding = rec.findings[0].kind if rec.findings else "none"
        out = self.prior.sdedit(small, request.strength, _labels(request, finding, request.density), seed)
        image = _composite(request.image, small, out, region)
        return EditOutcome(image, region, tuple(rec.findings), dict(request.masks), request.density,
                           {**self.settings(), "strength": request.strength, "from": rec.density,
                            "to": request.density})


class DiffusionInserter:
    """``--insert`` (learned): RePaint a lesion's mask under finding=KIND.

    The lesion's mask - its site, size and margin - is the physics route's
    (:meth:`~.physics.PhysicsInserter.draw`: the ``--box``/``--sites``/random plausible site
    rule, ``--size``, the phantom's shapes: a smooth lobulated ellipse for a circumscribed
    mass, a core with spicules for a spiculated one). The mask dilated by ``feather_px``
    (within the breast) is repainted at the model's resolution under the film's density and
    view and finding=KIND; the change is composited back with a ramp from 0 at the region's
    border to 1 ``feather_px`` inside, so every pixel outside the region is the source's.
    """

    operation, route = "insert", "diffusion"

    def __init__(self, prior: DiffusionPrior, spec: str, feather_px: int = 3, size_mm: float | None = None):
        from .physics import PhysicsInserter

        self.prior = prior
        self.shapes = PhysicsInserter(spec, feather_px=feather_px, size_mm=size_mm)
        kind = self.shapes.kind
        axes = dict(prior.label_axes)
        if "finding" not in axes:
            conditioned = ", ".join(axes) or "nothing"
            raise ValueError(f"{prior.name}: the diffusion model is not conditioned on the finding (it is on "
                             f"{conditioned}); the learned --insert needs one trained with --condition including "
                             "finding (or use --route physics)")
        if kind not in axes["finding"]:
            raise ValueError(f"{prior.name}: the diffusion model's finding classes {axes['finding']} lack {kind!r}; "
                             "the learned --insert cannot ask it for that lesion (use --route physics)")

    def settings(self) -> dict[str, Any]:
        s = self.shapes
        return {"operation": "insert", "route": "diffusion", "kind": s.kind_name, "pathology": s.pathology,
                "feather_px": s.feather_px, "size_mm": s.size_mm, "steps": self.prior.steps,
                "resample": self.prior.resample, "guidance": self.prior.guidance}

    def apply(self, request: EditRequest) -> EditOutcome:
        film = self.shapes.film(request)
        lesion, _, _ = self.shapes.draw(request, film)
        region = ndimage.binary_dilation(lesion.mask, iterations=self.shapes.feather_px) & film.breast
        ramp = np.clip(ndimage.distance_transform_edt(region) / self.shapes.feather_px, 0.0, 1.0)
        small = _resize(to_gray(request.image), self.prior.resolution) * 2 - 1
        keep = ~_cover(region, self.prior.resolution)
        seed = int(request.rng.integers(2 ** 31))
        out = self.prior.repaint(small, keep, _labels(request, self.shapes.kind), seed)
        image = _composite(request.image, small, out, region, ramp.astype(np.float32))
        findings, masks, params = inserted_labels(request, lesion, film, self.settings())
        return EditOutcome(image, region, findings, masks, None, {**params, "repaint_seed": seed})
