"""Size and cost of a generator/discriminator pair, or of a diffusion UNet, computed
without training it: parameters, GFLOP per image (inference, and one training image) and an
estimate of the peak memory of training at a batch size.

Everything runs on the ``meta`` device (shapes only: nothing is allocated or computed), so
1024x640 at GPU widths and batch 64 takes about a second on a CPU. FLOPs are counted by
``torch.utils.flop_counter`` on the real modules (a multiply-add is 2 FLOP), with FFTs
(which it does not count; the strand input filters its noise map by FFT) at the usual
estimate of 5 N log2 N FLOP for a complex transform of N points, half that for a real one.

Training memory, how it is estimated (:func:`train_memory`): weights of G, D and G_ema,
gradients and Adam's two moments of G and D (4 bytes each), plus the activations of the
largest training phase, counted as the bytes of the tensors autograd saves for backward
(``saved_tensors_hooks``, one count per storage) in a forward shaped like the training
loop's: the D step (G's forward, whose graph the G step reuses, then D on reals with the
reconstruction and D on the detached fakes, or one D pass of both with ``d_batch``
"mixed"), lazy R1 (D forward and its create_graph gradient) and the G step (G, then D
frozen, on the fakes, or on reals and fakes when mixed). With mixed precision
the saved floating-point tensors are counted at 2 bytes. Left out: gradients of
activations alive during backward, temporaries, allocator caching and fragmentation,
cuDNN workspaces and the CUDA context (~0.5 GB). ``benchmarks/presets.py --check-memory``
compares the estimate with the peak of live tensor memory of a real CPU step.

The diffusion family's UNet (:func:`diffusion_cost`, :func:`diffusion_train_memory`): FLOPs
of one forward pass and of forward + backward counted the same way; memory as above with
the UNet and its EMA copy, AdamW, and the tensors saved in the forward of one micro-batch,
attention counted as a fused kernel keeps it (:class:`_FusedAttention`). Against real CPU
steps in fp32 (``benchmarks/presets.py --check-memory --family diffusion``) it is 4-5 %
low: 5.6 vs 5.9 MiB for a tiny UNet at 32x20 and batch 4, 163 vs 171 MiB for the default
UNet at 64x40 and batch 16.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator

import torch

from . import build_discriminator, build_generator, count_parameters
from .config import ModelConfig, as_model_config

GIB = 2 ** 30


def _fft_flop(shape: Any, dim: Any, per_point: float) -> int:
    """``per_point * N log2 N`` for each of the transforms of length ``N`` (the product of
    ``shape`` over ``dim``) that a tensor of ``shape`` holds."""
    n = math.prod(int(shape[d]) for d in dim)
    return int(per_point * (math.prod(int(s) for s in shape) // max(n, 1)) * n * math.log2(max(n, 2)))


def _fft_formulas() -> dict[Any, Callable[..., int]]:
    aten = torch.ops.aten
    return {
        aten._fft_r2c: lambda x, dim, *a, **k: _fft_flop(x, dim, 2.5),
        aten._fft_c2c: lambda x, dim, *a, **k: _fft_flop(x, dim, 5.0),
        aten._fft_c2r: lambda x, dim, *a, out_shape=None, **k: _fft_flop(out_shape, dim, 2.5),
    }


def forward_gflop(fn: Callable[[], Any]) -> float:
    """GFLOP of everything ``fn`` runs (forward and any backward inside it), FFTs included."""
    return _gflop_and_fft(fn)[0]


def _gflop_and_fft(fn: Callable[[], Any]) -> tuple[float, float]:
    """(GFLOP of everything ``fn`` runs, GFLOP of its FFTs alone)."""
    from torch.utils.flop_counter import FlopCounterMode

    formulas = _fft_formulas()
    with FlopCounterMode(display=False, custom_mapping=formulas) as counter:
        fn()
    fft = sum(v for op, v in counter.get_flop_counts().get("Global", {}).items() if op in formulas)
    return counter.get_total_flops() / 1e9, fft / 1e9


@dataclass(frozen=True)
class ModelCost:
    """Parameters and GFLOP per image of one architecture."""

    g_params: int
    d_params: int
    g_gflop_inference: float  # G forward, eval fast path (what generate runs)
    g_gflop_train_graph: float  # G forward, training graph
    d_gflop: float  # D forward
    #: one training image: one G forward, D step on a real and that fake, G step through
    #: D on the same fake; backward = 2x forward for what is differentiated
    train_gflop: float
    #: of ``g_gflop_train_graph``: the FFTs, which filter fixed noise without gradient (the
    #: strand input's dashes), so ``train_gflop`` counts them once, with no backward
    g_gflop_fft: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _meta_pair(cfg: ModelConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    with torch.device("meta"):
        return build_generator(cfg), build_discriminator(cfg)


def _inputs(cfg: ModelConfig, batch: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    # labels stay on the CPU: the models validate their range on the host
    labels = {a: torch.zeros(batch, dtype=torch.long) for a in cfg.condition}
    # D sees the content (ModelConfig.content_width), as in training
    return (torch.zeros(batch, cfg.z_dim, device="meta"), torch.zeros(batch, 1, *cfg.content_resolution, device="meta"),
            labels)


def model_cost(model_config: "dict[str, Any] | ModelConfig", d_batch: str = "split") -> ModelCost:
    """Parameters and per-image GFLOP of ``model_config`` (counted at batch 2: train-mode
    BatchNorm needs more than one value per channel), trained with ``d_batch``
    (``TrainConfig.d_batch``: "mixed" also runs D on the reals in the G step)."""
    cfg = as_model_config(model_config)
    G, D = _meta_pair(cfg)
    z, x, labels = _inputs(cfg, 2)
    with torch.no_grad():
        g_train, g_fft = (v / 2 for v in _gflop_and_fft(lambda: G.train()(z, labels)))
        g_eval = forward_gflop(lambda: G.eval()(z, labels)) / 2
        d_fwd = forward_gflop(lambda: D.train()(x, labels)) / 2
    # G forward + its backward (3x, but once for its FFTs of fixed noise), D on a real and a
    # fake with backward (2 x 3x), D forward and the backward to its input in the G step
    # (~3x; on a real and a fake when mixed)
    train = (g_train - g_fft) * 3 + g_fft + 2 * d_fwd * 3 + d_fwd * 3 * (2 if d_batch == "mixed" else 1)
    return ModelCost(count_parameters(G), count_parameters(D), g_eval, g_train, d_fwd, train, g_fft)


@dataclass(frozen=True)
class TrainMemory:
    """Estimated peak memory of training one process at ``batch`` (bytes)."""

    batch: int
    amp: bool  # activations counted at 2 bytes (bf16/fp16 autocast)
    weights: int  # G, D and G_ema
    optimizer: int  # gradients and Adam moments of G and D
    activations: int  # saved for backward in the largest phase
    peak_phase: str  # "D step", "R1" or "G step"

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.activations

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total, "total_gib": round(self.total / GIB, 2)}


def _saved_bytes(fn: Callable[[], Any], skip: set[int], half: bool) -> int:
    """Bytes of the storages autograd saves while ``fn`` runs (each storage once; ``skip``
    holds the parameters' storages, counted apart)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s._cdata not in skip:
            seen[s._cdata] = s.nbytes() // 2 if half and t.is_floating_point() and t.element_size() == 4 else s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def train_memory(model_config: "dict[str, Any] | ModelConfig", batch: int, amp: bool = False,
                 recon: bool = True, r1: bool = True, d_batch: str = "split") -> TrainMemory:
    """Estimate of the peak training memory at ``batch`` images per process, the way the
    module docstring says. ``amp``: mixed precision on; ``recon``/``r1``: the run uses the
    reconstruction loss / R1 (fastgan does, dcgan does not); ``d_batch``: as in
    :func:`model_cost`."""
    cfg = as_model_config(model_config)
    G, D = _meta_pair(cfg)
    G.train()
    D.train()
    z, real, labels = _inputs(cfg, batch)
    gen = torch.Generator().manual_seed(0)
    mixed = d_batch == "mixed"
    labels2 = {a: torch.cat([y, y]) for a, y in labels.items()}

    def d_step() -> None:
        # G's graph is kept through the D step: the G step reuses these fakes
        G.requires_grad_(True)
        D.requires_grad_(True)
        fake = G(z, labels, frame=False)
        both = torch.cat([real, fake.detach()])
        if mixed:
            D(both, labels2, recon_n=batch if recon else 0, gen=gen)
        else:
            D(both[:batch], labels, recon_n=batch if recon else 0, gen=gen)
            D(both[batch:], labels)

    def r1_step() -> None:
        G.requires_grad_(True)
        D.requires_grad_(True)
        G(z, labels, frame=False)  # the D step's G graph is still alive
        x = real.detach().requires_grad_(True)
        out, _ = D(x, labels)
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        grad.square().sum()

    def g_step() -> None:  # the D step's G graph, then D frozen
        G.requires_grad_(True)
        D.requires_grad_(False)
        fake = G(z, labels, frame=False)
        D(torch.cat([real, fake]), labels2) if mixed else D(fake, labels)

    phases = {"D step": d_step, **({"R1": r1_step} if r1 else {}), "G step": g_step}
    params = [p for m in (G, D) for p in m.parameters()]
    skip = {p.untyped_storage()._cdata for p in params}
    saved = {name: _saved_bytes(fn, skip, amp) for name, fn in phases.items()}
    peak = max(saved, key=saved.__getitem__)
    n_g = sum(p.numel() for p in G.parameters()) + sum(b.numel() for b in G.buffers() if b.is_floating_point())
    n_d = sum(p.numel() for p in D.parameters()) + sum(b.numel() for b in D.buffers() if b.is_floating_point())
    n_params = sum(p.numel() for p in params)
    return TrainMemory(batch=batch, amp=amp, weights=4 * (2 * n_g + n_d), optimizer=4 * 3 * n_params,
                       activations=saved[peak], peak_phase=peak)


# -- the diffusion family's UNet ---------------------------------------------------------
@dataclass(frozen=True)
class DiffusionCost:
    """Parameters and GFLOP per image of a denoising UNet (:func:`diffusion_cost`)."""

    params: int
    unet_gflop: float  # one UNet forward pass
    #: one training image: the UNet's forward and the backward of the loss, counted (~3x)
    train_gflop: float
    #: UNet passes per sampler step at the pipeline's default guidance (1.5): 2 when the
    #: model is conditioned (conditional and unconditional pass), else 1
    passes_per_step: int
    sample_step_gflop: float  # one sampler step (the scheduler's own arithmetic is negligible)
    steps: int
    sample_gflop: float  # one generated image: ``steps`` sampler steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _meta_unet(cfg: Any, batch: int) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...], dict[str, Any]]:
    from .diffusion import build_unet

    with torch.device("meta"):
        unet = build_unet(cfg).train()
    x = torch.zeros(batch, 1, *cfg.resolution, device="meta")
    t = torch.zeros(batch, dtype=torch.long, device="meta")
    classes = torch.zeros(batch, dtype=torch.long, device="meta") if cfg.condition else None
    return unet, (x, t), {"class_labels": classes}


def diffusion_cost(cfg: Any, steps: int | None = None) -> DiffusionCost:
    """Parameters and per-image GFLOP of the UNet of ``cfg`` (a ``DiffusionConfig``),
    counted on the meta device by torch's FLOP counter (2 per multiply-add; convolutions,
    matrix products and attention, not norms and activations). ``steps``: the sampler's
    (default: the pipeline's, 25)."""
    from .diffusion import SAMPLE_STEPS

    steps = SAMPLE_STEPS if steps is None else steps
    unet, args, kw = _meta_unet(cfg, 1)
    with torch.no_grad():
        fwd = forward_gflop(lambda: unet(*args, **kw))
    train = forward_gflop(lambda: unet(*args, **kw).sample.float().square().mean().backward())
    passes = 2 if cfg.condition else 1
    return DiffusionCost(count_parameters(unet), fwd, train, passes, passes * fwd, steps, steps * passes * fwd)


class _FusedAttention(torch.autograd.Function):
    """What a fused attention kernel keeps for backward (torch's flash kernel on the CPU,
    flash / memory-efficient on CUDA): q, k, v, the output and one log-sum-exp per query
    row. On the meta device ``scaled_dot_product_attention`` runs the math fallback, which
    would save the N x N weights: at 64x40 tokens ~200 MB per image and layer."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = q.new_empty(*q.shape[:-1], v.shape[-1])
        ctx.save_for_backward(q, k, v, out, q.new_empty(q.shape[:-1], dtype=torch.float32))
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        q, k, v = ctx.saved_tensors[:3]
        return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


@contextlib.contextmanager
def _fused_attention() -> Iterator[None]:
    # diffusers' attention processor calls F.scaled_dot_product_attention at run time
    F = torch.nn.functional
    real = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = lambda q, k, v, *a, **kw: _FusedAttention.apply(q, k, v)
    try:
        yield
    finally:
        F.scaled_dot_product_attention = real


def diffusion_train_memory(cfg: Any, batch: int, amp: bool = False, accumulate: int = 1) -> TrainMemory:
    """Estimate of the peak memory of one diffusion training process at ``batch`` images in
    ``accumulate`` micro-batches: weights of the UNet and its EMA copy, gradients and
    AdamW's two moments (4 bytes each), and the tensors autograd saves in the forward of the
    largest micro-batch (``ceil(batch / accumulate)`` images; fused attention as in
    :class:`_FusedAttention`; floating-point tensors at 2 bytes with ``amp``). Left out, as
    for the GANs: gradients of activations alive during backward, temporaries, allocator
    caching, cuDNN workspaces, the CUDA context. ``benchmarks/presets.py --check-memory``
    compares it with real CPU steps."""
    micro = -(-batch // accumulate)
    unet, args, kw = _meta_unet(cfg, micro)
    skip = {p.untyped_storage()._cdata for p in unet.parameters()}
    with _fused_attention():
        saved = _saved_bytes(lambda: unet(*args, **kw), skip, amp)
    n = sum(p.numel() for p in unet.parameters())
    return TrainMemory(batch=batch, amp=amp, weights=4 * 2 * n, optimizer=4 * 3 * n, activations=saved,
                       peak_phase=f"UNet forward of {micro} images")
