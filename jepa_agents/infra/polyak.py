"""Polyak averaging of target networks."""

from __future__ import annotations

import torch
from torch import Tensor, nn


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float, ok: Tensor | None = None) -> None:
    """``θ⁻ <- (1 - τ)·θ⁻ + τ·θ`` for every parameter pair of two modules of the same structure; with a
    0-d bool ``ok`` (a learner's device-side NaN decision) the step is ``ok·τ``: the identity where the
    update was skipped, without reading ``ok`` on the host."""
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"Polyak step tau must be in [0, 1], got {tau}")
    t, o = list(target.parameters()), list(online.parameters())
    if len(t) != len(o):
        raise ValueError(f"target has {len(t)} parameters, online {len(o)}")
    if ok is None:
        torch._foreach_lerp_(t, o, tau)
        return
    delta = torch._foreach_sub(o, t)
    torch._foreach_mul_(delta, tau * ok.float())
    torch._foreach_add_(t, delta)
