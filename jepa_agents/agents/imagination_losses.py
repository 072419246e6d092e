"""Pure functions of actor-critic learning in imagination (Dreamer-style, on JEPA latents).

Imagined trajectories are time-major: ``H`` steps from ``N`` start latents,

    z [H+1, N, D],  actions [H, N, A],  rewards r_t = r(z_t, a_t) [H, N],
    continues c_t = P(not terminal after a_t) [H, N],  values v_t = V̄(z_t) [H+1, N].

Every function returns ``(loss, metrics)`` (metrics detached) or a tensor; shapes are checked.
"""

from __future__ import annotations

import torch
from torch import Tensor

from jepa_agents.agents.twohot import TwoHotCritic

Metrics = dict[str, Tensor]


def _check_time_major(rewards: Tensor, values: Tensor, continues: Tensor) -> None:
    h = rewards.shape[0]
    if rewards.ndim != 2 or continues.shape != rewards.shape or values.shape != (h + 1, rewards.shape[1]):
        raise ValueError(
            "need rewards [H, N], continues [H, N] and values [H+1, N], got "
            f"{tuple(rewards.shape)}, {tuple(continues.shape)}, {tuple(values.shape)}"
        )


def lambda_returns(rewards: Tensor, values: Tensor, continues: Tensor, lam: float, gamma: float) -> Tensor:
    """TD(λ) returns ``[H, N]`` of an imagined trajectory (Dreamer; bootstrapped with ``v_H`` at the end)::

        R_H = v_H
        R_t = r_t + γ c_t ((1 - λ) v_{t+1} + λ R_{t+1})

    ``λ = 0`` gives one-step TD targets ``r_t + γ c_t v_{t+1}``; ``λ = 1`` the discounted return of the
    whole trajectory plus the discounted bootstrap ``v_H``.
    """
    _check_time_major(rewards, values, continues)
    out = torch.empty_like(rewards)
    nxt = values[-1]
    for t in reversed(range(rewards.shape[0])):
        nxt = rewards[t] + gamma * continues[t] * ((1 - lam) * values[t + 1] + lam * nxt)
        out[t] = nxt
    return out


def trajectory_weights(continues: Tensor, gamma: float) -> Tensor:
    """``w_t = Π_{i<t} γ c_i`` ``[H, N]`` (``w_0 = 1``): how much step ``t`` still counts after the
    imagined episode may have ended; detached, it weighs the per-step actor and critic losses."""
    ones = torch.ones_like(continues[:1])
    return torch.cumprod(torch.cat((ones, gamma * continues[:-1]), 0), 0).detach()


def critic_loss(values: Tensor, returns: Tensor, weights: Tensor) -> tuple[Tensor, Metrics]:
    """``L_V = mean_{t,n} w_t ½ (V(z_t) - sg(R_t))²``; ``values``, ``returns``, ``weights`` ``[H, N]``."""
    if not values.shape == returns.shape == weights.shape:
        raise ValueError(
            f"shapes differ: {tuple(values.shape)}, {tuple(returns.shape)}, {tuple(weights.shape)}"
        )
    loss = (weights * 0.5 * (values - returns.detach()).square()).mean()
    return loss, {"value/loss": loss.detach(), "value/mean": values.mean().detach()}


def twohot_critic_loss(
    critic: TwoHotCritic,
    logits: Tensor,
    returns: Tensor,
    slow_values: Tensor,
    weights: Tensor,
    slow_reg: float,
) -> tuple[Tensor, Metrics]:
    """DreamerV3's critic loss, with ``CE(p, y)`` the cross-entropy of ``p`` against ``twohot(symlog(y))``::

        L_V = mean_{t,n} w_t (CE(p(z_t), R_t) + β CE(p(z_t), V̄(z_t)))

    with ``p`` the critic's distribution over symlog bins (``logits [H, N, K]``), ``R`` the λ-returns and
    ``V̄`` the slow critic's values ``[H, N]``; ``β = slow_reg`` keeps the critic near its slow copy."""
    if not returns.shape == slow_values.shape == weights.shape == logits.shape[:-1]:
        raise ValueError(
            f"shapes differ: logits {tuple(logits.shape)}, returns {tuple(returns.shape)}, "
            f"slow values {tuple(slow_values.shape)}, weights {tuple(weights.shape)}"
        )
    per_step = critic.loss(logits, returns) + slow_reg * critic.loss(logits, slow_values)  # [H, N]
    loss = (weights * per_step).mean()
    return loss, {"value/loss": loss.detach(), "value/mean": critic.value(logits).mean().detach()}


def actor_loss_backprop(
    returns: Tensor, entropy: Tensor, weights: Tensor, scale: Tensor, eta: float
) -> tuple[Tensor, Metrics]:
    """Continuous actions, gradients through the learned dynamics (Dreamer v1, TD-MPC's policy loss):
    ``L_π = -mean_{t,n} w_t (R_t / S + η H_t)``, ``R`` the λ-returns (differentiable in the actions),
    ``S = max(1, scale)`` the return range, ``H_t`` the policy entropy (estimate) ``[H, N]``."""
    norm = returns / scale.clamp_min(1.0)
    loss = -(weights * (norm + eta * entropy)).mean()
    return loss, {"policy/loss": loss.detach(), "policy/entropy": entropy.mean().detach()}


def actor_loss_reinforce(
    returns: Tensor, baseline: Tensor, log_prob: Tensor, entropy: Tensor, weights: Tensor, scale: Tensor,
    eta: float,
) -> tuple[Tensor, Metrics]:  # fmt: skip
    """Discrete actions, REINFORCE with the critic as baseline (DreamerV3):
    ``L_π = -mean_{t,n} w_t (sg((R_t - V(z_t)) / S) log π(a_t|z_t) + η H_t)``; all ``[H, N]``."""
    adv = ((returns - baseline) / scale.clamp_min(1.0)).detach()
    loss = -(weights * (adv * log_prob + eta * entropy)).mean()
    return loss, {
        "policy/loss": loss.detach(),
        "policy/entropy": entropy.mean().detach(),
        "policy/advantage": adv.mean(),
    }
