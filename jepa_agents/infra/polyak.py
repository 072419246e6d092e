"""Polyak averaging of target networks."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``θ⁻ <- (1 - τ)·θ⁻ + τ·θ`` for every parameter pair of two modules of the same structure."""
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"Polyak step tau must be in [0, 1], got {tau}")
    t, o = list(target.parameters()), list(online.parameters())
    if len(t) != len(o):
        raise ValueError(f"target has {len(t)} parameters, online {len(o)}")
    torch._foreach_lerp_(t, o, tau)
