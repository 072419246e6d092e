"""Actor-critic in imagination: the JEPA world model used as a world model (Dreamer-style, reconstruction-free
as MuDreamer). Per gradient update, from ``B`` replay slices of ``K + 1`` steps:

1. **World model** (``model.loss``, :mod:`jepa_agents.world_models.loss`): ``z = f(aug(o))``
   ``[B, K+1, D]``, K-step latent prediction + λ·SIGReg, a reward head ``r(z_k, a_k)`` and a continuation
   head ``c(ẑ_{k+1})`` trained on predicted latents (what imagination will feed them); no decoder.
2. **Imagination** (:meth:`ImaginationAgent.imagine`): from every replayed latent ``sg(z)`` ``[N, D]``
   (``N = B·(K+1)``), ``H`` steps of ``a_t ~ π(z_t)``, ``z_{t+1} = P(z_t, a_t)``, rewards ``r(z_t, a_t)``
   and continuation probabilities ``σ(c(z_{t+1}))``, time-major ``[H(+1), N, ...]``, with the world
   model's parameters frozen.
3. **Returns** (:func:`~.imagination_losses.lambda_returns`): λ-returns bootstrapped by the critic ``V``
   (or its slow copy ``V̄`` with ``agent.slow_bootstrap``), divided by ``max(1, S)`` with ``S`` the running
   5-95 percentile range (:class:`ReturnScale`).
4. **Actor**: REINFORCE with the critic as baseline for both action kinds (DreamerV3's estimator,
   :func:`~.imagination_losses.actor_loss_reinforce`); continuous actions with ``agent.actor_grad=backprop``
   back-propagate the returns through the learned dynamics, rewards and values instead
   (:func:`~.imagination_losses.actor_loss_backprop`, Dreamer v1); both with an entropy bonus ``η``.
5. **Critic**: DreamerV3's two-hot symlog critic (:class:`~.twohot.TwoHotCritic`,
   :func:`~.imagination_losses.twohot_critic_loss`): cross-entropy to the two-hot λ-returns plus a term
   towards the slow critic ``V̄``, weighted by ``Π γ c`` (``agent.critic=mse``: a scalar regressed on the
   returns, :func:`~.imagination_losses.critic_loss`); ``V̄`` follows ``V`` by Polyak averaging.

Each of the three optimizers (world model, actor, critic) steps on its own loss; data-parallel runs
average each one's gradients over ranks. The update is one function (:meth:`ImaginationAgent.step`) with
no host synchronisation, run as ``compile`` says; a non-finite loss or gradient norm skips it on the
device (:class:`~jepa_agents.infra.guarded_adam.GuardedAdam`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from tensordict import TensorDict, TensorDictBase
from torch import Tensor, nn

from jepa_agents.agents.bounded_normal import BoundedNormalActor, normal_entropy, normal_log_prob
from jepa_agents.agents.credit import due_updates
from jepa_agents.agents.imagination_config import ImaginationConfig
from jepa_agents.agents.imagination_losses import (
    actor_loss_backprop,
    actor_loss_reinforce,
    critic_loss,
    lambda_returns,
    trajectory_weights,
    twohot_critic_loss,
)
from jepa_agents.agents.return_norm import ReturnScale
from jepa_agents.agents.sac import TanhGaussianActor, tanh_gaussian_log_prob
from jepa_agents.agents.twohot import TwoHotCritic
from jepa_agents.data.replay import Replay
from jepa_agents.infra.compile import compile_step
from jepa_agents.infra.distributed import average_gradients, mean_over_ranks
from jepa_agents.infra.guarded_adam import GuardedAdam, all_finite
from jepa_agents.infra.nan_guard import NaNGuard
from jepa_agents.infra.polyak import polyak_update
from jepa_agents.nn import MLP
from jepa_agents.world_models.diagnostics import collapse_metrics
from jepa_agents.world_models.jepa import JEPAWorldModel


class CategoricalActor(nn.Module):
    """``π(a|z)`` over ``A`` discrete actions: an MLP to logits ``[*, A]``."""

    def __init__(self, latent_dim: int, num_actions: int, hidden: Sequence[int]):
        super().__init__()
        self._mlp = MLP(latent_dim, hidden, num_actions, "relu")

    def forward(self, z: Tensor) -> Tensor:
        return self._mlp(z)


class ImaginationNetworks(nn.Module):
    """The world model, the actor, the critic ``V(z)``, its slow copy ``V̄`` and the return scale."""

    def __init__(self, model: JEPAWorldModel, actor: nn.Module, critic: nn.Module, return_scale: ReturnScale):
        super().__init__()
        self.model, self.actor, self.critic, self.return_scale = model, actor, critic, return_scale
        self.critic_target = copy.deepcopy(critic).requires_grad_(False)


class ImaginationAgent:
    """Dreamer-style actor-critic on a JEPA world model (module docstring); the agent interface of the
    off-policy trainer: ``act``, ``update(replay, step)``, ``state_dict`` / ``load_state_dict``."""

    def __init__(
        self,
        cfg: ImaginationConfig,
        model: JEPAWorldModel,
        obs_key: str,
        action_dim: int,
        discrete: bool,
        device: torch.device,
        *,
        num_envs: int,
        action_repeat: int,
        max_consecutive_nan: int,
        compile_mode: str = "none",
    ):
        self.cfg, self.obs_key, self.action_dim, self.discrete = cfg, obs_key, action_dim, discrete
        self.device, self.num_envs, self.action_repeat = device, num_envs, action_repeat
        d = model.latent_dim
        if discrete:
            actor: nn.Module = CategoricalActor(d, action_dim, cfg.actor_hidden)
        elif cfg.actor_dist == "bounded_normal":
            stds = math.exp(cfg.log_std_min), math.exp(cfg.log_std_max)
            actor = BoundedNormalActor(d, action_dim, cfg.actor_hidden, *stds)
        else:
            actor = TanhGaussianActor(d, action_dim, 0, cfg.actor_hidden, cfg.log_std_min, cfg.log_std_max)
        critic = (
            TwoHotCritic(d, cfg.critic_hidden, cfg.critic_bins)
            if cfg.critic == "twohot"
            else MLP(d, cfg.critic_hidden, 1, "relu")
        )
        self.nets = ImaginationNetworks(model, actor, critic, ReturnScale(cfg.return_decay)).to(device)
        self.seq_len = model.cfg.horizon + 1
        self._reinforce = discrete or cfg.actor_grad == "reinforce"
        model_params = [p for p in self.nets.model.parameters() if p.requires_grad]  # not an EMA target
        self.optimizers = {"model": GuardedAdam(model_params, lr=cfg.lr_model)} if model_params else {}
        self.optimizers |= {  # (the true simulator, world_model=simulator, has nothing to train)
            "actor": GuardedAdam(self.nets.actor.parameters(), lr=cfg.lr_actor),
            "critic": GuardedAdam(self.nets.critic.parameters(), lr=cfg.lr_critic),
        }
        self.nan_guard = NaNGuard(max_consecutive_nan, hint="Lower the learning rates or check the rewards.")
        self.counters = {"updates": 0, "calls": 0, "credit": 0.0, "step": -1}
        self.use_compile(compile_mode)

    def use_compile(self, mode: str) -> None:
        """Run :meth:`step` in ``mode`` (``none``, ``compile`` or ``cudagraph``) from now on."""
        self.compile_mode = mode
        self._step_fn = compile_step(self.step, mode)

    # ------------------------------------------------------------------------------------ acting
    def policy(self, z: Tensor, eval_mode: bool) -> Tensor:
        """Actions ``[N, A]`` (indices ``[N]``) at ``z [N, D]``: the mode if ``eval_mode``, else a sample."""
        if self.discrete:
            logits = self.nets.actor(z)
            return logits.argmax(-1) if eval_mode else torch.distributions.Categorical(logits=logits).sample()
        return self.nets.actor.mode(z) if eval_mode else self.nets.actor.sample(z)[0]

    @torch.no_grad()
    def act(self, obs: TensorDictBase, eval_mode: bool) -> Tensor:
        """Actions for observations ``obs [N]``: ``[N, A]`` in ``[-1, 1]`` or indices ``[N]``."""
        x = obs.get(self.obs_key)
        nets, was_training = self.nets, self.nets.training
        nets.eval()  # running embedding statistics
        try:
            z = nets.model.encode(x.to(self.device, non_blocking=True))  # [N, D]
            return self.policy(z, eval_mode).to(x.device)
        finally:
            nets.train(was_training)

    # ----------------------------------------------------------------------------------- imagining
    def _sample_action(self, z: Tensor, t: int) -> tuple[Tensor, Tensor, Tensor]:
        """The actor's ``(action [N, A] (one-hot if discrete), log π [N], entropy [N])`` at latents ``z``."""
        actor = self.nets.actor
        if self.discrete:
            dist = torch.distributions.Categorical(logits=actor(z.detach()))
            index = dist.sample()
            return F.one_hot(index, self.action_dim).float(), dist.log_prob(index), dist.entropy()
        if isinstance(actor, BoundedNormalActor):  # DreamerV3's: log π of the unclipped sample
            mean, std = actor(z.detach() if self._reinforce else z)
            u = mean + std * torch.randn_like(mean)  # [N, A]
            u = u.detach() if self._reinforce else u  # REINFORCE: no path from the sample to the model
            return u.clamp(-1.0, 1.0), normal_log_prob(mean, std, u), normal_entropy(std)
        if self._reinforce:  # a sample without a path to the model; log π and entropy carry the gradient
            mean, log_std = actor(z.detach())
            u = (mean + log_std.exp() * torch.randn_like(mean)).detach()  # [N, A]
            entropy = normal_entropy(log_std.exp())  # the pre-squash Gaussian's, [N]
            return torch.tanh(u), tanh_gaussian_log_prob(mean, log_std, u).squeeze(-1), entropy
        action, log_prob = actor.sample(z)  # [N, A], [N, 1]
        return action, log_prob.squeeze(-1), -log_prob.squeeze(-1)  # one-sample entropy estimate

    def imagine(self, start: Tensor, horizon: int, policy=None) -> dict[str, Tensor]:
        """``H = horizon`` steps of a policy in the world model from ``start`` ``[N, D]``.

        ``policy(z [N, D], t) -> (action [N, A], log_prob [N], entropy [N])``; default: the actor.
        Returns time-major tensors: ``z`` ``[H+1, N, D]``, ``action`` ``[H, N, A]`` (one-hot if discrete),
        ``log_prob``, ``entropy``, ``reward``, ``continue`` ``[H, N]``. Gradients flow from rewards and
        continuations to the actions (and the actor) through the predictor; freeze the world model's
        parameters around the call to keep them out of a policy loss.
        """
        model, policy = self.nets.model, policy or self._sample_action
        n = start.shape[0]
        zs, acts, logps, ents, rews, conts = [start], [], [], [], [], []
        z = start
        for t in range(horizon):
            action, log_prob, entropy = policy(z, t)
            z, reward = model.transition(z, action)  # [N, D], [N]
            zs.append(z)
            acts.append(action)
            logps.append(log_prob)
            ents.append(entropy)
            rews.append(reward)
            conts.append(torch.sigmoid(model.continue_logits(z)))
        out = {
            "z": torch.stack(zs), "action": torch.stack(acts), "log_prob": torch.stack(logps),
            "entropy": torch.stack(ents), "reward": torch.stack(rews), "continue": torch.stack(conts),
        }  # fmt: skip
        d = start.shape[-1]
        assert out["z"].shape == (horizon + 1, n, d), out["z"].shape  # [H+1, N, D]
        assert out["action"].shape == (horizon, n, self.action_dim), out["action"].shape  # [H, N, A]
        for key in ("log_prob", "entropy", "reward", "continue"):
            assert out[key].shape == (horizon, n), (key, out[key].shape)  # [H, N]
        return out

    # ---------------------------------------------------------------------------------- training
    def update(self, replay: Replay, step: int) -> dict[str, Tensor]:
        """The gradient updates due at env-frame counter ``step`` (``agent.utd`` per transition); metrics of
        the last one (or ``{}``)."""
        c, cfg = self.counters, self.cfg
        count = due_updates(c, step, self.num_envs, self.action_repeat, cfg.utd, cfg.update_every)
        metrics: dict[str, Tensor] = {}
        for i in range(count):
            batch = replay.sample(cfg.batch_size, self.seq_len)
            metrics = self.learn(batch, diagnostics=i == count - 1)
        if count:
            self.nan_guard.check()
            metrics["train/nan_skips"] = self.nan_guard.skips.float()
            metrics["train/updates"] = torch.tensor(float(c["updates"]))
        return metrics

    def learn(self, batch: TensorDict, diagnostics: bool = False) -> dict[str, Tensor]:
        """One update on replay slices ``batch`` ``[B, K+1]``: :meth:`step` as ``compile_mode`` runs it, the
        NaN guard's count and, with ``diagnostics``, collapse diagnostics (outside the step)."""
        k = self.seq_len - 1
        out = self._step_fn(
            batch[self.obs_key], batch["action"][:, :k], batch["reward"][:, :k], batch["terminated"][:, :k]
        )
        self.counters["updates"] += 1
        names = [*self.optimizers, *(f"grad_norm_{name}" for name in self.optimizers)]
        self.nan_guard.record(out.pop("train/applied"), names, out.pop("train/finite"))
        z0 = out.pop("train/z0")
        if diagnostics:
            out.update(collapse_metrics(z0))
        return out

    def step(self, obs: Tensor, action: Tensor, reward: Tensor, terminated: Tensor) -> dict[str, Tensor]:
        """World model, then actor, then critic, from ``obs [B, K+1, *obs_shape]``, ``action [B, K, A]``
        (or ``[B, K]``), ``reward``, ``terminated`` ``[B, K, 1]``; one guarded optimizer step each (all or
        none applied) and the slow critic's Polyak step. Returns detached metrics, ``train/applied``,
        ``train/finite`` and ``train/z0`` ``[B, D]``; no host synchronisation."""
        cfg, nets = self.cfg, self.nets
        z = nets.model.encode(obs, augment=True)  # [B, K+1, D]
        wm_loss, metrics = nets.model.loss(
            obs, action, rewards=reward, continues=1.0 - terminated.float(), z=z, diagnostics=False
        )
        start = z.detach().reshape(-1, z.shape[-1])  # [N, D], N = B·(K+1)
        trained = self.optimizers["model"].param_groups[0]["params"] if "model" in self.optimizers else []
        for p in trained:  # frozen for the policy loss: its gradient reaches the actions, not the model
            p.requires_grad_(False)
        try:
            traj = self.imagine(start, cfg.imagine_horizon)
        finally:
            for p in trained:
                p.requires_grad_(True)
        # one pass of each critic over z [H+1, N, D] serves the bootstrap, the baseline and the critic's
        # loss (each loss steps only its own optimizer's parameters). The values are differentiable in z:
        # the backprop actor's gradient reaches the value beyond the horizon, not only the H imagined
        # rewards (Dreamer v1)
        twohot = isinstance(nets.critic, TwoHotCritic)
        logits = nets.critic.logits(traj["z"]) if twohot else None  # [H+1, N, K]
        values = nets.critic.value(logits) if twohot else nets.critic(traj["z"]).squeeze(-1)  # [H+1, N]
        slow = nets.critic_target(traj["z"]).squeeze(-1) if twohot or cfg.slow_bootstrap else None  # [H+1, N]
        boot = slow if cfg.slow_bootstrap else values
        returns = lambda_returns(traj["reward"], boot, traj["continue"], cfg.lam, cfg.gamma)  # [H, N]
        weights = trajectory_weights(traj["continue"], cfg.gamma)  # [H, N]
        scale = mean_over_ranks({"s": nets.return_scale.update(returns)})["s"]  # the same on every rank
        values = values[:-1]  # [H, N]
        if twohot:
            value_loss, m_v = twohot_critic_loss(
                nets.critic, logits[:-1], returns, slow[:-1].detach(), weights, cfg.slow_critic_reg
            )
        else:
            value_loss, m_v = critic_loss(values, returns, weights)
        if self._reinforce:
            actor_loss, m_pi = actor_loss_reinforce(
                returns, values.detach(), traj["log_prob"], traj["entropy"], weights, scale, cfg.entropy_coef
            )
        else:
            actor_loss, m_pi = actor_loss_backprop(returns, traj["entropy"], weights, scale, cfg.entropy_coef)
        losses = {"model": wm_loss, "actor": actor_loss, "critic": value_loss}
        ok, finite = self._guarded_step({name: losses[name] for name in self.optimizers})
        polyak_update(nets.critic_target, nets.critic, cfg.critic_tau, ok)
        metrics.update(m_pi, **m_v)
        metrics["value/return_scale"] = scale.detach()
        metrics["value/imagined_return"] = returns.mean().detach()
        metrics["value/imagined_reward"] = traj["reward"].mean().detach()
        return metrics | {"train/applied": ok, "train/finite": finite, "train/z0": z[:, 0].detach()}

    def _guarded_step(self, losses: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Backward each loss into its own optimizer's parameters, average over ranks, clip, then one
        decision on every loss and gradient norm (the same on every rank), and every optimizer steps
        under it: ``(ok, finite)`` (:func:`all_finite`)."""
        assert losses.keys() == self.optimizers.keys(), (sorted(losses), sorted(self.optimizers))
        norms = {}
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        for name, loss in losses.items():
            params = [p for g in self.optimizers[name].param_groups for p in g["params"]]
            grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
            for p, g in zip(params, grads):
                p.grad = g
            average_gradients(params)
            norms[f"grad_norm_{name}"] = nn.utils.clip_grad_norm_(
                [p for p in params if p.grad is not None], self.cfg.grad_clip or math.inf
            )
        ok, finite = all_finite(mean_over_ranks({**losses, **norms}))
        for opt in self.optimizers.values():
            opt.step(ok)
        return ok, finite

    # ---------------------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        return {
            "nets": self.nets.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "counters": dict(self.counters),
            "nan_guard": self.nan_guard.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.counters = dict(state["counters"])
        self.nan_guard.load_state_dict(state["nan_guard"])
