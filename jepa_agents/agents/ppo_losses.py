"""PPO pieces as pure functions: GAE and the loss terms, each returning ``(loss, metrics)``.

Shapes: ``T`` agent steps of ``N`` copies for GAE; ``M`` transitions of a minibatch for the losses.
Metrics are detached scalar tensors named by their TensorBoard tags.
"""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def gae(
    reward: Tensor,
    value: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    done: Tensor,
    gamma: float,
    lam: float,
) -> tuple[Tensor, Tensor]:
    """Generalized advantage estimation (Schulman et al. 2016) over a rollout, backwards in time:

        δ_t = r_t + γ·(1 - terminated_t)·V(o'_t) - V(o_t)
        A_t = δ_t + γλ·(1 - done_t)·A_{t+1},      A_T = 0
        R_t = A_t + V(o_t)                         (the value target)

    ``o'_t`` is the observation the step led to *in the same episode*: ``o_{t+1}`` when the episode goes
    on, the final observation of a truncated episode, anything when terminated (masked out).

    Args:
        reward: ``[T, N]`` rewards ``r_t``.
        value: ``[T, N]`` ``V(o_t)`` at collection time.
        next_value: ``[T, N]`` ``V(o'_t)``.
        terminated: ``[T, N]`` bool, the episode ended in a terminal state (no bootstrap).
        done: ``[T, N]`` bool, the episode ended (terminated or truncated): the recursion is cut.
        gamma: discount ``γ``.
        lam: GAE ``λ``.

    Returns:
        ``(advantages [T, N], returns [T, N])``.
    """
    delta = reward + gamma * (~terminated).float() * next_value - value  # [T, N]
    carry = (gamma * lam) * (~done).float()  # [T, N]
    adv = torch.zeros_like(delta)
    last = torch.zeros_like(delta[0])  # [N]
    for t in range(delta.shape[0] - 1, -1, -1):
        last = delta[t] + carry[t] * last
        adv[t] = last
    return adv, adv + value


def policy_loss(
    log_prob: Tensor, old_log_prob: Tensor, advantages: Tensor, clip_ratio: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """Clipped surrogate ``L = -mean(min(ρ·A, clip(ρ, 1-ε, 1+ε)·A))`` with ``ρ = exp(log π - log π_old)``.

    Metrics: ``policy/loss``, ``policy/approx_kl`` (``mean((ρ - 1) - log ρ)``, an unbiased estimate of
    ``KL(π_old || π)``), ``policy/clip_fraction`` (share of ``|ρ - 1| > ε``).

    Args:
        log_prob: ``[M]`` ``log π(a|s)`` under the current parameters.
        old_log_prob: ``[M]`` ``log π_old(a|s)`` at collection time.
        advantages: ``[M]`` advantages (already normalized if wanted).
        clip_ratio: ``ε``.
    """
    log_ratio = log_prob - old_log_prob  # [M]
    ratio = log_ratio.exp()
    surrogate = torch.min(ratio * advantages, ratio.clamp(1.0 - clip_ratio, 1.0 + clip_ratio) * advantages)
    loss = -surrogate.mean()
    with torch.no_grad():
        metrics = {
            "policy/loss": loss.detach(),
            "policy/approx_kl": ((ratio - 1.0) - log_ratio).mean(),
            "policy/clip_fraction": ((ratio - 1.0).abs() > clip_ratio).float().mean(),
        }
    return loss, metrics


def value_loss(
    value: Tensor, old_value: Tensor, returns: Tensor, value_clip: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """Value regression ``L = mean(½(V - R)²)``; with ``value_clip = c > 0`` the pessimistic PPO2 form

        ``V_c = V_old + clip(V - V_old, -c, c)``,   ``L = mean(½·max((V - R)², (V_c - R)²))``.

    Args:
        value: ``[M]`` ``V(o)`` under the current parameters.
        old_value: ``[M]`` ``V(o)`` at collection time.
        returns: ``[M]`` targets ``R``.
        value_clip: ``c``; 0 disables clipping.
    """
    err = (value - returns).square()  # [M]
    if value_clip > 0:
        clipped = old_value + (value - old_value).clamp(-value_clip, value_clip)
        err = torch.max(err, (clipped - returns).square())
    loss = 0.5 * err.mean()
    return loss, {"value/loss": loss.detach(), "value/mean": value.detach().mean()}


def entropy_loss(entropy: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """Entropy bonus as a loss ``L = -mean(H[π(·|s)])``; ``entropy`` ``[M]``."""
    loss = -entropy.mean()
    return loss, {"policy/entropy": -loss.detach()}


@torch.no_grad()
def explained_variance(value: Tensor, returns: Tensor) -> Tensor:
    """``1 - Var(R - V) / Var(R)`` (1: perfect value function, 0: no better than a constant)."""
    var = returns.var()
    return 1.0 - (returns - value).var() / var.clamp_min(1e-8)
