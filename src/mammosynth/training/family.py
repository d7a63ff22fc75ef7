"""What a generator family gives the shared training loop (:mod:`mammosynth.training.loop`).

A family builds its :class:`~mammosynth.training.state.TrainerState` (networks, optimisers,
extras), runs one optimisation step on a batch of reals, and renders images for the sample
grids and the quality score. The loop owns everything else: budget, batches, randomness,
EMA, snapshots, logging, checkpoints and distributed sync.

:class:`GanFamily` (fastgan, dcgan), per step (``batch`` images per rank, all randomness
from the step's generator):

1. One G forward on the step's latents and labels; its graph is kept for step 4.
2. D step: those fakes (detached) and the reals, DiffAugment both sides with probability
   ``p``; hinge (fastgan) or BCE (dcgan) loss + FastGAN's reconstruction loss on reals.
   ``TrainConfig.d_batch``: "mixed" (fastgan) sends reals and fakes through D in one pass,
   "split" (dcgan) in one pass each. D's BatchNorm normalises a pass by its own batch
   statistics, so what all fakes share (a grain, a contrast) reaches a split D only through
   the shape of its feature distributions, not their mean or scale. A fresh D on a
   10-minute generator's fakes, 100 steps: hinge loss 0.39 mixed against 1.86 split,
   held-out AUC 0.98 against 0.92; in split training D's loss sat at ~2.0 (chance) from
   10 kimg on, mixed at ~1.0.
3. Lazy R1 every ``r1_interval`` steps: ``gamma/2 * |grad_x D(x)|^2 * interval`` on reals.
   ADA: accumulate ``sign(D(real))``; every ``ada_interval`` steps move ``p`` toward
   ``r_t = 0.6``.
4. G step: the same fakes through the updated D (freshly augmented; with freshly augmented
   reals in the same pass when mixed, so that D normalises as in its own step),
   non-saturating loss on the fakes' logits, backward through the graph of step 1. Reusing the D step's fakes (as PyTorch's DCGAN
   example does) saves a G forward per step, ~12 % of a fastgan step on a CPU.

The diffusion family is :class:`mammosynth.training.diffusion.DiffusionFamily`.
"""
from __future__ import annotations

import contextlib
import copy
import sys
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from . import distributed as D_
from .config import TrainConfig
from .data import TrainingData
from .state import TrainerState


@dataclass
class StepContext:
    """What every family step needs from the loop: ranks, device, precision."""

    info: D_.DistInfo
    device: torch.device
    autocast: Callable[[], Any]  # a context manager factory (mixed precision, or nothing)
    scaler: torch.amp.GradScaler
    memory_format: torch.memory_format


class Family:
    """Interface of a generator family (see the module docstring)."""

    #: the checkpoint key of the network that generates (the EMA copy)
    inference_key = "G_ema"
    #: columns of the stats.jsonl "train" entries (averaged over the logging interval)
    loss_names: tuple[str, ...] = ()

    def __init__(self, cfg: TrainConfig, data: TrainingData, ctx: StepContext):
        self.cfg, self.data, self.ctx = cfg, data, ctx

    def build(self) -> TrainerState:
        raise NotImplementedError

    def train_step(self, state: TrainerState, gen: torch.Generator, real: torch.Tensor,
                   labels: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimisation step of every network on this rank's ``real`` batch (gradients
        averaged over ranks); returns the losses named in :attr:`loss_names`."""
        raise NotImplementedError

    def after_step(self, state: TrainerState) -> None:
        """After the counters and the EMA moved (GAN: the ADA p update)."""

    def before_snapshot(self, state: TrainerState) -> None:
        """On every rank before the snapshot's images (GAN: BatchNorm recalibration)."""

    def render(self, state: TrainerState, seeds: list[int], labels: dict[str, torch.Tensor]) -> torch.Tensor:
        """Images ``[N, 1, H, W]`` in [-1, 1] (CPU, float) of the inference network, image
        ``k``'s randomness from ``seeds[k]`` alone."""
        raise NotImplementedError

    def progress(self, state: TrainerState) -> dict[str, float]:
        """Family figures for logs and the progress bar (GAN: ``ada_p``)."""
        return {}


def _latents(seeds: list[int], z_dim: int) -> torch.Tensor:
    return torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(s)) for s in seeds])


def d_loss_fn(loss: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if loss == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + \
        F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))


def g_loss_fn(loss: str, fake: torch.Tensor) -> torch.Tensor:
    if loss == "hinge":
        return -fake.mean()
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


@torch.no_grad()
def generate_batches(G: torch.nn.Module, z: torch.Tensor, labels: dict[str, torch.Tensor], device: torch.device,
                     chunk: int = 32) -> torch.Tensor:
    out = []
    for i in range(0, z.shape[0], chunk):
        out.append(G(z[i:i + chunk].to(device), {a: y[i:i + chunk].to(device) for a, y in labels.items()},
                     frame=False).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def recalibrate_bn(G: torch.nn.Module, data: TrainingData, device: torch.device, seed: int,
                   batches: int = 8, batch: int = 64) -> None:
    """Re-estimate the BatchNorm running statistics of ``G`` (in place) for eval-mode use.

    The EMA update copies G's running stats into G_ema, but those belong to G's weights,
    not to the averaged ones; eval-mode samples of G_ema then collapse to near-flat
    images. Here G runs in train mode with a cumulative average (``momentum=None``) over
    ``batches`` batches of latents and labels from a dedicated fixed-seed generator, so
    the global RNG stream (and bit-identical resume) is untouched. Leaves ``G`` in eval mode.
    """
    bns = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    g = torch.Generator().manual_seed(seed + 3_000_017)
    G.train()
    try:
        for _ in range(batches):
            z = torch.randn(batch, G.z_dim, generator=g)
            labels = data.sample_labels(batch, g)
            G(z.to(device), {a: y.to(device) for a, y in labels.items()}, frame=False)
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
        G.eval()


def _cat_labels(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: torch.cat([a[k], b[k].to(a[k].device)]) for k in a}


def _cat_tex(tex: tuple[dict, dict]) -> dict:
    return {"x_texture": torch.cat([tex[0]["x_texture"], tex[1]["x_texture"]])} if tex[0] else {}


class GanFamily(Family):
    inference_key = "G_ema"
    loss_names = ("loss_D", "loss_G", "rec", "r1", "spectral")

    def build(self) -> TrainerState:
        from ..models import build_discriminator, build_generator
        from ..models.augment import parse_ops

        cfg, ctx = self.cfg, self.ctx
        if cfg.accumulate != 1:
            raise ValueError("accumulate: gradient accumulation is implemented for the diffusion family only")
        G = build_generator(cfg.model).to(ctx.device, memory_format=ctx.memory_format)
        Dn = build_discriminator(cfg.model).to(ctx.device, memory_format=ctx.memory_format)
        G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        opts = {"opt_G": torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2), fused=True),
                "opt_D": torch.optim.Adam(Dn.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2), fused=True)}
        self.ops = parse_ops(cfg.augment)
        self.spectral = None
        if cfg.spectral_weight:
            from .spectral import SpectralMatch

            try:
                self.spectral = SpectralMatch.from_images(self.data.images)
            except ValueError as exc:  # tiny images or no breast: train without it, and say so
                print(f"warning: {exc}; training without it", file=sys.stderr)
        return TrainerState(nets={"G": G, "D": Dn, "G_ema": G_ema}, ema={"G_ema": "G"}, opts=opts,
                            scaler=ctx.scaler, extras={"ada_p": float(cfg.ada_p0), "ada_acc": [0.0, 0.0]})

    def train_step(self, state, gen, real, real_labels):
        from ..models.augment import augment

        cfg, ctx, data = self.cfg, self.ctx, self.data
        G, Dn = state.nets["G"], state.nets["D"]
        opt_G, opt_D = state.opts["opt_G"], state.opts["opt_D"]
        scaler, info, n, ada_p = ctx.scaler, ctx.info, real.shape[0], state.extras["ada_p"]
        z = torch.randn(n, cfg.model.z_dim, generator=gen).to(ctx.device)
        fake_labels = data.sample_labels(n, gen)
        G.requires_grad_(True)
        Dn.requires_grad_(True)
        with ctx.autocast():
            # the content only (ModelConfig.content_width), as the films are loaded; graph kept for the G step
            fake_g = G(z, fake_labels, frame=False)
            fake = fake_g.detach()
            both = augment(torch.cat([real, fake.to(real.dtype)]), ada_p, self.ops, gen)
            # mixed or split D passes (module docstring); whichever, the G step passes the
            # same way, or D would judge G's fakes by batch statistics it never trained on
            tex = self._texture_inputs(real, fake.to(real.dtype))
            recon_n = n if cfg.recon_weight > 0 else 0
            if cfg.d_batch == "mixed":
                logits, rec = Dn(both, _cat_labels(real_labels, fake_labels), recon_n=recon_n, gen=gen,
                                 **_cat_tex(tex))
            else:
                logits_r, rec = Dn(both[:n], real_labels, recon_n=recon_n, gen=gen, **tex[0])
                logits_f, _ = Dn(both[n:], fake_labels, **tex[1])
                logits = torch.cat([logits_r, logits_f])
            loss_D = d_loss_fn(cfg.loss, logits[:n].float(), logits[n:].float()) + cfg.recon_weight * rec.float()
        opt_D.zero_grad(set_to_none=True)
        scaler.scale(loss_D).backward()
        D_.all_reduce_grads(Dn.parameters(), info)
        scaler.step(opt_D)
        scaler.update()
        acc = state.extras["ada_acc"]
        acc[0] += float(torch.sign(logits[:n].detach().float()).sum())
        acc[1] += n
        r1_val = 0.0
        if cfg.r1_gamma > 0 and state.step % cfg.r1_interval == 0:
            # R1 on everything D reads of the reals (the texture head's exact view too)
            xs = [both[:n].detach().float().requires_grad_(True)]
            tex_r = self._texture_inputs(real, real)[0]
            if tex_r:
                xs.append(tex_r["x_texture"].detach().float().requires_grad_(True))
                tex_r = {"x_texture": xs[1]}
            out, _ = Dn(xs[0], real_labels, **tex_r)
            grads = torch.autograd.grad(out.sum(), xs, create_graph=True)
            r1 = sum(g.square().sum(dim=(1, 2, 3)) for g in grads).mean()
            opt_D.zero_grad(set_to_none=True)
            (r1 * (cfg.r1_gamma / 2) * cfg.r1_interval).backward()
            D_.all_reduce_grads(Dn.parameters(), info)
            opt_D.step()
            r1_val = float(r1.detach())
        D_.sync_buffers(Dn, info)
        # G step: the D step's fakes, through the updated D
        Dn.requires_grad_(False)
        with ctx.autocast():
            if cfg.d_batch == "mixed":
                both_g = augment(torch.cat([real, fake_g.to(real.dtype)]), ada_p, self.ops, gen)
                logits_g, _ = Dn(both_g, _cat_labels(real_labels, fake_labels),
                                 **_cat_tex(self._texture_inputs(real, fake_g.to(real.dtype))))
                logits_g = logits_g[n:]
            else:
                logits_g, _ = Dn(augment(fake_g, ada_p, self.ops, gen), fake_labels,
                                 **self._texture_inputs(fake_g, fake_g)[1])
            loss_G = g_loss_fn(cfg.loss, logits_g.float())
            spec = self.spectral.loss(fake_g) if self.spectral is not None else loss_G.new_zeros(())
            loss_G = loss_G + cfg.spectral_weight * spec
        opt_G.zero_grad(set_to_none=True)
        scaler.scale(loss_G).backward()
        D_.all_reduce_grads(G.parameters(), info)
        scaler.step(opt_G)
        scaler.update()
        D_.sync_buffers(G, info)
        D_.sync_buffers(Dn, info)
        return {"loss_D": float(loss_D.detach()), "loss_G": float(loss_G.detach()), "rec": float(rec.detach()),
                "r1": r1_val, "spectral": float(spec.detach())}

    def _texture_inputs(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[dict, dict]:
        """D's extra keyword arguments for the reals' and the fakes' passes: the images
        before augmentation for the texture head (``TrainConfig.texture_view``), or none."""
        if self.cfg.texture_view != "exact" or not getattr(self.cfg.model, "texture_channels", 0):
            return {}, {}
        return {"x_texture": real}, {"x_texture": fake}

    def after_step(self, state):
        from ..models.augment import update_p

        cfg = self.cfg
        if self.ops and cfg.ada_target > 0 and state.step % cfg.ada_interval == 0:
            s, n = D_.all_sum(state.extras["ada_acc"], self.ctx.info)
            state.extras["ada_p"] = update_p(state.extras["ada_p"], s / max(n, 1), cfg.ada_target, cfg.batch,
                                             cfg.ada_interval, cfg.ada_kimg)
            state.extras["ada_acc"] = [0.0, 0.0]

    def before_snapshot(self, state):
        recalibrate_bn(state.nets["G_ema"], self.data, self.ctx.device, self.cfg.seed)  # every rank: replicas stay identical

    def render(self, state, seeds, labels):
        from ..models.inference import prepare_for_inference

        G = prepare_for_inference(state.nets["G_ema"])
        with getattr(G, "inference_cache", contextlib.nullcontext)():
            return generate_batches(G, _latents(seeds, self.cfg.model.z_dim), labels, self.ctx.device)

    def progress(self, state):
        return {"ada_p": state.extras["ada_p"]}


def family_for(cfg: TrainConfig) -> type[Family]:
    if cfg.model.family == "diffusion":
        from .diffusion import DiffusionFamily

        return DiffusionFamily
    return GanFamily
