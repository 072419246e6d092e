"""Discrete SAC (Christodoulou 2019) on the latent of a JEPA world model, for Atari-100k.

Same update as :mod:`jepa_agents.agents.sac` (shared encoding ``z [B, L, D]``, world-model loss with
one-hot actions, n-step targets, Polyak target critics, NaN guard), with the expectations over the
``A`` actions taken exactly:

* critic: ``Q_e(z) [A]``; ``y_t = R_t + d_t·Σ_a π(a|z̄)(min_e Q̄_e(z̄, a) - α log π(a|z̄))``;
* actor: ``L_π = mean_s Σ_a π(a|s)(α log π(a|s) - min_e Q_e(s, a))`` (critic frozen);
* temperature: ``L_α = α·mean(H(π(·|s)) - H̄)``, ``H̄ = target_entropy_scale·log A`` by default.

Rewards are clipped to ``[-1, 1]`` in the targets (``clip_reward``) and a lost life cuts the bootstrap
(``life_loss_terminal``, when the environment emits ``life_loss``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from tensordict import TensorDict
from torch import Tensor, nn

from jepa_agents.agents.config import DiscreteSACConfig
from jepa_agents.agents.sac import SACAgent, SACNetworks, Trunk, _frozen
from jepa_agents.agents.sac_losses import critic_loss, discrete_actor_loss, soft_value, temperature_loss
from jepa_agents.nn import MLP
from jepa_agents.world_models import EncoderStack


class CategoricalActor(nn.Module):
    """``π(·|z)``: trunk + MLP -> logits; ``z [*, D] -> (probs [*, A], log_probs [*, A])``."""

    def __init__(self, latent_dim: int, num_actions: int, feature_dim: int, hidden: Sequence[int]):
        super().__init__()
        self._trunk = Trunk(latent_dim, feature_dim)
        self._mlp = MLP(self._trunk.out_dim, hidden, num_actions, "relu")

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        log_probs = F.log_softmax(self._mlp(self._trunk(z)), -1)
        return log_probs.exp(), log_probs


class DiscreteTwinQ(nn.Module):
    """Two critics on a shared trunk: ``Q_e(z) = MLP_e(h(z))`` -> ``[2, *, A]``."""

    def __init__(self, latent_dim: int, num_actions: int, feature_dim: int, hidden: Sequence[int]):
        super().__init__()
        self._trunk = Trunk(latent_dim, feature_dim)
        self._heads = nn.ModuleList(MLP(self._trunk.out_dim, hidden, num_actions, "relu") for _ in range(2))

    def forward(self, z: Tensor) -> Tensor:
        h = self._trunk(z)
        return torch.stack([head(h) for head in self._heads])


class DiscreteSACAgent(SACAgent):
    """Discrete SAC + JEPA learner; ``act`` returns action indices ``[N]`` (long).

    ``life_loss``: the environment emits the ``life_loss`` key (used when ``cfg.life_loss_terminal``).
    Other arguments as :class:`SACAgent` (``action_dim`` is the number of actions ``A``).
    """

    cfg: DiscreteSACConfig

    def __init__(self, cfg: DiscreteSACConfig, model: EncoderStack, *args, life_loss: bool, **kwargs):
        self._terminal_keys = (
            ("terminated", "life_loss") if cfg.life_loss_terminal and life_loss else ("terminated",)
        )
        super().__init__(cfg, model, *args, **kwargs)

    def _build_networks(self, model: EncoderStack) -> SACNetworks:
        cfg, d, a = self.cfg, model.latent_dim, self.action_dim
        actor = CategoricalActor(d, a, cfg.feature_dim, cfg.actor_hidden)
        critic = DiscreteTwinQ(d, a, cfg.feature_dim, cfg.critic_hidden)
        return SACNetworks(model, actor, critic, cfg.init_temperature)

    def _default_target_entropy(self) -> float:
        return self.cfg.target_entropy_scale * math.log(self.action_dim)

    def _terminal(self, batch: TensorDict) -> Tensor:
        """``terminated``, or-ed with ``life_loss`` when a lost life cuts the bootstrap."""
        terminal = batch["terminated"]
        for key in self._terminal_keys[1:]:
            terminal = terminal | batch[key]
        return terminal  # [B, L, 1]

    def td_target(self, z_all: Tensor, reward: Tensor, terminal: Tensor) -> Tensor:
        """:meth:`SACAgent.td_target` on rewards clipped to ``[-1, 1]`` when ``agent.clip_reward``."""
        return super().td_target(z_all, reward.clamp(-1.0, 1.0) if self.cfg.clip_reward else reward, terminal)

    def _next_value(self, z: Tensor) -> Tensor:
        """The exact soft value ``Σ_a π(a|z)(min_e Q̄_e(z, a) - α log π(a|z))``: ``[B, T, D] -> [B, T, 1]``."""
        nets = self.nets
        probs_next, logp_next = nets.actor(z)  # [B, T, A]
        q_next = nets.critic_target(z).min(0).values  # [B, T, A]
        return soft_value(q_next, logp_next, nets.log_alpha.exp(), probs_next)

    def _policy(self, z: Tensor, eval_mode: bool) -> Tensor:
        probs, _ = self.nets.actor(z)  # [N, A]
        return probs.argmax(-1) if eval_mode else torch.multinomial(probs, 1).squeeze(-1)

    def _rl_losses(
        self, z: Tensor, target: Tensor, action: Tensor, update_actor: bool
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        nets, t = self.nets, self.horizon
        alpha = nets.log_alpha.exp().detach()
        taken = action[:, :t].long()  # [B, T]
        q_all = nets.critic(z[:, :t])  # [2, B, T, A]
        q = q_all.gather(-1, taken[None, ..., None].expand(2, -1, -1, 1))  # [2, B, T, 1]
        losses, metrics = {}, {}
        losses["critic"], metrics_q = critic_loss(q, target)
        metrics.update(metrics_q)
        if update_actor:
            z_sg = z.detach()
            probs, log_probs = nets.actor(z_sg)  # [B, T+1, A]
            q_pi = _frozen(nets.critic, z_sg).min(0).values  # [B, T+1, A]
            losses["actor"], metrics_pi = discrete_actor_loss(probs, log_probs, q_pi, alpha)
            metrics.update(metrics_pi)
            if self.cfg.learn_temperature:
                entropy = -(probs * log_probs).sum(-1)  # [B, T+1]
                losses["temperature"], metrics_a = temperature_loss(
                    nets.log_alpha, entropy, self.target_entropy
                )
                metrics.update(metrics_a)
        return losses, metrics
