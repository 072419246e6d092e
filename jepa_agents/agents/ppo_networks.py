"""PPO's networks and statistics: the encoder (a world model's or a plain one), the policy and value
heads, running observation moments and the return-based reward scaler (the model, apart from the agent's
optimizer and update in :mod:`jepa_agents.agents.ppo`), and the episode-safe windows of a rollout that
the world-model loss trains on."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa_agents.agents.ppo_config import PPOConfig
from jepa_agents.nn import MLP, make_encoder
from jepa_agents.world_models import WorldModelConfig, make_world_model

OBS_CLIP = 10.0
"""Normalized state observations are clipped to ``±OBS_CLIP``."""


class RunningMoments(nn.Module):
    """Running mean and variance of samples ``x [B, *shape]`` (Chan et al. parallel update), as buffers.

    δ = μ_b - μ,  n' = n + b,  μ' = μ + δ·b/n',  σ'² = (σ²·n + σ_b²·b + δ²·n·b/n') / n'
    """

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.register_buffer("mean", torch.zeros(tuple(shape)))
        self.register_buffer("var", torch.ones(tuple(shape)))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        x = x.reshape(-1, *self.mean.shape).float()
        b = x.shape[0]
        mean_b, var_b = x.mean(0), x.var(0, unbiased=False)
        total = self.count + b
        delta = mean_b - self.mean
        ratio = (b / total).float()
        self.mean += delta * ratio
        self.var.copy_(self.var * (1 - ratio) + var_b * ratio + delta.square() * ratio * (1 - ratio))
        self.count.copy_(total)


class RewardScaler(nn.Module):
    """Divides rewards by the running std of the discounted return ``G_t = γ·G_{t-1}·(1 - done_{t-1}) + r_t``
    of every copy (Engstrom et al. 2020, "implementation matters"); ``G`` is carried across rollouts."""

    def __init__(self, num_envs: int, gamma: float):
        super().__init__()
        self.gamma = gamma
        self.moments = RunningMoments(())
        self.register_buffer("ret", torch.zeros(num_envs))

    @torch.no_grad()
    def forward(self, reward: Tensor, done: Tensor) -> Tensor:
        """``reward``, ``done`` ``[T, N]`` -> scaled rewards ``[T, N]`` (statistics include this rollout)."""
        if reward.shape[1] != self.ret.shape[0]:
            raise ValueError(f"rollout has {reward.shape[1]} copies, the reward scaler {self.ret.shape[0]}")
        returns = torch.empty_like(reward)  # [T, N]
        for t in range(reward.shape[0]):
            self.ret.mul_(self.gamma).add_(reward[t])
            returns[t] = self.ret
            self.ret.masked_fill_(done[t], 0.0)
        self.moments.update(returns)
        return reward / (self.moments.var.sqrt() + 1e-8)


def sequence_starts(done: Tensor, horizon: int) -> Tensor:
    """Start indices ``(t, n)`` of the windows ``o_t .. o_{t+K}`` of a ``[T, N]`` rollout inside one episode.

    Window ``(t, n)`` is valid when ``t + K <= T - 1`` and no step ``t .. t+K-1`` of copy ``n`` is ``done``
    (after a done step the next row is the reset observation of a new episode).

    Args:
        done: ``[T, N]`` bool.
        horizon: ``K >= 1``.

    Returns:
        ``[W, 2]`` long ``(t, n)`` of the ``W`` valid windows.
    """
    steps = done.shape[0]
    ends = F.pad(done.long().cumsum(0), (0, 0, 1, 0))  # [T+1, N]: dones among steps < t
    ok = ends[horizon:steps] == ends[: steps - horizon]  # [T-K, N]: no done in steps t .. t+K-1
    return ok.nonzero()


class PPONetworks(nn.Module):
    """Parameters and statistics of the agent: world model (or plain encoder), heads, normalizers."""

    def __init__(
        self,
        cfg: PPOConfig,
        wm_cfg: WorldModelConfig,
        obs_shape: tuple[int, ...],
        action_dim: int,
        discrete: bool,
        num_envs: int,
    ):
        super().__init__()
        self.world_model = make_world_model(wm_cfg, obs_shape, action_dim, discrete)
        self.encoder = None
        if self.world_model is None:
            kwargs = {"precision": wm_cfg.precision} if len(obs_shape) == 3 else {}
            self.encoder = make_encoder(wm_cfg.encoder, obs_shape, wm_cfg.latent_dim, **kwargs)
        d = wm_cfg.latent_dim
        self.policy = MLP(d, cfg.policy_hidden, action_dim, cfg.activation)
        self.value = MLP(d, cfg.value_hidden, 1, cfg.activation)
        with torch.no_grad():  # near-uniform initial policy (Andrychowicz et al. 2021)
            last = [m for m in self.policy.modules() if isinstance(m, nn.Linear)][-1]
            last.weight.mul_(0.01)
            last.bias.zero_()
        self.log_std = None if discrete else nn.Parameter(torch.full((action_dim,), cfg.init_log_std))
        self.obs_norm = RunningMoments(obs_shape) if cfg.normalize_obs else None
        self.reward_scaler = RewardScaler(num_envs, cfg.gamma) if cfg.normalize_rewards else None

    def normalize(self, obs: Tensor) -> Tensor:
        """``obs [*, *obs_shape]`` -> standardized and clipped (float) when ``normalize_obs``, else as is."""
        if self.obs_norm is None:
            return obs
        x = (obs.float() - self.obs_norm.mean) / (self.obs_norm.var + 1e-8).sqrt()
        return x.clamp(-OBS_CLIP, OBS_CLIP)

    def encode(self, obs: Tensor) -> Tensor:
        """``obs [*, *obs_shape] -> z [*, D]`` (normalized first; no augmentation)."""
        x = self.normalize(obs)
        if self.world_model is None:
            return self.encoder(x)
        # the heads see running-statistics embeddings: the same when acting and when re-evaluating
        # log-probabilities in the update (batch statistics would change the ratio)
        return self.world_model.encode(x, running_stats=True)
