"""The physics insertion route: the phantom's lesion models added to a real film.

For one film (:mod:`.film` estimates its geometry, contrast, blur and noise):

1. **Site.** A given box/mask: the lesion is centred on it and must fit inside it. Otherwise
   the phantom's own placement rule (:func:`mammosynth.phantom.lesions._place`): a breast
   pixel drawn with weight ``envelope + 0.15`` (mostly glandular tissue), at least the
   lesion's extent + 3 mm from the skin line and off the pectoral muscle. In both cases the
   lesion's mask must lie in the breast, off the pectoral muscle and at least 1 mm inside
   the skin line; up to ``MAX_DRAWS`` lesions are drawn until one fits (and has the
   pathology asked for), else the film is rejected. ``size_mm`` fixes a mass's diameter
   (spiculated: of its core) instead of drawing it from the phantom's range.
2. **Lesion.** :mod:`mammosynth.phantom.lesions` draws it on a pseudo-anatomy read back
   from the film; its added line integral (plus, for distortion and asymmetry, the change
   of glandular path they make) is blurred with the film's PSF and scaled by the film's
   grey-per-line-integral gain: the change in log-attenuation (grey) space.
3. **Noise.** A denser path lets fewer quanta through: in log space the quantum noise SD
   grows by ``exp(dp / 2)``. Noise of SD ``noise_sd * sqrt(exp(dp) - 1)``, correlated by
   the same PSF, is added, so the film's noise level is matched inside the lesion.
4. **Feathering.** The edit region is the lesion's support dilated by ``feather_px``
   (within the breast); the change ramps from 0 at its border to 1 ``feather_px`` inside.
   Every pixel outside the region is the source's, bit for bit.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy import ndimage

from ..data.schema import Finding
from ..phantom.anatomy import Anatomy
from ..phantom.imaging import MU_20KEV
from ..phantom.lesions import Lesion, make_asymmetry, make_calcifications, make_distortion, make_mass
from .editors import EditError, EditOutcome, EditRequest, Site
from .film import FilmModel, estimate_film, pseudo_anatomy, to_gray

#: KIND of ``--insert KIND[:PATHOLOGY]`` -> (finding kind, subtype or None = as the phantom draws)
INSERT_KINDS = {
    "mass": ("mass", None), "mass-circumscribed": ("mass", "circumscribed"), "mass-spiculated": ("mass", "spiculated"),
    "calcification": ("calcification", None), "distortion": ("distortion", None), "asymmetry": ("asymmetry", None),
}
#: pathologies each KIND's model can produce
PATHOLOGIES = {"mass": ("benign", "malignant"), "mass-circumscribed": ("benign", "malignant"),
               "mass-spiculated": ("malignant",), "calcification": ("benign", "malignant"),
               "distortion": ("malignant",), "asymmetry": ("benign",)}
#: smallest extent (mm, radius) a lesion of the kind can have: a breast whose interior is
#: never this far (+3 mm) from the skin line cannot hold one
MIN_EXTENT_MM = {"mass": 5.2, "calcification": 3.5, "distortion": 7.0, "asymmetry": 10.0}
MAX_DRAWS = 40
SKIN_CLEARANCE_MM = 1.0


def parse_insert(spec: str) -> tuple[str, str | None]:
    """``"KIND[:PATHOLOGY]"`` -> (KIND, pathology or None); ValueError naming the choices."""
    kind, _, pathology = str(spec).strip().lower().partition(":")
    if kind not in INSERT_KINDS:
        raise ValueError(f"--insert: unknown lesion kind {kind!r}; expected one of {tuple(INSERT_KINDS)}")
    if pathology and pathology not in PATHOLOGIES[kind]:
        raise ValueError(f"--insert: the {kind} model cannot be {pathology!r}; it can be {PATHOLOGIES[kind]}")
    return kind, pathology or None


def box_region(box: tuple[float, float, float, float], shape: tuple[int, int], name: str) -> np.ndarray:
    """Boolean mask of a box; EditError when it is empty or leaves the image."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    h, w = shape
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise EditError(f"{name}: box {tuple(box)} is empty or outside the image ({h}x{w} px)")
    out = np.zeros(shape, dtype=bool)
    out[y0:y1, x0:x1] = True
    return out


class PhysicsInserter:
    """Insert one phantom lesion per film (see the module docstring)."""

    operation = "insert"
    route = "physics"

    def __init__(self, spec: str, feather_px: int = 3, size_mm: float | None = None):
        self.kind_name, self.pathology = parse_insert(spec)
        self.kind, self.subtype = INSERT_KINDS[self.kind_name]
        if feather_px < 1:
            raise ValueError(f"feather_px must be >= 1, got {feather_px}")
        self.feather_px = int(feather_px)
        if size_mm is not None and self.kind != "mass":
            raise ValueError(f"--size sets a mass's diameter; {self.kind_name} lesions are drawn at the phantom's "
                             "sizes (place them with --box or --sites)")
        if size_mm is not None and not size_mm > 0:
            raise ValueError(f"--size must be > 0 mm, got {size_mm}")
        self.size_mm = None if size_mm is None else float(size_mm)

    def settings(self) -> dict[str, Any]:
        return {"operation": "insert", "route": "physics", "kind": self.kind_name, "pathology": self.pathology,
                "feather_px": self.feather_px, "size_mm": self.size_mm}

    # -- drawing ----------------------------------------------------------------------
    def _make(self, rng, anat, centre):
        if self.kind == "mass":
            spic = self.subtype == "spiculated" if self.subtype else bool(rng.random() < 0.5)
            return make_mass(rng, anat, spiculated=spic, centre=centre, diameter_mm=self.size_mm)
        return {"calcification": make_calcifications, "distortion": make_distortion,
                "asymmetry": make_asymmetry}[self.kind](rng, anat, centre)

    def _allowed(self, film: FilmModel, site: Site | None, name: str) -> tuple[np.ndarray, tuple | None]:
        """Where the lesion's mask may lie, and the centre (row, col) for a given site."""
        allowed = film.breast & ~film.pectoral & (film.dist_mm >= SKIN_CLEARANCE_MM)
        if site is None:
            least = max(MIN_EXTENT_MM[self.kind], 0.5 * (self.size_mm or 0.0))
            need = least + 3.0
            if not (allowed & (film.dist_mm > need)).any():
                raise EditError(f"{name}: a {self.kind_name} lesion (at least {least:g} mm from its "
                                f"centre to its edge) is larger than the breast: no point off the pectoral muscle lies "
                                f"{need:g} mm inside the skin line (deepest: {float(film.dist_mm.max()):.1f} mm)")
            return allowed, None
        region = np.ones_like(allowed)
        if site.box is not None:
            region &= box_region(site.box, allowed.shape, name)
        if site.mask is not None:
            m = np.asarray(site.mask, bool)
            if m.shape != allowed.shape:
                raise EditError(f"{name}: site mask shape {m.shape} differs from the image {allowed.shape}")
            region &= m
        where = site.box if site.box is not None else "mask"
        if not region.any():
            raise EditError(f"{name}: the site {where} is empty")
        inside = float((region & film.breast).sum()) / float(region.sum())
        cy, cx = ndimage.center_of_mass(region)
        if inside < 0.5 or not film.breast[int(cy), int(cx)]:
            raise EditError(f"{name}: site {where} lies outside the breast ({100 * inside:.0f} % of it inside)")
        if film.pectoral[int(cy), int(cx)]:
            raise EditError(f"{name}: site {where} is centred on the pectoral muscle")
        return allowed & region, (float(cy), float(cx))

    def _draw(self, gray: np.ndarray, film: FilmModel, request: EditRequest, name: str):
        allowed, centre = self._allowed(film, request.site, name)
        base = pseudo_anatomy(gray, film)
        smallest = None
        for _ in range(MAX_DRAWS):
            anat = dataclasses.replace(base, gland=base.gland.copy())
            lesion = self._make(request.rng, anat, centre)
            if self.pathology and lesion.pathology != self.pathology:
                continue
            area = int(lesion.mask.sum())
            smallest = area if smallest is None else min(smallest, area)
            if area and not (lesion.mask & ~allowed).any():
                return lesion, anat, base
        where = f"site {request.site.box if request.site.box is not None else 'mask'}" if request.site else \
            "any site off the pectoral muscle and the skin line"
        raise EditError(f"{name}: no {self.kind_name} lesion of the model fitted {where} in {MAX_DRAWS} draws "
                        f"(smallest drawn: {smallest} px); the lesion is larger than the room the breast offers there")

    def film(self, request: EditRequest) -> FilmModel:
        """The film's estimates (:mod:`.film`); EditError for a film that is not 16-bit or has no breast."""
        image = np.asarray(request.image)
        if image.dtype != np.uint16:
            raise EditError(f"{request.record.image_id}: expected a 16-bit film, got {image.dtype}")
        try:
            return estimate_film(image, request.record)
        except ValueError as exc:
            raise EditError(str(exc)) from exc

    def draw(self, request: EditRequest, film: FilmModel) -> tuple[Lesion, Anatomy, Anatomy]:
        """A lesion that fits the request's site (or a random plausible one), on the pseudo-anatomy
        read back from the film: (lesion, anatomy with the lesion's tissue change, anatomy before).
        The learned route draws its lesion's mask (site, size, margin) here too."""
        return self._draw(to_gray(request.image), film, request, request.record.image_id)

    # -- compositing ------------------------------------------------------------------
    def apply(self, request: EditRequest) -> EditOutcome:
        image = np.asarray(request.image)
        film = self.film(request)
        gray = to_gray(image)
        lesion, anat, base = self.draw(request, film)
        dgland = anat.gland - base.gland  # distortion's pull and asymmetry's extra tissue
        changed = (lesion.extra != 0) | lesion.mask | (dgland != 0)
        # everything below runs in a window around the lesion: 3 sigma of blur + feathering + margin
        pad = int(np.ceil(3 * film.blur_px)) + self.feather_px + 2
        rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        h, w = gray.shape
        win = (slice(max(rows[0] - pad, 0), min(rows[-1] + pad + 1, h)),
               slice(max(cols[0] - pad, 0), min(cols[-1] + pad + 1, w)))
        dp = lesion.extra[win].astype(np.float32) + np.float32(MU_20KEV["gland"] - MU_20KEV["fat"]) * dgland[win]
        if film.blur_px > 0.3:
            dp = ndimage.gaussian_filter(dp, film.blur_px, mode="constant")
        peak = float(np.abs(dp).max())
        support = lesion.mask[win] | (np.abs(dp) > 1e-3 * peak if peak > 0 else lesion.mask[win])
        region_w = ndimage.binary_dilation(support, iterations=self.feather_px) & film.breast[win]
        ramp = np.clip(ndimage.distance_transform_edt(region_w) / self.feather_px, 0.0, 1.0)
        white = request.rng.standard_normal(dp.shape, dtype=np.float32)
        if film.blur_px > 0.3:
            white = ndimage.gaussian_filter(white, film.blur_px)
            white /= max(float(white.std()), 1e-12)
        extra_sd = film.noise_sd * np.sqrt(np.expm1(np.clip(dp, 0, 20)))
        new = gray[win] + ramp * (film.gain * dp + extra_sd * white)
        out = image.copy()  # outside the region: the source's pixels, untouched
        sub = out[win]
        sub[region_w] = np.clip(np.rint(new[region_w] * 65535.0), 0, 65535).astype(np.uint16)
        region = np.zeros(gray.shape, dtype=bool)
        region[win] = region_w
        findings, masks, params = inserted_labels(request, lesion, film, self.settings())
        params["peak_line_integral"] = round(peak, 5)
        return EditOutcome(out, region, findings, masks, None, params)


def inserted_labels(request: EditRequest, lesion: Lesion, film: FilmModel, settings: dict[str, Any]
                    ) -> tuple[tuple[Finding, ...], dict[int, np.ndarray], dict[str, Any]]:
    """The film's findings with the inserted lesion appended (its box from its mask), the masks,
    and the edit parameters (the route's ``settings``, the lesion's, the site's, the film's)."""
    rows, cols = np.flatnonzero(lesion.mask.any(axis=1)), np.flatnonzero(lesion.mask.any(axis=0))
    box = (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
    finding = Finding(kind=lesion.kind, pathology=lesion.pathology, box=box,
                      source_codes={"subtype": lesion.subtype, **lesion.params,
                                    "inserted_by": f"mammosynth edit --insert ({settings['route']})"})
    findings = tuple(request.record.findings) + (finding,)
    masks = {**request.masks, len(findings) - 1: lesion.mask}
    site = request.site
    params = {**settings, "subtype": lesion.subtype, "lesion": lesion.params,
              "site": "given" if site else "random",
              "requested_box": list(site.box) if site and site.box is not None else None,
              "film": film.summary()}
    return findings, masks, params
