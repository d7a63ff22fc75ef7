"""mammosynth.phantom: the embedded default - a fast procedural breast phantom.

In the spirit of the FDA VICTRE pipeline (breastPhantom + x-ray projection), cut down to
what runs in milliseconds: breast outline (CC/MLO, pectoral muscle, skin, nipple),
1/f^3 fibroglandular texture at a requested ACR density, ligaments and ducts, inserted
findings with masks, Beer-Lambert projection at 20 keV, detector blur and noise.

>>> from mammosynth.phantom import PhantomConfig, make_phantom_dataset, render_phantom
>>> image, record, masks = render_phantom(0, PhantomConfig(size=(256, 160)))  # doctest: +SKIP
"""
from .dataset import (
    DENSE_LEVEL,
    PhantomConfig,
    PhantomSample,
    breast_mask,
    image_labels,
    make_phantom_dataset,
    parse_findings,
    percent_dense_area,
    render_phantom,
    simulate_phantom,
)
from .imaging import MU_20KEV

__all__ = [
    "DENSE_LEVEL",
    "MU_20KEV",
    "PhantomConfig",
    "PhantomSample",
    "breast_mask",
    "image_labels",
    "make_phantom_dataset",
    "parse_findings",
    "percent_dense_area",
    "render_phantom",
    "simulate_phantom",
]
