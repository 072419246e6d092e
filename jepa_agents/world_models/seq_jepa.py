"""seq-JEPA world model (after Ghaemi et al. 2025): a transformer aggregates past views and actions.

Token ``i`` of a sequence of views is ``Linear([z_i ; a_{i-1}]) + pos_i``, where ``a_{i-1}`` is the action
that led to view ``i`` (zeros for the first view). One learnable aggregate token per position ``i``
(``agg + pos_i``) attends to view tokens ``0..i`` and to itself, view tokens attend causally to earlier
view tokens, so a single pass yields the aggregate ``c_i`` of every prefix ``0..i`` and ``c_i`` never
depends on later views. The predictor maps ``[c_i ; a_i]`` to the embedding of view ``i + 1``.

``context(z, prev_actions)`` is the history-aware state for partially observed tasks (Atari).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from jepa_agents.nn import MLP
from jepa_agents.world_models.base import LatentWorldModel
from jepa_agents.world_models.config import WorldModelConfig


def _aggregate_mask(length: int, device: torch.device) -> Tensor:
    """Boolean attention mask ``[2L, 2L]`` (True = blocked) for ``[views ; aggregate tokens]``."""
    idx = torch.arange(length, device=device)
    later = idx[None, :] > idx[:, None]  # [L, L]: key j after query i
    views_to_views = later
    views_to_aggs = torch.ones(length, length, dtype=torch.bool, device=device)
    aggs_to_views = later
    aggs_to_aggs = idx[None, :] != idx[:, None]
    top = torch.cat((views_to_views, views_to_aggs), 1)
    bottom = torch.cat((aggs_to_views, aggs_to_aggs), 1)
    return torch.cat((top, bottom), 0)


class SeqJEPAWorldModel(LatentWorldModel):
    """Encoder + causal transformer aggregator + next-view predictor (see module docstring)."""

    def __init__(self, cfg: WorldModelConfig, obs_shape: Sequence[int], action_dim: int, discrete: bool):
        super().__init__(cfg, obs_shape, action_dim, discrete)
        d = cfg.latent_dim
        self._token = nn.Linear(d + self.action_dim, d)
        self._pos = nn.Parameter(torch.randn(cfg.seq_context, d) * 0.02)
        self._agg = nn.Parameter(torch.randn(d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d,
            cfg.seq_heads,
            dim_feedforward=2 * d,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self._transformer = nn.TransformerEncoder(layer, cfg.seq_layers, enable_nested_tensor=False)
        self._out_norm = nn.LayerNorm(d)
        self._predictor = MLP(d + self.action_dim, cfg.predictor_hidden, d, "elu", layer_norm=True)

    def context(self, z: Tensor, prev_actions: Tensor) -> Tensor:
        """Prefix aggregates: ``z [B, L, D]``, ``prev_actions [B, L, A]`` or ``[B, L]`` -> ``[B, L, D]``.

        ``prev_actions[:, i]`` is the action that led to view ``i`` (zeros for a first view; a float zero
        vector is accepted for discrete actions too). ``L <= cfg.seq_context``.
        """
        if z.ndim != 3 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"z must have shape [B, L, {self.latent_dim}], got {tuple(z.shape)}")
        b, length, d = z.shape
        if length > self._pos.shape[0]:
            raise ValueError(
                f"context of {length} views exceeds world_model.seq_context={self._pos.shape[0]}"
            )
        a = self.action_input(prev_actions, (b, length))  # [B, L, A]
        pos = self._pos[:length]  # [L, D]
        views = self._token(torch.cat((z, a), -1)) + pos  # [B, L, D]
        aggs = (self._agg + pos).expand(b, length, d)  # [B, L, D]
        out = self._transformer(torch.cat((views, aggs), 1), mask=_aggregate_mask(length, z.device))
        return self._out_norm(out[:, length:])  # [B, L, D]

    def predict(self, context: Tensor, actions: Tensor) -> Tensor:
        """Next-view embedding: ``context [B, D]``, actions ``[B, A]`` (or ``[B]``) -> ``[B, D]``."""
        a = self.action_input(actions, context.shape[:-1])
        return self._predictor(torch.cat((context, a), -1))

    def predict_sequence(self, z: Tensor, actions: Tensor) -> Tensor:
        """Teacher-forced predictions of ``z[:, 1:]``:
        ``z [B, K+1, D]``, actions ``[B, K, ...]`` -> ``[B, K, D]``
        (the aggregator sees at most ``cfg.seq_context`` views, so ``K <= seq_context``).

        Prediction ``k`` uses the aggregate of views ``0..k`` and action ``a_k``.
        """
        b, steps = z.shape[0], z.shape[1] - 1
        a = self.action_input(actions, (b, steps))  # [B, K, A]
        prev = torch.cat((torch.zeros_like(a[:, :1]), a[:, :-1]), 1)  # [B, K, A]: action leading to view k
        ctx = self.context(z[:, :steps], prev)  # [B, K, D]
        return self._predictor(torch.cat((ctx, a), -1))  # [B, K, D]
