"""How a learner's gradient step runs: eagerly, under ``torch.compile``, or captured as a CUDA graph.

Every learner writes its gradient step as one function of fixed-shape tensors that returns tensors (no
host synchronisation, no Python branch on data); :func:`compile_step` wraps it for the mode that
:func:`resolve_compile` picked from the ``compile`` setting:

* ``none``: the function itself (eager PyTorch);
* ``compile``: ``torch.compile`` of the function (graphs between the backward call and the optimizer
  step; CPU and CUDA);
* ``cudagraph`` (CUDA only): the compiled function captured whole, forward, backward, optimizer step and
  target updates, as one CUDA graph (``tensordict.nn.CudaGraphModule``, as LeanRL), replayed every step;
* ``auto``: ``cudagraph`` on CUDA, ``none`` on the CPU, where the measured compiled step is not faster
  than the eager one on the default learner (``jepa-agents bench update``; docs/compile.md).

Under ``torchrun`` (more than one rank) every mode runs eagerly: the gradient all-reduce of a step is
a collective that neither the compiler nor a captured graph may reorder across ranks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

COMPILE_MODES = ("auto", "none", "compile", "cudagraph")
"""Choices of the ``compile`` setting."""


def resolve_compile(asked: str, device: torch.device, world_size: int = 1) -> tuple[str, str]:
    """``(mode, why)``: the mode a run uses for ``compile=asked`` on ``device`` with ``world_size`` ranks."""
    if asked not in COMPILE_MODES:
        raise ValueError(f"compile={asked!r}; choose one of {COMPILE_MODES}")
    if world_size > 1 and asked != "none":
        return "none", f"{asked} asked; eager under torchrun ({world_size} ranks: gradient all-reduce)"
    if asked == "cudagraph" and device.type != "cuda":
        raise ValueError(f"compile=cudagraph needs a CUDA device, got {device}; use compile=compile or none")
    if asked != "auto":
        return asked, "as configured"
    if device.type == "cuda":
        return "cudagraph", "auto on cuda"
    return "none", f"auto on {device.type}: the compiled step is not faster there (docs/compile.md)"


def resolve_compile_setting(cfg, device: torch.device):
    """``(cfg, line)``: the run config with ``compile`` resolved for ``device`` and this process's number of
    ranks (a runtime setting: a resumed run resolves it again for the machine it runs on) and the line
    that says what was chosen and why."""
    from omegaconf import OmegaConf

    from jepa_agents.infra.distributed import world_size

    mode, why = resolve_compile(cfg.compile, device, world_size())
    if mode != cfg.compile:
        cfg = OmegaConf.merge(cfg, {"compile": mode})
    return cfg, f"compile: {mode} ({why})"


def compile_step(fn: Callable, mode: str) -> Callable:
    """``fn`` run in ``mode`` (``none``, ``compile`` or ``cudagraph``; :func:`resolve_compile`)."""
    if mode == "none":
        return fn
    compiled = torch.compile(fn, dynamic=False)
    if mode == "compile":
        return compiled
    if mode == "cudagraph":
        from tensordict.nn import CudaGraphModule
        from torch.utils._pytree import tree_map

        graph = CudaGraphModule(compiled, warmup=3)

        def replay(*args):  # a graph's outputs are its static buffers: the next replay overwrites them
            return tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, graph(*args))

        return replay
    raise ValueError(f"compile mode {mode!r}; choose one of {COMPILE_MODES[1:]}")
