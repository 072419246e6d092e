"""PPO on the JEPA encoder for massively vectorized environments (``agent=ppo``).

The encoder ``z = f(norm(o))`` of the world model is shared by a policy head and a value head (MLPs on
``z``). Continuous actions: a Gaussian ``u ~ N(μ(z), diag σ²)`` with a state-independent ``σ``, sent to
the env as ``clip(u, -1, 1)`` or ``tanh(u)``; log-probabilities are those of ``u`` (the squashing
Jacobian depends on ``u`` only and cancels in the PPO ratio). Discrete actions (e.g. Atari): a
categorical policy over the logits. One Adam optimizer trains every parameter on

    L = L_clip + c_V·L_V - c_H·H[π] + w_wm·L_wm

where ``L_wm`` is ``jepa_loss`` on sub-sequences ``[B, K+1]`` of the rollout that stay inside one episode.
Collection (``explore``) and bootstrap values (``value``) are called by
:class:`jepa_agents.train.on_policy.OnPolicyTrainer`, which hands the filled ``[T, N]`` rollout to
:meth:`PPOAgent.update`.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict
from torch import Tensor, nn

from jepa_agents.agents.ppo_config import PPOConfig
from jepa_agents.agents.ppo_losses import entropy_loss, explained_variance, gae, policy_loss, value_loss
from jepa_agents.agents.ppo_networks import PPONetworks, sequence_starts
from jepa_agents.infra.distributed import average_gradients, mean_over_ranks
from jepa_agents.infra.nan_guard import NaNGuard
from jepa_agents.losses.world_model import jepa_loss
from jepa_agents.world_models import WorldModelConfig

_LOG_2PI = math.log(2.0 * math.pi)


class PPOAgent:
    """PPO learner; see the module docstring. Built by :func:`make_ppo`."""

    def __init__(
        self,
        cfg: PPOConfig,
        wm_cfg: WorldModelConfig,
        obs_key: str,
        obs_shape: tuple[int, ...],
        action_dim: int,
        discrete: bool,
        num_envs: int,
        max_consecutive_nan: int,
        device: torch.device,
    ):
        self.cfg, self.obs_key, self.discrete, self.device = cfg, obs_key, discrete, device
        self.horizon = wm_cfg.horizon
        self.nets = PPONetworks(cfg, wm_cfg, obs_shape, action_dim, discrete, num_envs).to(device)
        self.optimizers = {"ppo": torch.optim.Adam(self.nets.parameters(), lr=cfg.lr, eps=cfg.adam_eps)}
        weights = {"policy": 1.0, "value": cfg.value_coef, "entropy": cfg.entropy_coef, "wm": cfg.wm_weight}
        self.loss_weights = {k: w for k, w in weights.items() if w > 0}
        """Loss name -> weight of the terms that enter the total loss (zero weights are not computed)."""
        self.nan_guard = NaNGuard(max_consecutive_nan, what="PPO gradient step")

    # --- the policy ----------------------------------------------------------------------------------
    def _heads(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z [M, D]`` -> (policy output ``[M, A]``: means, or logits when discrete; values ``[M]``)."""
        return self.nets.policy(z), self.nets.value(z).squeeze(-1)

    def _log_prob_entropy(self, out: Tensor, sample: Tensor) -> tuple[Tensor, Tensor]:
        """``log π(sample | s)`` and ``H[π(·|s)]``, both ``[M]``, from the policy output ``out [M, A]``.

        Gaussian: ``log π(u) = Σ_i -½((u_i - μ_i)/σ_i)² - log σ_i - ½ log 2π`` and
        ``H = Σ_i ½ + ½ log 2π + log σ_i`` (of ``u``, before squashing). Categorical:
        ``log softmax(logits)[a]`` and ``H = -Σ_a p_a log p_a``.
        """
        if self.discrete:
            logp = out.log_softmax(-1)  # [M, A]
            return logp.gather(-1, sample[:, None]).squeeze(-1), -(logp.exp() * logp).sum(-1)
        log_std = self.nets.log_std.expand_as(out)  # [M, A]
        log_prob = (-0.5 * ((sample - out) / log_std.exp()).square() - log_std - 0.5 * _LOG_2PI).sum(-1)
        entropy = (0.5 + 0.5 * _LOG_2PI + log_std).sum(-1)
        return log_prob, entropy

    def _to_env(self, sample: Tensor) -> Tensor:
        """Policy sample -> env action: squashed into ``[-1, 1]`` (continuous) or the index (discrete)."""
        if self.discrete:
            return sample
        return sample.tanh() if self.cfg.action_squash == "tanh" else sample.clamp(-1.0, 1.0)

    @torch.no_grad()
    def explore(self, obs: TensorDict) -> TensorDict:
        """Sample actions for collection: ``obs`` ``[N]`` -> TensorDict ``[N]`` with ``action`` (for the env),
        ``sample`` (``u [N, A]`` or the index ``[N]``), ``log_prob`` ``[N]`` and ``value`` ``[N]``."""
        z = self.nets.encode(obs[self.obs_key])  # [N, D]
        out, value = self._heads(z)
        if self.discrete:
            sample = torch.multinomial(out.softmax(-1), 1).squeeze(-1)  # [N]
        else:
            sample = out + self.nets.log_std.exp() * torch.randn_like(out)  # [N, A]
        log_prob, _ = self._log_prob_entropy(out, sample)
        data = {"action": self._to_env(sample), "sample": sample, "log_prob": log_prob, "value": value}
        return TensorDict(data, batch_size=obs.batch_size)

    @torch.no_grad()
    def act(self, obs: TensorDict, eval_mode: bool) -> Tensor:
        """Actions ``[N, A]`` in ``[-1, 1]`` (or indices ``[N]``); ``eval_mode``: the mean (or argmax)."""
        if not eval_mode:
            return self.explore(obs)["action"]
        out = self.nets.policy(self.nets.encode(obs[self.obs_key]))
        return out.argmax(-1) if self.discrete else self._to_env(out)

    @torch.no_grad()
    def value(self, obs: TensorDict) -> Tensor:
        """``V(o)`` ``[N]`` of observations ``obs`` ``[N]`` (bootstrap values of truncated episodes)."""
        return self.nets.value(self.nets.encode(obs[self.obs_key])).squeeze(-1)

    # --- learning ------------------------------------------------------------------------------------
    def update(self, rollout: TensorDict, step: int) -> dict[str, float]:
        """``epochs x minibatches`` PPO steps on a rollout; returns averaged metrics.

        ``rollout`` ``[T, N]`` holds the observation key, ``action``, ``sample``, ``log_prob``, ``value``
        (from :meth:`explore`), ``reward``, ``terminated``, ``done`` (``[T, N]``) and ``next_value``
        ``V(o'_t)`` (see :func:`ppo_losses.gae`). Observation statistics are updated after the epochs,
        so that collection and optimization of one rollout see the same normalization.
        """
        cfg = self.cfg
        reward, done = rollout["reward"], rollout["done"]  # [T, N]
        if self.nets.reward_scaler is not None:
            reward = self.nets.reward_scaler(reward, done)
        adv, ret = gae(
            reward,
            rollout["value"],
            rollout["next_value"],
            rollout["terminated"],
            done,
            cfg.gamma,
            cfg.gae_lambda,
        )
        data = rollout.select(self.obs_key, "sample", "log_prob", "value").clone(False)
        data["advantage"], data["return"] = adv, ret
        flat = data.reshape(-1)  # [T*N]
        starts = self._sequence_starts(done) if "wm" in self.loss_weights else None

        sums: dict[str, Tensor] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        stop = False
        for _ in range(cfg.epochs):
            for idx in torch.randperm(flat.shape[0], device=self.device).chunk(cfg.minibatches):
                metrics = self._step(flat[idx], rollout, ret, starts, diagnostics=not counts)
                for k, v in metrics.items():
                    sums[k] = sums[k] + v
                    counts[k] += 1
                if cfg.target_kl > 0 and metrics.get("policy/approx_kl", 0.0) > cfg.target_kl:
                    stop = True
                    break
            if stop:
                break
        if self.nets.obs_norm is not None:
            self.nets.obs_norm.update(rollout[self.obs_key])
        out = {k: float(sums[k] / counts[k]) for k in sums}
        out["value/explained_variance"] = float(explained_variance(rollout["value"], ret))
        out["train/advantage_std"] = float(adv.std())
        if self.nets.log_std is not None:
            out["policy/std"] = float(self.nets.log_std.detach().exp().mean())
        if self.nets.reward_scaler is not None:
            out["train/reward_scale"] = float(1.0 / (self.nets.reward_scaler.moments.var.sqrt() + 1e-8))
        return out

    def _sequence_starts(self, done: Tensor) -> Tensor:
        if done.shape[0] < self.horizon + 1:
            raise ValueError(
                f"agent.rollout_steps={done.shape[0]} is shorter than world_model.horizon + 1 = "
                f"{self.horizon + 1}: no world-model sequence fits in a rollout"
            )
        starts = sequence_starts(done, self.horizon)
        if starts.shape[0] == 0:
            raise ValueError(
                f"No sequence of {self.horizon + 1} steps inside one episode in this rollout (episodes end "
                "too often); lower world_model.horizon, raise agent.rollout_steps or set agent.wm_weight=0"
            )
        return starts

    def _wm_loss(
        self, rollout: TensorDict, ret: Tensor, starts: Tensor, diagnostics: bool
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``jepa_loss`` on ``wm_batch_size`` windows drawn uniformly among ``starts`` ``[W, 2]``."""
        pick = starts[torch.randint(starts.shape[0], (self.cfg.wm_batch_size,), device=self.device)]  # [B, 2]
        t = pick[:, :1] + torch.arange(self.horizon + 1, device=self.device)  # [B, K+1]
        n = pick[:, 1:].expand_as(t)  # [B, K+1]
        wm = self.nets.world_model
        return jepa_loss(
            wm,
            self.nets.normalize(rollout[self.obs_key][t, n]),  # [B, K+1, *obs_shape]
            rollout["action"][t[:, :-1], n[:, :-1]],  # [B, K, A] or [B, K]
            rewards=rollout["reward"][t[:, :-1], n[:, :-1]] if wm.cfg.reward_weight > 0 else None,
            value_targets=ret[t, n] if wm.cfg.value_weight > 0 else None,
            diagnostics=diagnostics,
        )

    def _step(
        self, mb: TensorDict, rollout: TensorDict, ret: Tensor, starts: Tensor | None, diagnostics: bool
    ) -> dict[str, Tensor]:
        """One gradient step on minibatch ``mb`` ``[M]``; a non-finite loss skips it (``nan_guard``)."""
        cfg = self.cfg
        out, value = self._heads(self.nets.encode(mb[self.obs_key]))  # [M, A], [M]
        log_prob, entropy = self._log_prob_entropy(out, mb["sample"])
        adv = mb["advantage"]
        if cfg.normalize_advantages and adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        losses, metrics = {}, {}
        losses["policy"], m = policy_loss(log_prob, mb["log_prob"], adv, cfg.clip_ratio)
        metrics.update(m)
        losses["value"], m = value_loss(value, mb["value"], mb["return"], cfg.value_clip)
        metrics.update(m)
        ent_loss, m = entropy_loss(entropy)
        metrics.update(m)
        if cfg.entropy_coef > 0:
            losses["entropy"] = ent_loss
        if starts is not None:
            losses["wm"], m = self._wm_loss(rollout, ret, starts, diagnostics)
            metrics.update(m)
        assert losses.keys() == self.loss_weights.keys(), (
            f"losses {sorted(losses)} do not match the weights {sorted(self.loss_weights)}"
        )
        total = sum(self.loss_weights[k] * loss for k, loss in losses.items())
        if not self.nan_guard.ok(mean_over_ranks(losses)):  # the same decision on every rank
            return {}
        optimizer = self.optimizers["ppo"]
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        average_gradients(list(self.nets.parameters()))  # data-parallel: the mean over ranks
        if cfg.max_grad_norm > 0:
            metrics["train/grad_norm"] = nn.utils.clip_grad_norm_(self.nets.parameters(), cfg.max_grad_norm)
        optimizer.step()
        wm = self.nets.world_model
        if wm is not None and wm.cfg.target == "ema":
            wm.update_target()
        metrics["train/loss"] = total.detach()
        return metrics

    # --- checkpoints ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "nets": self.nets.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "nan_guard": self.nan_guard.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.nets.load_state_dict(state["nets"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.nan_guard.load_state_dict(state["nan_guard"])


def _action_space(action_spec) -> tuple[int, bool]:
    """``(A, discrete)`` from a batched action spec; continuous specs must be bounded by ``[-1, 1]``."""
    if action_spec.domain == "discrete":
        if len(action_spec.shape) != 1:
            raise ValueError(
                f"PPO takes discrete actions as integer indices [N] (a Categorical spec), got an action spec "
                f"of shape {tuple(action_spec.shape)} ({type(action_spec).__name__})"
            )
        return int(action_spec.space.n), True
    low, high = getattr(action_spec.space, "low", None), getattr(action_spec.space, "high", None)
    if low is None or not (torch.all(low == -1) and torch.all(high == 1)):
        raise ValueError(f"PPO needs continuous actions bounded by [-1, 1], got {action_spec}")
    return int(action_spec.shape[-1]), False


def make_ppo(cfg: DictConfig, env, device: torch.device) -> PPOAgent:
    """Build the PPO agent for ``env`` from the full validated config (``cfg.agent`` is a ``PPOConfig``)."""
    agent_cfg = OmegaConf.to_object(cfg.agent)
    wm_cfg = OmegaConf.to_object(cfg.world_model)
    if not isinstance(agent_cfg, PPOConfig):
        raise TypeError(f"make_ppo needs an agent config of type PPOConfig, got {type(agent_cfg).__name__}")
    obs_key = "pixels" if cfg.env.from_pixels else "state"
    if obs_key not in env.observation_spec.keys():
        raise ValueError(
            f"{cfg.env.name} has no {obs_key!r} observation (env.from_pixels={cfg.env.from_pixels})"
        )
    obs_shape = tuple(env.observation_spec[obs_key].shape[1:])
    if agent_cfg.normalize_obs and len(obs_shape) != 1:
        raise ValueError(
            f"agent.normalize_obs=true standardizes state vectors; observation {obs_key!r} has shape "
            f"{obs_shape}: set agent.normalize_obs=false (the encoder scales images itself)"
        )
    if wm_cfg.name == "none" and agent_cfg.wm_weight > 0:
        raise ValueError("world_model.name=none has no world-model loss: set agent.wm_weight=0")
    action_dim, discrete = _action_space(env.action_spec)
    return PPOAgent(
        agent_cfg,
        wm_cfg,
        obs_key,
        obs_shape,
        action_dim,
        discrete,
        num_envs=env.batch_size[0],
        max_consecutive_nan=cfg.train.max_consecutive_nan,
        device=device,
    )
