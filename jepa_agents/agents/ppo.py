"""PPO on the JEPA encoder for massively vectorized environments (``agent=ppo``).

The encoder ``z = f(norm(o))`` of the world model is shared by a policy head and a value head (MLPs on
``z``). Continuous actions: a Gaussian ``u ~ N(μ(z), diag σ²)`` with a state-independent ``σ``, sent to
the env as ``clip(u, -1, 1)`` or ``tanh(u)``; log-probabilities are those of ``u`` (the squashing
Jacobian depends on ``u`` only and cancels in the PPO ratio). Discrete actions (e.g. Atari): a
categorical policy over the logits. One Adam optimizer trains every parameter on

    L = L_clip + c_V·L_V - c_H·H[π] + w_wm·L_wm

where ``L_wm`` is ``model.loss`` on sub-sequences ``[B, K+1]`` of the rollout that stay inside one episode.
A minibatch's gradient step is one function of fixed-shape tensors (:meth:`PPOAgent.step`), run as
``compile`` says; a non-finite loss or gradient norm skips it on the device.
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
from jepa_agents.infra.compile import compile_step, resolve_compile
from jepa_agents.infra.distributed import average_gradients, mean_over_ranks, world_size
from jepa_agents.infra.guarded_adam import GuardedAdam, all_finite
from jepa_agents.infra.nan_guard import NaNGuard
from jepa_agents.world_models import WorldModelConfig
from jepa_agents.world_models.diagnostics import collapse_metrics

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
        compile_mode: str = "none",
    ):
        self.cfg, self.obs_key, self.discrete, self.device = cfg, obs_key, discrete, device
        self.horizon = wm_cfg.horizon
        self.nets = PPONetworks(cfg, wm_cfg, obs_shape, action_dim, discrete, num_envs).to(device)
        self.optimizers = {"ppo": GuardedAdam(self.nets.parameters(), lr=cfg.lr, eps=cfg.adam_eps)}
        weights = {"policy": 1.0, "value": cfg.value_coef, "entropy": cfg.entropy_coef, "wm": cfg.wm_weight}
        self.loss_weights = {k: w for k, w in weights.items() if w > 0}
        """Loss name -> weight of the terms that enter the total loss (zero weights are not computed)."""
        self.nan_guard = NaNGuard(max_consecutive_nan, what="PPO gradient step")
        self.use_compile(compile_mode)

    def use_compile(self, mode: str) -> None:
        """Run :meth:`step` in ``mode`` (``none``, ``compile`` or ``cudagraph``) from now on."""
        self.compile_mode = mode
        self._step_fn = compile_step(self.step, mode)

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
                metrics = self._minibatch(flat[idx], rollout, ret, starts, diagnostics=not counts)
                for k, v in metrics.items():
                    sums[k] = sums[k] + v
                    counts[k] += 1
                if cfg.target_kl > 0 and metrics.get("policy/approx_kl", 0.0) > cfg.target_kl:
                    stop = True
                    break
            if stop:
                break
        self.nan_guard.check()
        if self.nets.obs_norm is not None:
            self.nets.obs_norm.update(rollout[self.obs_key])
        out = {k: float(sums[k] / counts[k]) for k in sums}
        out["train/nan_skips"] = float(self.nan_guard.skips)
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

    def _wm_windows(self, rollout: TensorDict, ret: Tensor, starts: Tensor) -> tuple[Tensor, ...]:
        """``wm_batch_size`` windows of ``K + 1`` steps drawn uniformly among ``starts`` ``[W, 2]``:
        observations ``[B, K+1, *obs_shape]``, actions ``[B, K, ...]``, rewards ``[B, K]`` and value
        targets ``[B, K+1]`` (gathered outside the step: ``W`` varies from rollout to rollout)."""
        pick = starts[torch.randint(starts.shape[0], (self.cfg.wm_batch_size,), device=self.device)]  # [B, 2]
        t = pick[:, :1] + torch.arange(self.horizon + 1, device=self.device)  # [B, K+1]
        n = pick[:, 1:].expand_as(t)  # [B, K+1]
        obs = rollout[self.obs_key][t, n]
        first = (t[:, :-1], n[:, :-1])  # [B, K]: the steps that have a transition in the window
        return obs, rollout["action"][first], rollout["reward"][first], ret[t, n]

    def _minibatch(
        self, mb: TensorDict, rollout: TensorDict, ret: Tensor, starts: Tensor | None, diagnostics: bool
    ) -> dict[str, Tensor]:
        """One gradient step (:meth:`step` as ``compile_mode`` runs it) on minibatch ``mb`` ``[M]``."""
        windows = self._wm_windows(rollout, ret, starts) if starts is not None else ()
        out = self._step_fn(mb[self.obs_key], mb["sample"], mb["log_prob"], mb["value"], mb["advantage"],
                            mb["return"], *windows)  # fmt: skip
        self.nan_guard.record(out.pop("train/applied"), sorted(self.loss_weights), out.pop("train/finite"))
        z0 = out.pop("train/z0", None)
        if diagnostics and z0 is not None:
            out.update(collapse_metrics(z0))
        return out

    def step(
        self,
        obs: Tensor,
        sample: Tensor,
        old_log_prob: Tensor,
        old_value: Tensor,
        advantage: Tensor,
        returns: Tensor,
        wm_obs: Tensor | None = None,
        wm_action: Tensor | None = None,
        wm_reward: Tensor | None = None,
        wm_value: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """One PPO gradient step on a minibatch ``[M]`` (observations, the policy's ``sample`` and
        ``log_prob``, old ``value``, ``advantage``, ``return``) and, with the world-model loss, its windows
        (:meth:`_wm_windows`). Returns detached metrics, ``train/applied``, ``train/finite`` (one per
        loss, sorted by name) and ``train/z0``; no host synchronisation."""
        cfg = self.cfg
        out, value = self._heads(self.nets.encode(obs))  # [M, A], [M]
        log_prob, entropy = self._log_prob_entropy(out, sample)
        adv = advantage
        if cfg.normalize_advantages and adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        losses, metrics = {}, {}
        losses["policy"], m = policy_loss(log_prob, old_log_prob, adv, cfg.clip_ratio)
        metrics.update(m)
        losses["value"], m = value_loss(value, old_value, returns, cfg.value_clip)
        metrics.update(m)
        ent_loss, m = entropy_loss(entropy)
        metrics.update(m)
        if cfg.entropy_coef > 0:
            losses["entropy"] = ent_loss
        wm = self.nets.world_model
        if wm_obs is not None:
            wm_obs = self.nets.normalize(wm_obs)  # [B, K+1, *obs_shape]
            z_wm = wm.encode(wm_obs, augment=True)  # [B, K+1, D]
            metrics["train/z0"] = z_wm[:, 0].detach()
            losses["wm"], m = wm.loss(
                wm_obs,
                wm_action,
                z=z_wm,
                rewards=wm_reward if wm.cfg.reward_weight > 0 else None,
                value_targets=wm_value if wm.cfg.value_weight > 0 else None,
                diagnostics=False,
            )
            metrics.update(m)
        assert losses.keys() == self.loss_weights.keys(), (
            f"losses {sorted(losses)} do not match the weights {sorted(self.loss_weights)}"
        )
        total = sum(self.loss_weights[k] * loss for k, loss in losses.items())
        optimizer = self.optimizers["ppo"]
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        params = [p for p in self.nets.parameters() if p.grad is not None]
        average_gradients(params)  # data-parallel: the mean over ranks
        grad_norm = nn.utils.clip_grad_norm_(params, cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf)
        ok, finite = all_finite(mean_over_ranks({k: losses[k] for k in sorted(losses)}))  # same on every rank
        optimizer.step(ok)
        if wm is not None and wm.cfg.target == "ema":
            wm.update_target(ok=ok)
        metrics["train/grad_norm"] = grad_norm.detach()
        metrics["train/loss"] = total.detach()
        return metrics | {"train/applied": ok, "train/finite": finite}

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
        compile_mode=resolve_compile(cfg.compile, device, world_size())[0],
    )
