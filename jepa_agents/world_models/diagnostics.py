"""Collapse diagnostics of embedding batches (no gradients)."""

from __future__ import annotations

import torch
from torch import Tensor

from jepa_agents.regularizers.sigreg import epps_pulley_weights, random_directions, sliced_epps_pulley


@torch.no_grad()
def effective_rank(z: Tensor) -> Tensor:
    """``exp(H(p))`` with ``p = σ / Σσ`` the normalized singular values of the centered ``z [N, D]``.

    Between 1 (collapse to a line) and ``min(N, D)``; 0 for a batch of identical rows.
    """
    zc = z.float() - z.float().mean(0)
    s = torch.linalg.svdvals(zc)
    total = s.sum()
    if total <= 0:
        return z.new_zeros((), dtype=torch.float32)
    p = s / total
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())


@torch.no_grad()
def sigreg_statistic(z: Tensor, num_slices: int = 64, seed: int = 12345) -> Tensor:
    """SIGReg statistic of ``z [N, D]`` on ``num_slices`` fixed directions (the same every call, so values
    are comparable across training steps and regularizers; about 1.05 for a standard Gaussian batch).
    Global over ranks under ``torch.distributed``, like :class:`SIGReg`."""
    t, phi, weights = (x.to(z.device) for x in epps_pulley_weights(17, 3.0))
    a = random_directions(z.shape[-1], num_slices, seed, z.device)
    return sliced_epps_pulley(z.float() @ a, t, phi, weights).mean()


@torch.no_grad()
def collapse_metrics(z: Tensor, prefix: str = "wm/") -> dict[str, Tensor]:
    """Diagnostics of ``z [N, D]``: ``{prefix}sigreg``, ``{prefix}effective_rank``, ``{prefix}std_mean``,
    ``{prefix}std_min`` (mean and smallest per-dimension std)."""
    std = z.float().std(0) if z.shape[0] > 1 else z.new_zeros(z.shape[-1], dtype=torch.float32)
    return {
        f"{prefix}sigreg": sigreg_statistic(z),
        f"{prefix}effective_rank": effective_rank(z),
        f"{prefix}std_mean": std.mean(),
        f"{prefix}std_min": std.min(),
    }
