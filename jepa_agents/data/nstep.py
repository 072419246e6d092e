"""n-step returns within a slice of consecutive steps."""

from __future__ import annotations

import torch
from torch import Tensor


def nstep_returns(reward: Tensor, terminal: Tensor, gamma: float, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """n-step targets for every transition of ``[B, L]`` slices of consecutive steps of one episode.

    For position ``k < L - 1`` (transition ``o_k -> o_{k+1}``) with ``m_k = min(n, L - 1 - k)`` and the
    window cut after the first terminal step ``j`` (``terminal_j``), with ``m`` the rewards summed:

        ``R_k = Σ_{j=0}^{m-1} γ^j r_{k+j}``,   ``discount_k = γ^m · (1 - terminal within the window)``,
        ``index_k = k + m`` (position of the bootstrap observation ``o_{k+m}`` in the slice).

    The target is ``R_k + discount_k · V(o_{index_k})``. A truncated episode ends with its final
    observation as the slice's last row, so it bootstraps from that state; a terminated one does not.
    Windows are also cut at the slice end (``L - 1``), so late positions use fewer than ``n`` rewards.
    Position ``L - 1`` has no transition: ``R = 0``, ``discount = 0``, ``index = L - 1``.

    Args:
        reward: ``[B, L, 1]`` float, ``r_k`` of the transition leaving row ``k``.
        terminal: ``[B, L, 1]`` bool, the transition leaving row ``k`` ends the bootstrap (terminated).
        gamma: discount ``γ``.
        n: maximum number of rewards ``n >= 1``.

    Returns:
        ``(R [B, L, 1] float, discount [B, L, 1] float, index [B, L] long)``.
    """
    if n < 1:
        raise ValueError(f"n-step must be >= 1, got {n}")
    b, length = reward.shape[:2]
    ret = torch.zeros_like(reward, dtype=torch.float32)  # [B, L, 1]
    ended = torch.zeros_like(reward, dtype=torch.bool)  # [B, L, 1] a terminal step was summed
    steps = torch.zeros_like(reward, dtype=torch.long)  # [B, L, 1] rewards summed so far (m)
    positions = torch.arange(length, device=reward.device).view(1, length, 1)  # [1, L, 1]
    for j in range(n):
        src = positions + j  # [1, L, 1] row of the j-th reward of each window
        inside = (src < length - 1).expand(b, length, 1)  # [B, L, 1]
        src = src.clamp(max=length - 1).expand(b, length, 1)
        take = inside & ~ended
        ret = ret + torch.where(take, gamma**j * reward.gather(1, src).float(), 0.0)
        steps = steps + take.long()
        ended = ended | (take & terminal.gather(1, src))
    discount = torch.where(ended | (steps == 0), 0.0, torch.pow(torch.full_like(ret, gamma), steps.float()))
    index = (positions + steps).squeeze(-1)  # [B, L]
    return ret, discount, index
