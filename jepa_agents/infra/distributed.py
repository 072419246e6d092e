"""Data-parallel training with ``torch.distributed``, launched by ``torchrun`` (or SLURM's ``srun``).

Every rank holds the same networks and takes its own part of the global batch; one update is

    local losses -> backward -> all_reduce(grad) / W -> the same optimizer step on every rank

which is what ``DistributedDataParallel`` computes. The learners call :func:`average_gradients` after
their backward pass instead of wrapping modules in DDP, because one update runs several backward passes
through shared sub-networks that different optimizers step (critic, actor, world model, temperature).

Terms that couple the samples of a batch see the global batch: SIGReg's characteristic sums and the
embedding normalization's moments are summed over ranks with :func:`global_sum`, the orthonormality and
FB losses read :func:`gather_rows`. Both are differentiable all-reduces; with the gradient average
above this gives exactly the gradient of one process on the concatenated batch: a rank's copy of a
global term ``L_g`` back-propagates ``W`` times its share, which the ``1/W`` of the average cancels.

Nothing here starts processes or moves data between machines: ``torchrun`` sets ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE`` and the rendezvous, :func:`init` joins the process group with the
backend of the device (``gloo`` on CPUs, ``nccl`` on CUDA) and a timeout, so a rank that dies or hangs
stops the others with an error instead of a hang. Without a process group every helper is the identity
and a single process runs unchanged.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
"""Environment variables ``torchrun`` sets in every worker."""
RANK_SEED_STRIDE = 1_000_003
"""Rank ``r`` seeds its environments and data sampling with ``seed + r·stride`` (rank 0: the seed)."""


class DistributedError(RuntimeError):
    """A launch that cannot run data-parallel, or a collective that failed (a rank died or hung)."""


@dataclass(frozen=True)
class Context:
    """Where this process stands: ``rank`` of ``world_size``."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """True in a worker started by ``torchrun`` (the launch variables are set)."""
    return all(v in os.environ for v in LAUNCH_VARS)


def context() -> Context:
    """The current process group's view (a single process without one)."""
    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size())
    return Context()


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def device_for(device: torch.device) -> torch.device:
    """Under ``torchrun`` a CUDA device without an index becomes ``cuda:LOCAL_RANK``."""
    if launched() and device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def init(enabled: bool, backend: str, timeout_s: float, device: torch.device) -> Context:
    """Join the process group when launched by ``torchrun`` (idempotent); a single process otherwise.

    ``backend`` ``auto`` picks ``nccl`` for CUDA devices and ``gloo`` for CPUs. A torchrun launch with
    ``enabled`` false is refused, so that W copies never train W independent runs into one directory.
    """
    if not launched():
        return Context()
    if not enabled:
        raise DistributedError(
            f"launched by torchrun with WORLD_SIZE={os.environ['WORLD_SIZE']} but distributed.enabled=false: "
            "run without torchrun for a single process, or drop distributed.enabled=false"
        )
    if dist.is_initialized():
        return context()
    chosen = ("nccl" if device.type == "cuda" else "gloo") if backend == "auto" else backend
    if chosen == "nccl" and device.type != "cuda":
        raise DistributedError(f"distributed.backend=nccl needs CUDA devices, got device={device}")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(chosen, timeout=datetime.timedelta(seconds=timeout_s))
    return context()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int) -> int:
    """The seed of this rank's own streams (environments, data sampling): ``seed`` on rank 0."""
    return seed + context().rank * RANK_SEED_STRIDE


class _AllReduceSum(torch.autograd.Function):
    """``y = Σ_ranks x``; the gradient of a sum over ranks is the sum over ranks of the gradients."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        y = x.clone()
        dist.all_reduce(y, op=dist.ReduceOp.SUM)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        g = grad.clone()
        dist.all_reduce(g, op=dist.ReduceOp.SUM)
        return g


def global_sum(x: Tensor) -> Tensor:
    """Differentiable sum over ranks (the backward pass sums the gradients as well); identity alone."""
    if world_size() == 1:
        return x
    return _AllReduceSum.apply(x)


def gather_rows(x: Tensor) -> Tensor:
    """The global batch ``[W·N, ...]`` from every rank's ``x`` ``[N, ...]`` (same ``N`` on every rank), in
    rank order, differentiable (an all-reduce of zero-padded blocks: works on every backend)."""
    w = world_size()
    if w == 1:
        return x
    blocks = [torch.zeros_like(x) for _ in range(w)]
    blocks[dist.get_rank()] = x
    return global_sum(torch.cat(blocks))


def average_gradients(params: list[nn.Parameter]) -> None:
    """``p.grad = mean over ranks of p.grad`` for the parameters that have a gradient, in one flat
    all-reduce. Every rank runs the same update code, so the same parameters have gradients everywhere
    (a missing gradient must stay missing: Adam skips such parameters, a zero gradient would move them)."""
    grads = [p.grad for p in params if p.grad is not None]
    w = world_size()
    if w == 1 or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= w
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_over_ranks(values: dict[str, Tensor]) -> dict[str, Tensor]:
    """Detached 0-d tensors averaged over ranks (one all-reduce): metrics and the NaN guard's inputs, so
    that every rank takes the same skip-or-step decision."""
    w = world_size()
    if w == 1 or not values:
        return values
    flat = torch.stack([v.detach().float().reshape(()) for v in values.values()])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    return dict(zip(values, flat / w))


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (identical starting points)."""
    if world_size() == 1:
        return
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)


def on_main(fn, *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)`` on rank 0, its result (or its exception, raised again) on every rank."""
    if world_size() == 1:
        return fn(*args, **kwargs)
    box: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            box[0] = ("ok", fn(*args, **kwargs))
        except Exception as err:  # every rank must leave with the same error, not wait forever
            box[0] = ("error", err)
    dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "error":
        raise value
    return value


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def check_world_size(saved: int | None, where: str) -> None:
    """A checkpoint written by ``saved`` ranks resumes only with as many (each rank owns its data)."""
    w = world_size()
    if (saved or 1) != w:
        raise DistributedError(
            f"{where} was written by {saved or 1} rank(s) and this launch has {w}: resume it with "
            f"torchrun --nproc_per_node={saved or 1} (each rank's replay, environments and RNG streams "
            "are part of the checkpoint; they are not re-sharded)"
        )
