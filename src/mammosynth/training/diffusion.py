"""The diffusion family's training step (:class:`DiffusionFamily`) for the shared loop.

Per step, on this rank's reals ``x0`` (in ``accumulate`` micro-batches whose gradients add
up before one optimiser step, so a batch that does not fit in memory trains as if it did):
a timestep ``t`` uniform over the schedule and Gaussian noise per image, ``x_t`` from the
DDPM forward process, the target (the noise, or the velocity ``v``), the UNet's prediction
for ``x_t`` with the image's class (every label dropped to null with probability
``label_dropout``: classifier-free guidance), and the mean squared error. Gradients are
clipped to norm 1 (as in diffusers' training scripts) and AdamW steps.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.diffusion import build_unet, class_index, noise_scheduler, sample
from . import distributed as D_
from .family import Family
from .state import TrainerState

#: DDIM steps of the snapshot images (grids, quality score): cheap, and enough to judge
SNAPSHOT_STEPS = 10
#: guidance of the snapshot images and the pipeline's default
DEFAULT_GUIDANCE = 1.5


class DiffusionFamily(Family):
    inference_key = "unet_ema"
    loss_names = ("loss",)

    def build(self) -> TrainerState:
        import copy

        cfg, ctx = self.cfg, self.ctx
        unet = build_unet(cfg.model).to(ctx.device, memory_format=ctx.memory_format)
        ema = copy.deepcopy(unet).eval().requires_grad_(False)
        opt = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=0.0,
                                fused=True)
        self.train_sched = noise_scheduler(cfg.model, "ddpm")
        return TrainerState(nets={"unet": unet, "unet_ema": ema}, ema={"unet_ema": "unet"}, opts={"opt": opt},
                            scaler=ctx.scaler)

    def train_step(self, state, gen, real, labels):
        cfg, ctx = self.cfg, self.ctx
        unet, opt, sched = state.nets["unet"], state.opts["opt"], self.train_sched
        n = real.shape[0]
        # every random draw first, on the CPU generator: the same numbers on any device and
        # for any accumulate setting
        noise = torch.randn(real.shape, generator=gen)
        t = torch.randint(0, cfg.model.timesteps, (n,), generator=gen)
        drop = torch.rand(n, generator=gen) < cfg.label_dropout
        classes = class_index(labels, self.data.label_axes, drop)
        noise, t = noise.to(ctx.device), t.to(ctx.device)
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for chunk in torch.arange(n).tensor_split(cfg.accumulate):
            if not len(chunk):
                continue
            x0, eps, tc = real[chunk], noise[chunk], t[chunk]
            xt = sched.add_noise(x0, eps, tc)
            target = eps if cfg.model.prediction == "epsilon" else sched.get_velocity(x0, eps, tc)
            cls = None if classes is None else classes[chunk].to(ctx.device)
            with ctx.autocast():
                pred = unet(xt, tc, class_labels=cls).sample
            loss = F.mse_loss(pred.float(), target.float()) * (len(chunk) / n)
            ctx.scaler.scale(loss).backward()
            total += float(loss.detach())
        D_.all_reduce_grads(unet.parameters(), ctx.info)
        ctx.scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        ctx.scaler.step(opt)
        ctx.scaler.update()
        return {"loss": total}

    def render(self, state, seeds, labels):
        h, w = self.cfg.model.resolution
        unet = state.nets["unet_ema"]
        out = []
        for i in range(0, len(seeds), 16):
            s = seeds[i:i + 16]
            noise = torch.stack([torch.randn(1, h, w, generator=torch.Generator().manual_seed(x)) for x in s])
            cls = class_index({a: y[i:i + 16] for a, y in labels.items()}, self.data.label_axes)
            x = sample(unet, noise_scheduler(self.cfg.model, "ddim"), noise.to(self.ctx.device),
                       None if cls is None else cls.to(self.ctx.device), SNAPSHOT_STEPS, DEFAULT_GUIDANCE,
                       self.data.label_axes)
            out.append(x.float().clamp(-1, 1).cpu())
        return torch.cat(out)
