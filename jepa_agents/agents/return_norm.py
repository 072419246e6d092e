"""Return normalization by a running percentile range (DreamerV3)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ReturnScale(nn.Module):
    """``S ← decay·S + (1 - decay)·(Per_high(R) - Per_low(R))`` over each batch of λ-returns; learners divide
    returns by ``max(1, S)``, so large returns are scaled down and small ones are not blown up (noise
    stays noise). ``S`` is a buffer (saved with the learner); starts at 0 (the first batch sets it)."""

    def __init__(self, decay: float = 0.99, low: float = 0.05, high: float = 0.95):
        super().__init__()
        if not 0.0 <= decay < 1.0 or not 0.0 <= low < high <= 1.0:
            raise ValueError(f"need 0 <= decay < 1 and 0 <= low < high <= 1, got {decay=}, {low=}, {high=}")
        self.decay, self.low, self.high = decay, low, high
        self.register_buffer("scale", torch.zeros(()))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, returns: Tensor) -> Tensor:
        """Fold ``returns`` (any shape) into ``S`` and return the new ``S`` (0-d)."""
        flat = returns.detach().float().reshape(-1)
        q = torch.quantile(flat, torch.tensor([self.low, self.high], device=flat.device))
        spread = q[1] - q[0]
        decay = torch.where(self.count > 0, self.decay, 0.0)  # the first batch sets S (no host read)
        self.scale.mul_(decay).add_((1 - decay) * spread)
        self.count += 1
        return self.scale.clone()
