"""The README's table of training presets: widths, batch, amp, parameters, GFLOP per image
(inference and training) and estimated training memory per resolution, from
:mod:`mammosynth.models.cost` (what ``mammosynth train --dry-run`` prints), fastgan
conditioned on density, finding and view. Memory is at the preset's batch, with mixed
precision for the GPU presets (``amp auto`` on CUDA), fp32 for cpu.

``--check-memory`` also runs real training-shaped steps (D step with reconstruction, R1,
G step, Adam) on this CPU at small sizes and compares the estimate with the measured peak
of live tensor memory (every storage an op creates, until it is freed). Usage::

    .venv/bin/python benchmarks/presets.py [--check-memory]
"""
from __future__ import annotations

import argparse
import copy
import weakref

import torch

from mammosynth.models import ModelConfig, build_discriminator, build_generator
from mammosynth.models.cost import GIB, model_cost, train_memory
from mammosynth.training.presets import PRESETS, preset_config

CONDITION = ("density", "finding", "view")
#: the sizes each preset is meant for, and one past them where that shows the limit
RESOLUTIONS = {"cpu": ((128, 128), (256, 160)), "gpu": ((256, 160), (512, 320), (1024, 640)),
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
            c = model_cost(m)
            amp = name != "cpu"  # amp auto: bf16 on a GPU, none on a CPU
            mem = train_memory(m, cfg.batch, amp=amp)
            rows.append(f"| {name} | {m.g_channels} / {m.d_channels} / {m.max_channels} | {cfg.batch} | {cfg.amp} | "
                        f"{res[0]}×{res[1]} | {c.g_params / 1e6:.1f} M + {c.d_params / 1e6:.1f} M | "
                        f"{num(c.g_gflop_inference)} | {num(c.train_gflop)} | "
                        f"{num(mem.total / GIB)} GiB{' (bf16)' if amp else ''} |")
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
    opt_G, opt_D = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    labels = {a: torch.zeros(b, dtype=torch.long) for a in cfg.condition}
    gen = torch.Generator().manual_seed(0)
    base = sum(t.untyped_storage().nbytes() for m in (G, D, G_ema) for t in [*m.parameters(), *m.buffers()])
    with LiveTensors(base) as live:
        for _ in range(2):  # the second step has Adam's moments in place
            real = torch.rand(b, 1, *cfg.resolution) * 2 - 1
            G.requires_grad_(False)
            D.requires_grad_(True)
            with torch.no_grad():
                fake = G(torch.randn(b, cfg.z_dim), labels)
            both = torch.cat([real, fake])
            logits_r, rec = D(both[:b], labels, recon_n=b, gen=gen)
            logits_f, _ = D(both[b:], labels)
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
            (-D(G(torch.randn(b, cfg.z_dim), labels), labels)[0].mean()).backward()
            opt_G.step()
    return live.peak


def check_memory() -> list[str]:
    out = []
    for widths, res, b in (((4, 64), (256, 160), 8), ((16, 256), (128, 80), 8), ((16, 256), (256, 160), 8),
                           ((32, 256), (128, 80), 16)):
        cfg = ModelConfig.for_family("fastgan", resolution=res, condition=CONDITION, g_channels=widths[0],
                                     d_channels=widths[0], max_channels=widths[1])
        est, real = train_memory(cfg, b).total, measured_peak(cfg, b)
        out.append(f"fastgan {res[0]}x{res[1]} channels {widths[0]}/{widths[1]} batch {b}: estimate "
                   f"{est / 2 ** 20:.0f} MiB, measured peak {real / 2 ** 20:.0f} MiB (estimate/measured {est / real:.2f})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check-memory", action="store_true", help="compare the estimate with real CPU steps (~1 min)")
    args = ap.parse_args(argv)
    print("\n".join(table()))
    if args.check_memory:
        torch.set_num_threads(1)
        print("\n".join(check_memory()))
    print(f"torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
