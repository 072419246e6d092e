"""SAC losses (continuous and discrete) as pure functions returning ``(loss, metrics)``.

Shapes: ``B`` slices of ``T`` transitions; ``E = 2`` critic heads; ``A`` actions (discrete). Metrics are
detached scalar tensors named by their TensorBoard tags.
"""

from __future__ import annotations

import torch
from torch import Tensor


def critic_loss(q: Tensor, target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """TD loss of every critic head against one target ``y`` (the learner's ``td_target``, no gradient):
    ``L = Σ_e mean_{b,t} ½ (Q_e - y)²``.

    Args:
        q: ``[E, B, T, 1]`` Q-values of the taken actions.
        target: ``[B, T, 1]`` ``y``.
    """
    target = target.detach()
    td = q - target  # [E, B, T, 1]
    loss = 0.5 * td.square().mean(dim=(1, 2, 3)).sum()
    metrics = {
        "critic/loss": loss,
        "critic/q_mean": q.mean(),
        "critic/target_mean": target.mean(),
        "critic/td_abs": td.abs().mean(),
    }
    return loss, {k: v.detach() for k, v in metrics.items()}


def actor_loss(q_pi: Tensor, log_prob: Tensor, alpha: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """Continuous SAC actor loss ``L = mean(α·log π(a|s) - min_e Q_e(s, a))`` with ``a ~ π(·|s)`` (reparam.).

    Args:
        q_pi: ``[B, T, 1]`` ``min_e Q_e(s, a)`` (critic parameters detached).
        log_prob: ``[B, T, 1]`` ``log π(a|s)`` of the sampled actions.
        alpha: scalar temperature ``α`` (detached).
    """
    loss = (alpha * log_prob - q_pi).mean()
    metrics = {"actor/loss": loss, "actor/entropy": -log_prob.mean()}
    return loss, {k: v.detach() for k, v in metrics.items()}


def discrete_actor_loss(
    probs: Tensor, log_probs: Tensor, q: Tensor, alpha: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Discrete SAC actor loss (Christodoulou 2019):
    ``L = mean_s Σ_a π(a|s)(α log π(a|s) - min_e Q_e(s, a))``.

    Args:
        probs: ``[B, T, A]`` ``π(a|s)``.
        log_probs: ``[B, T, A]`` ``log π(a|s)``.
        q: ``[B, T, A]`` ``min_e Q_e(s, ·)`` (detached).
        alpha: scalar temperature ``α`` (detached).
    """
    loss = (probs * (alpha * log_probs - q)).sum(-1).mean()
    entropy = -(probs * log_probs).sum(-1)  # [B, T]
    metrics = {"actor/loss": loss, "actor/entropy": entropy.mean()}
    return loss, {k: v.detach() for k, v in metrics.items()}


def temperature_loss(
    log_alpha: Tensor, entropy: Tensor, target_entropy: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """Entropy temperature loss ``L = α·mean(H - H̄)`` with ``α = exp(log α)`` and ``H`` detached.

    Its gradient lowers ``α`` while the policy entropy ``H`` exceeds the target ``H̄`` and raises it
    otherwise. ``entropy``: per-state entropies (``-log π(a|s)`` of sampled actions for continuous SAC,
    the exact ``-Σ_a π log π`` for discrete SAC), any shape.
    """
    alpha = log_alpha.exp()
    loss = alpha * (entropy.detach() - target_entropy).mean()
    metrics = {"temperature/loss": loss, "temperature/alpha": alpha}
    return loss, {k: v.detach() for k, v in metrics.items()}


def soft_value(q_min: Tensor, log_prob: Tensor, alpha: Tensor, probs: Tensor | None = None) -> Tensor:
    """Soft state value ``V(s) = E_{a~π}[min_e Q_e(s, a) - α·log π(a|s)]``.

    Continuous (``probs=None``): one sampled action, ``q_min, log_prob [*, 1] -> [*, 1]``.
    Discrete: the exact expectation, ``q_min, log_prob, probs [*, A] -> [*, 1]``.
    """
    value = q_min - alpha * log_prob
    if probs is None:
        return value
    return (probs * value).sum(-1, keepdim=True)


def total_loss(losses: dict[str, Tensor], weights: dict[str, float]) -> Tensor:
    """``Σ_k w_k·L_k``; the weights must name exactly the losses given (no silently dropped term)."""
    if set(losses) != set(weights):
        raise AssertionError(f"loss weights {sorted(weights)} do not match the losses {sorted(losses)}")
    return torch.stack([weights[k] * losses[k] for k in sorted(losses)]).sum()
