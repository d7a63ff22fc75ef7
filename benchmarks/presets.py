"""The README's tables of training presets: widths, batch, amp, parameters, GFLOP per image
(inference and training) and estimated training memory per resolution, from
:mod:`mammosynth.models.cost` (what ``mammosynth train --dry-run`` prints), fastgan and
diffusion conditioned on density, finding and view. Memory is at the preset's batch, with
mixed precision for the GPU presets (``amp auto`` on CUDA), fp32 for cpu.

``--check-memory`` also runs real training-shaped steps on this CPU at small sizes (fastgan:
D step with reconstruction, R1, G step, Adam; diffusion: noise, UNet forward, loss,
backward, clipping, AdamW) and compares the estimate with the measured peak of live tensor
memory (every storage an op creates, until it is freed). Usage::

    .venv/bin/python benchmarks/presets.py [--check-memory]
"""
from __future__ import annotations

import argparse
import copy
import weakref

import torch

from mammosynth.models import ModelConfig, build_discriminator, build_generator
from mammosynth.models.cost import GIB, diffusion_cost, diffusion_train_memory, model_cost, train_memory
from mammosynth.models.diffusion import DiffusionConfig, build_unet, class_index, noise_scheduler
from mammosynth.training.presets import PRESETS, preset_config

CONDITION = ("density", "finding", "view")
#: the sizes each preset is meant for, and one past them where that shows the limit
RESOLUTIONS = {"cpu": ((128, 128), (256, 160)), "gpu": ((256, 160), (512, 320), (1024, 640)),
               "gpu-large": ((512, 320), (1024, 640))}
DIFFUSION_RESOLUTIONS = {"cpu": ((64, 40), (128, 80), (256, 160)), "gpu": ((256, 160), (512, 320)),
                         "gpu-large": ((512, 320), (1024, 640))}


def num(v: float) -> str:
    return f"{v:.2g}" if v < 1 else f"{v:.3g}" if v < 100 else f"{v:,.0f}"


def table() -> list[str]:
    rows = ["| preset | G / D / max channels | batch | amp | resolution | G + D params | GFLOP/img inference "
            "| GFLOP/img training | training memory (estimate) |", "|---|---|---|---|---|---|---|---|---|"]
    for name in PRESETS:
        for res in RESOLUTIONS[name]:
            cfg = preset_config(name, model={"resolution": res, "condition": CONDITION}, kimg=1).resolved()
            m = cfg.model
            c = model_cost(m, cfg.d_batch)
            amp = name != "cpu"  # amp auto: bf16 on a GPU; the cpu rows in fp32 (a CPU without AMX-BF16 units)
            mem = train_memory(m, cfg.batch, amp=amp, d_batch=cfg.d_batch)
            rows.append(f"| {name} | {m.g_channels} / {m.d_channels} / {m.max_channels} | {cfg.batch} | {cfg.amp} | "
                        f"{res[0]}×{res[1]} | {c.g_params / 1e6:.1f} M + {c.d_params / 1e6:.1f} M | "
                        f"{num(c.g_gflop_inference)} | {num(c.train_gflop)} | "
                        f"{num(mem.total / GIB)} GiB{' (bf16)' if amp else ''} |")
    return rows


def diffusion_table() -> list[str]:
    rows = ["| preset | UNet channels | layers / attention levels | batch | resolution | UNet params "
            "| GFLOP/img training | GFLOP/img sampling (25 guided steps) | training memory (estimate) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name in PRESETS:
        for res in DIFFUSION_RESOLUTIONS[name]:
            cfg = preset_config(name, model={"family": "diffusion", "resolution": res, "condition": CONDITION},
                                kimg=1).resolved()
            m = cfg.model
            c = diffusion_cost(m)
            amp = name != "cpu"
            mem = diffusion_train_memory(m, cfg.batch, amp=amp)
            rows.append(f"| {name} | {', '.join(map(str, m.channels))} | {m.layers_per_block} / {m.attention_levels} "
                        f"| {cfg.batch} | {res[0]}×{res[1]} | {c.params / 1e6:.1f} M | {num(c.train_gflop)} | "
                        f"{num(c.sample_gflop)} | {num(mem.total / GIB)} GiB{' (bf16)' if amp else ''} |")
    return rows


class LiveTensors(torch.utils._python_dispatch.TorchDispatchMode):
    """Peak bytes of live tensor storages: each new storage an op returns counts until
    it is garbage-collected (weakref), on top of ``base``."""

    def __init__(self, base: int) -> None:
        super().__init__()
        self.live: dict[int, weakref.ref] = {}
        self.now = self.peak = base

    def _free(self, key: int, n: int) -> None:
        self.live.pop(key, None)
        self.now -= n

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.untyped_storage()._cdata not in self.live:
                s = t.untyped_storage()
                key, n = s._cdata, s.nbytes()
                self.now += n
                self.peak = max(self.peak, self.now)
                self.live[key] = weakref.ref(s, lambda _, key=key, n=n: self._free(key, n))
        return out


def measured_peak(cfg: ModelConfig, b: int) -> int:
    """Peak live tensor bytes of two training-shaped steps in fp32 on the CPU."""
    G, D = build_generator(cfg).train(), build_discriminator(cfg).train()
    G_ema = copy.deepcopy(G).requires_grad_(False)
    opt_G, opt_D = torch.optim.Adam(G.parameters(), fused=True), torch.optim.Adam(D.parameters(), fused=True)
    labels = {a: torch.zeros(b, dtype=torch.long) for a in cfg.condition}
    gen = torch.Generator().manual_seed(0)
    base = sum(t.untyped_storage().nbytes() for m in (G, D, G_ema) for t in [*m.parameters(), *m.buffers()])
    with LiveTensors(base) as live:
        for _ in range(2):  # the second step has Adam's moments in place
            real = torch.rand(b, 1, *cfg.resolution) * 2 - 1
            G.requires_grad_(True)
            D.requires_grad_(True)
            fake_g = G(torch.randn(b, cfg.z_dim), labels)  # as the loop: its graph serves the G step
            both = torch.cat([real, fake_g.detach()])
            # fastgan's default d_batch "mixed": one D pass of reals and fakes, here and in the G step
            labels2 = {a: torch.cat([y, y]) for a, y in labels.items()}
            logits, rec = D(both, labels2, recon_n=b, gen=gen)
            logits_r, logits_f = logits[:b], logits[b:]
            opt_D.zero_grad(set_to_none=True)
            (torch.relu(1 - logits_r).mean() + torch.relu(1 + logits_f).mean() + rec).backward()
            opt_D.step()
            x = real.requires_grad_(True)
            (grad,) = torch.autograd.grad(D(x, labels)[0].sum(), x, create_graph=True)
            opt_D.zero_grad(set_to_none=True)
            grad.square().sum().backward()
            opt_D.step()
            G.requires_grad_(True)
            D.requires_grad_(False)
            opt_G.zero_grad(set_to_none=True)
            (-D(torch.cat([real.detach(), fake_g]), labels2)[0][b:].mean()).backward()
            opt_G.step()
    return live.peak


def measured_peak_diffusion(cfg: DiffusionConfig, b: int) -> int:
    """Peak live tensor bytes of two diffusion training steps in fp32 on the CPU (the steps
    of ``training.diffusion.DiffusionFamily.train_step``, one micro-batch)."""
    unet = build_unet(cfg).train()
    ema = copy.deepcopy(unet).requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=2e-4, weight_decay=0.0)
    sched = noise_scheduler(cfg, "ddpm")
    labels = {a: torch.zeros(b, dtype=torch.long) for a in cfg.condition}
    base = sum(t.untyped_storage().nbytes() for m in (unet, ema) for t in [*m.parameters(), *m.buffers()])
    with LiveTensors(base) as live:
        for _ in range(2):
            x0 = torch.rand(b, 1, *cfg.resolution) * 2 - 1
            noise, t = torch.randn_like(x0), torch.randint(0, cfg.timesteps, (b,))
            xt = sched.add_noise(x0, noise, t)
            target = sched.get_velocity(x0, noise, t)
            opt.zero_grad(set_to_none=True)
            pred = unet(xt, t, class_labels=class_index(labels, cfg.label_axes)).sample
            torch.nn.functional.mse_loss(pred, target).backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            opt.step()
    return live.peak


def check_memory(families: tuple[str, ...] = ("fastgan", "diffusion")) -> list[str]:
    out = []
    for widths, res, b in (((4, 64), (256, 160), 8), ((16, 256), (128, 80), 8), ((16, 256), (256, 160), 8),
                           ((32, 256), (128, 80), 16)):
        if "fastgan" not in families:
            break
        cfg = ModelConfig.for_family("fastgan", resolution=res, condition=CONDITION, g_channels=widths[0],
                                     d_channels=widths[0], max_channels=widths[1])
        est, real = train_memory(cfg, b, d_batch="mixed").total, measured_peak(cfg, b)
        out.append(f"fastgan {res[0]}x{res[1]} channels {widths[0]}/{widths[1]} batch {b}: estimate "
                   f"{est / 2 ** 20:.0f} MiB, measured peak {real / 2 ** 20:.0f} MiB (estimate/measured {est / real:.2f})")
    # a tiny UNet and the cpu preset's (the defaults) at their sizes and batch
    for channels, res, b in (((8, 16, 16), (32, 20), 4), ((16, 32, 64, 64), (64, 40), 16),
                             ((16, 32, 64, 64), (128, 80), 16)):
        if "diffusion" not in families:
            break
        cfg = DiffusionConfig(resolution=res, condition=CONDITION, channels=channels, norm_groups=4 if channels[0] < 16
                              else 8)
        est, real = diffusion_train_memory(cfg, b).total, measured_peak_diffusion(cfg, b)
        out.append(f"diffusion {res[0]}x{res[1]} channels {','.join(map(str, channels))} batch {b}: estimate "
                   f"{est / 2 ** 20:.0f} MiB, measured peak {real / 2 ** 20:.0f} MiB (estimate/measured {est / real:.2f})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check-memory", action="store_true", help="compare the estimate with real CPU steps (~1 min)")
    ap.add_argument("--family", choices=("fastgan", "diffusion"), default=None,
                    help="check the memory estimate of this family only (default: both)")
    args = ap.parse_args(argv)
    print("\n".join(table()))
    print()
    print("\n".join(diffusion_table()))
    if args.check_memory:
        torch.set_num_threads(1)
        print("\n".join(check_memory((args.family,) if args.family else ("fastgan", "diffusion"))))
    print(f"torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
