"""Multi-process training on torch.distributed (``torchrun`` / ``accelerate launch``).

The launcher sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and the rendezvous
address); :func:`init` joins the group (NCCL on CUDA, gloo on CPU). Gradients are
averaged by an explicit all-reduce after each backward (as StyleGAN2-ADA does: it
works with lazy R1's double backward), and BatchNorm running statistics are averaged
after each step, so all replicas stay identical. Rank 0 alone logs and checkpoints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    #: :func:`init` joined the process group (so :func:`shutdown` leaves it); False when
    #: the caller had joined it already (theirs to leave)
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def uses_cuda(device: str) -> bool:
    """Whether a :attr:`TrainConfig.device` setting trains on CUDA."""
    return device == "cuda" or (device == "auto" and torch.cuda.is_available())


def init(device: str = "auto") -> DistInfo:
    """Join the process group when launched with WORLD_SIZE > 1; pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = uses_cuda(device)
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    dev = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    owns = world > 1 and not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local_rank, dev, owns_group=owns)


def _average(tensors: list[torch.Tensor], info: DistInfo) -> None:
    """Replace each tensor by its mean over ranks (one flat all-reduce)."""
    if not info.enabled or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= info.world
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def all_reduce_grads(params: Iterable[nn.Parameter], info: DistInfo) -> None:
    """Average the gradients of ``params`` over ranks (one flat all-reduce)."""
    if info.enabled:
        _average([p.grad for p in params if p.grad is not None], info)


def sync_buffers(module: nn.Module, info: DistInfo) -> None:
    """Average floating-point buffers (BatchNorm running stats) over ranks."""
    if info.enabled:
        _average([b for b in module.buffers() if b.is_floating_point()], info)


def broadcast_module(module: nn.Module, info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not info.enabled:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def any_flag(flag: bool, info: DistInfo) -> bool:
    """True on every rank when ``flag`` is true on any rank."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def all_sum(values: list[float], info: DistInfo) -> list[float]:
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj`` (on every rank)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def replicas_identical(modules: list[nn.Module], info: DistInfo) -> bool:
    """True when every rank holds bit-identical parameters and buffers (SHA-256 compared)."""
    import hashlib

    h = hashlib.sha256()
    for m in modules:
        for t in list(m.parameters()) + list(m.buffers()):
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    digests = gather_objects(h.hexdigest(), info)
    return len(set(digests)) == 1


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group :func:`init` joined. A gloo group left to interpreter exit
    can abort the process there ("terminate called without an active exception", SIGABRT)
    after a run that finished: its worker threads are torn down unjoined."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()
