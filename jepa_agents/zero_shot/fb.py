"""Forward-backward (FB) representations (Touati & Ollivier 2021; Meta Motivo): the zero-shot baseline.

Networks (``d`` = ``z_dim``): a forward-side encoder ``e(s)`` ``[B, d_e]`` (MLP on states, CNN + MLP on
pixels), the forward map ``F(e(s), a, z)`` ``[K, B, d]`` (ensemble), the backward map ``B(s')`` ``[B, d]`` on
the sphere of radius ``√d``, and the policy ``π(e(s), z)``. They are trained so that the successor measure
of ``π_z`` factorizes, ``M^{π_z}(s, a, ds') ≈ F(s, a, z)ᵀ B(s') ρ(ds')`` (``ρ`` the data distribution).

Zero-shot inference: ``Q_r(s, a) = F(s, a, z)ᵀ E_ρ[B(s') r(s')]``, so ``z = √d · w / |w|`` with
``w = (1/N) Σ_i r_i B(s'_i)`` (:meth:`FBModel.infer_z_from_rewards`); a goal ``g`` gives ``z = B(g)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from jepa_agents.zero_shot.td_jepa import (
    Actor,
    Encoder,
    Predictor,
    ZeroShotModel,
)


class FBModel(ZeroShotModel):
    """Networks and zero-shot inference of FB. ``obs`` is one observation tensor of shape ``obs_shape``."""

    def __init__(
        self,
        obs_shape: Sequence[int],
        action_dim: int,
        *,
        phi_dim: int,
        z_dim: int,
        encoder_hidden: Sequence[int],
        phi_encoder_hidden: Sequence[int] | None = None,
        predictor_hidden: Sequence[int],
        num_predictors: int,
        actor_hidden: Sequence[int],
        actor_std: float,
        actor_clip: float,
        cnn: str = "small_cnn",
        cnn_dim: int = 256,
        network: str = "flat",
    ):
        super().__init__()
        self.obs_shape, self.action_dim, self.z_dim = tuple(obs_shape), action_dim, z_dim
        self.forward_encoder = Encoder(
            obs_shape,
            phi_dim,
            encoder_hidden if phi_encoder_hidden is None else phi_encoder_hidden,
            norm=False,
            cnn=cnn,
            cnn_dim=cnn_dim,
        )
        self.backward_map = Encoder(obs_shape, z_dim, encoder_hidden, norm=True, cnn=cnn, cnn_dim=cnn_dim)
        self.forward_map = Predictor(
            phi_dim, action_dim, z_dim, predictor_hidden, z_dim, num_predictors, network
        )
        self.actor = Actor(phi_dim, z_dim, action_dim, actor_hidden, actor_std, actor_clip, network)

    def embed(self, obs: Tensor) -> Tensor:
        return self.forward_encoder(obs)  # [B, d_e]

    def task_features(self, obs: Tensor) -> Tensor:
        """``B(s)`` ``[B, d]``."""
        return self.backward_map(obs)

    @torch.no_grad()
    def reward_weights(self, next_obs: Tensor, rewards: Tensor) -> Tensor:
        """``w = (1/N) Σ_i r_i B(s'_i)`` (:meth:`mean_reward_weights`)."""
        return self.mean_reward_weights(next_obs, rewards)

    def successor(self, obs: Tensor, action: Tensor, z: Tensor) -> Tensor:
        """``F(e(s), a, z)`` averaged over the ensemble ``[B, d]``."""
        return self.forward_map(self.embed(obs), action, z).mean(0)

    @torch.no_grad()
    def infer_z_from_goal(self, goal_obs: Tensor) -> Tensor:
        """``z = B(g)`` (already on the sphere) for goal observations ``[*, *obs_shape]`` -> ``[*, d]``."""
        return self.task_features(goal_obs)
