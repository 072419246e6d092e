"""JEPA world model: encoder + action-conditioned latent predictor rolled out for K steps (SPR-style)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from jepa_agents.nn import MLP
from jepa_agents.world_models.base import LatentWorldModel
from jepa_agents.world_models.config import WorldModelConfig


class JEPAWorldModel(LatentWorldModel):
    """``z = f(obs)``, ``z_{k+1} = P(z_k, a_k)``; see :class:`LatentWorldModel` for encoding and heads.

    ``P`` is an MLP on ``[z; a]`` (LayerNorm + ELU), used as ``z + MLP([z; a])`` when
    ``cfg.predictor == "residual"``; its output layer starts at zero, so the residual predictor starts
    as the identity ``P(z, a) = z`` (as LeWorldModel's AdaLN-zero blocks) and the first gradients
    shape the dynamics rather than undo a random map. The rollout is open-loop: predictions feed the
    next step.
    """

    def __init__(self, cfg: WorldModelConfig, obs_shape: Sequence[int], action_dim: int, discrete: bool):
        super().__init__(cfg, obs_shape, action_dim, discrete)
        d = cfg.latent_dim
        self._predictor = MLP(d + self.action_dim, cfg.predictor_hidden, d, "elu", layer_norm=True)
        self._residual = cfg.predictor == "residual"
        if self._residual:
            out = self._predictor.output_layer
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)

    def predict(self, z: Tensor, actions: Tensor) -> Tensor:
        """One step: ``z [B, D]``, actions ``[B, A]`` (or ``[B]`` indices) -> ``z_next [B, D]``."""
        return self._step(z, self.action_input(actions, z.shape[:-1]))

    def transition(self, z: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """One imagined step: ``(predict(z, a) [B, D], reward(z, a) [B])`` (needs the reward head)."""
        return self.predict(z, actions), self.reward(z, actions)

    def _step(self, z: Tensor, a: Tensor) -> Tensor:
        delta = self._predictor(torch.cat((z, a), -1))
        return z + delta if self._residual else delta

    def rollout(self, z0: Tensor, actions: Tensor) -> Tensor:
        """K-step open-loop rollout: ``z0 [B, D]``, actions ``[B, T, A]`` (or ``[B, T]``) -> ``[B, T, D]``.

        Output ``t`` is the prediction of ``z_{t+1}`` after applying ``a_0 .. a_t`` to ``z0``.
        """
        if z0.ndim != 2 or z0.shape[-1] != self.latent_dim:
            raise ValueError(f"z0 must have shape [B, {self.latent_dim}], got {tuple(z0.shape)}")
        steps = actions.shape[1] if actions.ndim >= 2 else -1
        if steps < 1:
            raise ValueError(f"actions must be [B, T, A] or [B, T] with T >= 1, got {tuple(actions.shape)}")
        a = self.action_input(actions, (z0.shape[0], steps))  # [B, T, A]
        z, preds = z0, []
        for t in range(steps):
            z = self._step(z, a[:, t])
            preds.append(z)
        return torch.stack(preds, 1)  # [B, T, D]

    def predict_sequence(self, z: Tensor, actions: Tensor) -> Tensor:
        """Predictions of ``z[:, 1:]``: ``rollout(z[:, 0], actions)``; ``z [B, K+1, D]`` -> ``[B, K, D]``."""
        a = self.action_input(actions, (z.shape[0], z.shape[1] - 1))  # [B, K, A]
        return self.rollout(z[:, 0], a)
