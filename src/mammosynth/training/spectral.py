"""Spectral matching: a generator loss that pulls the power spectrum of the fakes' breast
tissue towards the training films'.

Why: the discriminator learns the layout of a mammogram (outline, pectoral muscle,
brightness) long before it judges fine texture; in a 10-minute CPU run the generator's top
layers then draw whatever high-frequency pattern the discriminator does not yet punish
(a fine oriented hatching, README "Realism"). Mammographic parenchyma has a known
second-order signature, a power spectrum falling as f^-beta with beta about 3 (Burgess
et al. 2001), which the realism measures check (:mod:`mammosynth.metrics.spectrum`). This
loss asks for it directly, in 2-D (so an oriented peak such as a hatching costs as much as
a wrong slope), averaged over a batch (a distribution statistic: single images keep their
own beta). The texture still comes from the generator's own layers and noise inputs;
nothing is laid over its output.

Statistic (the same pre-whitening as the realism measure): the 5-point Laplacian of the
image, cut into ``patch`` x ``patch`` patches on a ``patch // 2`` grid, keeping patches
lying wholly inside the breast (no pixel below ``INSIDE``, the background being -1);
each patch minus its mean, times a 2-D Hann window, |rfft2|^2; the log of the mean over
all kept patches of the batch. Loss: the mean squared difference of the fakes' log
spectrum and the training films' (computed once, from every training image, at the
start of a run), over all frequencies but the constant term.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: pixels above this (images in [-1, 1], background -1) count as breast
INSIDE = -0.9


def patch_size(resolution: tuple[int, int]) -> int:
    """32 px, or a quarter of the shorter side (a power of two, at least 8) for small images."""
    p = 32
    while p > 8 and p * 4 > min(resolution):
        p //= 2
    return p


def interior_patches(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Laplacian patches ``[M, patch, patch]`` of ``x`` [B, 1, H, W] lying wholly inside the
    breast, on a ``patch // 2`` grid (M may be 0)."""
    x = x.float()
    # the 5-point Laplacian (replicated border) as shifted adds: a 1-channel conv and its
    # backward cost ~14 ms per step on a CPU, these a fraction of it
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    lap = p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:] - 4.0 * x
    stride = patch // 2
    cols = F.unfold(lap, patch, stride=stride)  # [B, patch*patch, L]
    inside = F.unfold(x, patch, stride=stride).amin(1) > INSIDE  # [B, L]
    return cols.transpose(1, 2)[inside].view(-1, patch, patch)


def mean_power(patches: torch.Tensor) -> torch.Tensor:
    """The mean windowed power spectrum ``[patch, patch // 2 + 1]`` of ``patches``."""
    n = patches.shape[-1]
    w = torch.hann_window(n, periodic=False, device=patches.device)
    p = (patches - patches.mean(dim=(1, 2), keepdim=True)) * (w[:, None] * w[None, :])
    return torch.fft.rfft2(p).abs().square().mean(0)


class SpectralMatch:
    """The training films' log spectrum and the loss of a batch of fakes against it."""

    def __init__(self, reference: torch.Tensor, patch: int):
        self.patch = patch
        # a floor a thousand times below the films' power: a flat fake has a large but
        # finite loss, and log(0) never enters the gradient
        self.floor = reference * 1e-3
        self.log_ref = torch.log(reference + self.floor)
        keep = torch.ones_like(reference, dtype=torch.bool)
        keep[0, 0] = False  # the patch mean: removed on both sides
        self.keep = keep

    @classmethod
    def from_images(cls, images: torch.Tensor, chunk: int = 64) -> "SpectralMatch":
        """From training images ``[N, 1, H, W]`` in [-1, 1] (every interior patch of every image)."""
        patch = patch_size(tuple(images.shape[-2:]))
        total, count = None, 0
        for i in range(0, images.shape[0], chunk):
            pt = interior_patches(images[i:i + chunk], patch)
            if pt.shape[0] == 0:
                continue
            s = mean_power(pt) * pt.shape[0]
            total = s if total is None else total + s
            count += pt.shape[0]
        if total is None:
            raise ValueError(f"spectral matching: no {patch}-px patch lies wholly inside a breast in any training "
                             "image (set spectral_weight to 0)")
        return cls(total / count, patch)

    def loss(self, fake: torch.Tensor) -> torch.Tensor:
        """Mean squared log-spectrum difference of the batch ``fake`` [B, 1, H, W]; 0 (with
        a graph) when no fake has an interior patch yet."""
        pt = interior_patches(fake, self.patch)
        if pt.shape[0] == 0:
            return fake.sum() * 0.0
        ref = self.log_ref.to(fake.device)
        log_p = torch.log(mean_power(pt) + self.floor.to(fake.device))
        return (log_p - ref)[self.keep.to(fake.device)].square().mean()
