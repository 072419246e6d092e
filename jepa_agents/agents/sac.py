"""SAC on the latent of a JEPA world model (continuous actions), DrQ-v2 style, with n-step returns.

Per gradient update, from ``B`` replay slices of ``L = T + n`` consecutive steps, ``T = K`` transitions
(``world_model.horizon``, also without the world-model loss, so that ablation sees the same critic
batch), so every transition in the loss gets its
full n-step return (shorter only where the episode terminates inside the window):

* ``z = f(aug(o_{0..T}))`` ``[B, T+1, D]``: one shared, random-shifted encoding with gradients; the
  remaining bootstrap observations ``o_{T+1..L-1}`` are encoded without gradients (``[B, n-1, D]``);
* world model: ``L_wm = model.loss(o_{0..K}, a_{0..K-1}, z_{0..K})`` (K-step latent prediction + λ·SIGReg;
  its targets follow ``world_model.target``, the online encoder by default: no EMA);
* critic: ``L_Q = Σ_e ½ mean (Q_e(z_t, a_t) - y_t)²`` on the ``T`` transitions, with the target
  (:meth:`SACAgent.td_target`) ``y_t = R_t + d_t·(min_e Q̄_e(z̄, a') - α log π(a'|z̄))``,
  ``z̄ = sg(z_{t+m})``, ``a' ~ π(·|z̄)``, ``Q̄`` the Polyak-averaged target critics and ``(R_t, d_t, m)``
  the n-step return, discount and bootstrap offset of the slice (``m = n`` unless the episode
  terminates first);
* actor: ``L_π = mean(α log π(a|sg(z)) - min_e Q_e(sg(z), a))`` (critic parameters frozen);
* temperature: ``L_α = α·mean(-log π(a|s) - H̄)``.

The encoder (with the predictor) is trained by ``L_Q + wm_weight·L_wm``; the total loss
``L_Q + wm_weight·L_wm + L_π + L_α`` is a single backward pass whose terms reach disjoint parameters
except the encoder. The whole gradient step (:meth:`SACAgent.step`: forward, backward, optimizer steps,
Polyak and EMA updates) is one function of fixed-shape tensors with no host synchronisation, run as
``compile`` says (:mod:`jepa_agents.infra.compile`). A non-finite loss or gradient norm skips the update
on the device (``train/nan_skips``; no parameter, moment or target moves); after
``max_consecutive_nan`` in a row, :class:`FloatingPointError` is raised by the next ``update`` call.

Update-to-data ratio: the loop calls ``update(replay, step)`` after every vectorized env step, with
``step`` the env-frame counter; the agent credits ``utd`` updates per transition collected
(``(step - last_step) / action_repeat``) and runs the whole credit every ``update_every`` calls.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from tensordict import TensorDict, TensorDictBase
from torch import Tensor, nn

from jepa_agents.agents.config import SACConfig
from jepa_agents.agents.credit import due_updates
from jepa_agents.agents.sac_losses import actor_loss, critic_loss, soft_value, temperature_loss, total_loss
from jepa_agents.data.nstep import nstep_returns
from jepa_agents.data.replay import Replay
from jepa_agents.infra.compile import compile_step
from jepa_agents.infra.distributed import average_gradients, mean_over_ranks
from jepa_agents.infra.guarded_adam import GuardedAdam, all_finite
from jepa_agents.infra.nan_guard import NaNGuard
from jepa_agents.infra.polyak import polyak_update
from jepa_agents.nn import MLP
from jepa_agents.world_models import EncoderStack, LatentWorldModel
from jepa_agents.world_models.diagnostics import collapse_metrics


class Trunk(nn.Module):
    """``h = tanh(LayerNorm(Linear(z)))`` ``[*, D] -> [*, F]`` (DrQ-v2); identity when ``out_dim == 0``."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.out_dim = out_dim or in_dim
        self._net = (
            nn.Sequential(nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.Tanh())
            if out_dim
            else nn.Identity()
        )

    def forward(self, z: Tensor) -> Tensor:
        return self._net(z)


def tanh_gaussian_log_prob(mean: Tensor, log_std: Tensor, u: Tensor) -> Tensor:
    """``log π(tanh(u))`` ``[*, 1]`` of the tanh-Gaussian with pre-tanh ``u`` ``[*, A]``:
    ``Σ_i [log N(u_i; mean_i, exp(log_std_i)²) - log(1 - tanh²(u_i))]`` with the stable
    ``log(1 - tanh²(u)) = 2·(log 2 - u - softplus(-2u))``."""
    log_normal = -0.5 * ((u - mean) / log_std.exp()).square() - log_std - 0.5 * math.log(2 * math.pi)
    log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return (log_normal - log_det).sum(-1, keepdim=True)


def tanh_gaussian_sample(mean: Tensor, log_std: Tensor) -> tuple[Tensor, Tensor]:
    """Reparameterized ``a = tanh(u)``, ``u ~ N(mean, exp(log_std)²)``, and ``log π(a)`` ``[*, 1]``."""
    u = mean + log_std.exp() * torch.randn_like(mean)  # [*, A]
    return torch.tanh(u), tanh_gaussian_log_prob(mean, log_std, u)


class TanhGaussianActor(nn.Module):
    """``π(a|z)``: trunk + MLP -> mean and log-std (``[log_std_min, log_std_max]``) of a tanh-Gaussian."""

    def __init__(
        self,
        latent_dim: int,
        action_dim: int,
        feature_dim: int,
        hidden: Sequence[int],
        log_std_min: float,
        log_std_max: float,
    ):
        super().__init__()
        self._trunk = Trunk(latent_dim, feature_dim)
        self._mlp = MLP(self._trunk.out_dim, hidden, 2 * action_dim, "relu")
        self._log_std_min, self._log_std_max = log_std_min, log_std_max

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z [*, D] -> (mean [*, A], log_std [*, A])``."""
        mean, raw = self._mlp(self._trunk(z)).chunk(2, -1)
        log_std = self._log_std_min + 0.5 * (self._log_std_max - self._log_std_min) * (torch.tanh(raw) + 1)
        return mean, log_std

    def sample(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z [*, D] -> (a [*, A] in (-1, 1), log π(a|z) [*, 1])``."""
        return tanh_gaussian_sample(*self(z))

    def mode(self, z: Tensor) -> Tensor:
        """Deterministic action ``tanh(mean)`` ``[*, A]``."""
        return torch.tanh(self(z)[0])


class TwinQ(nn.Module):
    """Two critics on a shared trunk: ``Q_e(z, a) = MLP_e([h(z); a])`` -> ``[2, *, 1]``."""

    def __init__(self, latent_dim: int, action_dim: int, feature_dim: int, hidden: Sequence[int]):
        super().__init__()
        self._trunk = Trunk(latent_dim, feature_dim)
        self._heads = nn.ModuleList(
            MLP(self._trunk.out_dim + action_dim, hidden, 1, "relu") for _ in range(2)
        )

    def forward(self, z: Tensor, action: Tensor) -> Tensor:
        x = torch.cat((self._trunk(z), action), -1)
        return torch.stack([head(x) for head in self._heads])


class SACNetworks(nn.Module):
    """Every network of a SAC learner: world model (encoder), actor, critics, target critics, ``log α``."""

    def __init__(
        self,
        model: EncoderStack,
        actor: nn.Module,
        critic: nn.Module,
        init_temperature: float,
    ):
        super().__init__()
        self.model = model
        self.actor = actor
        self.critic = critic
        self.critic_target = copy.deepcopy(critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(init_temperature)))


class SACAgent:
    """Continuous SAC + JEPA learner: optimizers, ``update``, ``act``, ``state_dict`` (see module docstring).

    Args:
        cfg: learner settings.
        model: world model (or, for ``world_model=none``, the same :class:`EncoderStack` alone) whose
            ``encode`` gives ``z``; trained by ``jepa_loss`` when it is a world model and ``wm_weight > 0``.
        obs_key: observation key the agent sees (``pixels`` or ``state``).
        action_dim: ``A``.
        device: training device.
        num_envs: parallel copies (transitions per vectorized step).
        action_repeat: env frames per agent step (converts ``step`` into transitions).
        max_consecutive_nan: raise after this many consecutive non-finite updates.
        compile_mode: how :meth:`step` runs: ``none``, ``compile`` or ``cudagraph`` (resolved,
            :func:`jepa_agents.infra.compile.resolve_compile`).
    """

    def __init__(
        self,
        cfg: SACConfig,
        model: EncoderStack,
        obs_key: str,
        action_dim: int,
        device: torch.device,
        *,
        num_envs: int,
        action_repeat: int,
        max_consecutive_nan: int,
        compile_mode: str = "none",
    ):
        self.cfg = cfg
        self.obs_key = obs_key
        self.action_dim = action_dim
        self.device = device
        self.nets = self._build_networks(model).to(device)
        self._use_world_model = isinstance(model, LatentWorldModel) and cfg.wm_weight > 0
        horizon = model.cfg.horizon  # with or without the world-model loss: the same critic batch
        self.horizon = horizon  # K, and T: the transitions of a slice in the critic loss
        self.seq_len = horizon + cfg.n_step  # L = T + n: every transition gets its full n-step return
        self.target_entropy = (
            self._default_target_entropy() if cfg.target_entropy is None else cfg.target_entropy
        )
        self.loss_weights = {"critic": 1.0, "actor": 1.0, "temperature": 1.0, "world_model": cfg.wm_weight}
        nets = self.nets
        self.optimizers = {
            "model": GuardedAdam([p for p in nets.model.parameters() if p.requires_grad], lr=cfg.lr_encoder),
            "critic": GuardedAdam(nets.critic.parameters(), lr=cfg.lr_critic),
            "actor": GuardedAdam(nets.actor.parameters(), lr=cfg.lr_actor),
            "temperature": GuardedAdam([nets.log_alpha], lr=cfg.lr_temperature),
        }
        self._params = [
            p for group in self.optimizers.values() for g in group.param_groups for p in g["params"]
        ]
        self.num_envs = num_envs
        self.action_repeat = action_repeat
        self.nan_guard = NaNGuard(
            max_consecutive_nan,
            hint="Lower the learning rates, set agent.grad_clip, or check the rewards and observations.",
        )
        self.counters = {"updates": 0, "calls": 0, "credit": 0.0, "step": -1}
        self.use_compile(compile_mode)

    def use_compile(self, mode: str) -> None:
        """Run :meth:`step` in ``mode`` (``none``, ``compile`` or ``cudagraph``) from now on."""
        self.compile_mode = mode
        # the actor period is a choice between two step functions, not a branch inside one
        self._steps = {
            actor: compile_step(functools.partial(self.step, update_actor=actor), mode)
            for actor in (True, False)
        }

    # --------------------------------------------------------------------------- learner-specific
    def _build_networks(self, model: EncoderStack) -> SACNetworks:
        cfg, d, a = self.cfg, model.latent_dim, self.action_dim
        actor = TanhGaussianActor(d, a, cfg.feature_dim, cfg.actor_hidden, cfg.log_std_min, cfg.log_std_max)
        critic = TwinQ(d, a, cfg.feature_dim, cfg.critic_hidden)
        return SACNetworks(model, actor, critic, cfg.init_temperature)

    def _default_target_entropy(self) -> float:
        return -float(self.action_dim)

    def _sample(self, replay: Replay) -> TensorDict:
        return replay.sample(self.cfg.batch_size, self.seq_len)

    def _terminal(self, batch: TensorDict) -> Tensor:
        """``[B, L, 1]`` bool: the transitions after which nothing is bootstrapped (``terminated``)."""
        return batch["terminated"]

    def td_target(self, z_all: Tensor, reward: Tensor, terminal: Tensor) -> Tensor:
        """The critic's target ``y_t = R_t + d_t·V̄(z_{t+m})`` ``[B, T, 1]`` (no gradient) of the first ``T``
        transitions of slices ``[B, L]``: n-step return ``R_t = Σ_{j<m} γ^j r_{t+j}``, discount
        ``d_t = γ^m`` (0 after a terminal step) and bootstrap offset ``m`` (:func:`nstep_returns`),
        ``V̄`` the soft value of the target critics (:meth:`_next_value`) at the embedding ``z_all``
        ``[B, L, D]`` of ``o_{t+m}``; ``reward``, ``terminal`` ``[B, L, 1]``."""
        t = self.horizon
        ret, discount, index = nstep_returns(reward, terminal, self.cfg.gamma, self.cfg.n_step)
        with torch.no_grad():
            z_boot = _gather_steps(z_all, index[:, :t])  # [B, T, D]
            return ret[:, :t] + discount[:, :t] * self._next_value(z_boot)

    def _next_value(self, z: Tensor) -> Tensor:
        """Soft value ``min_e Q̄_e(z, a') - α log π(a'|z)``, ``a' ~ π(·|z)``: ``z [B, T, D] -> [B, T, 1]``."""
        nets = self.nets
        a_next, logp_next = nets.actor.sample(z)
        q_next = nets.critic_target(z, a_next).min(0).values  # [B, T, 1]
        return soft_value(q_next, logp_next, nets.log_alpha.exp())

    def _policy(self, z: Tensor, eval_mode: bool) -> Tensor:
        actor = self.nets.actor
        return actor.mode(z) if eval_mode else actor.sample(z)[0]

    def _rl_losses(
        self, z: Tensor, target: Tensor, action: Tensor, update_actor: bool
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Critic (and actor, temperature) losses from ``z [B, T+1, D]`` (with gradients), the critic's
        target ``[B, T, 1]`` and the actions ``[B, L, A]``; see the module docstring."""
        nets, t = self.nets, self.horizon
        alpha = nets.log_alpha.exp().detach()
        q = nets.critic(z[:, :t], action[:, :t].float())  # [2, B, T, 1]
        losses, metrics = {}, {}
        losses["critic"], metrics_q = critic_loss(q, target)
        metrics.update(metrics_q)
        if update_actor:
            z_sg = z.detach()
            action, log_prob = nets.actor.sample(z_sg)  # [B, T+1, A], [B, T+1, 1]
            q_pi = _frozen(nets.critic, z_sg, action).min(0).values  # [B, T+1, 1]
            losses["actor"], metrics_pi = actor_loss(q_pi, log_prob, alpha)
            metrics.update(metrics_pi)
            if self.cfg.learn_temperature:
                losses["temperature"], metrics_a = temperature_loss(
                    nets.log_alpha, -log_prob, self.target_entropy
                )
                metrics.update(metrics_a)
        return losses, metrics

    # ------------------------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, obs: TensorDictBase, eval_mode: bool) -> Tensor:
        """Actions for observations ``obs [N]`` (key ``obs_key``), on ``obs``'s device.

        Continuous: ``[N, A]`` in ``[-1, 1]`` (``tanh(mean)`` in eval mode, a sample otherwise).
        """
        x = obs.get(self.obs_key)
        nets, was_training = self.nets, self.nets.training
        nets.eval()  # running embedding statistics: one observation's action depends on it alone
        try:
            z = nets.model.encode(x.to(self.device, non_blocking=True))  # [N, D]
            return self._policy(z, eval_mode).to(x.device)
        finally:
            nets.train(was_training)

    # ---------------------------------------------------------------------------------- training
    def update(self, replay: Replay, step: int) -> dict[str, Tensor]:
        """Run the gradient updates due at env-frame counter ``step``; metrics of the last one (or ``{}``)
        as detached 0-d tensors on the training device, read lazily (``float()``) only when logged. The
        NaN guard's counters are read once per call (:meth:`NaNGuard.check`), after its updates."""
        c, cfg = self.counters, self.cfg
        count = due_updates(c, step, self.num_envs, self.action_repeat, cfg.utd, cfg.update_every)
        if count == 0:
            return {}
        metrics: dict[str, Tensor] = {}
        for i in range(count):
            metrics = self._update_once(replay, diagnostics=i == count - 1)
        self.nan_guard.check()
        metrics["train/nan_skips"] = self.nan_guard.skips.float()
        metrics["train/updates"] = torch.tensor(float(c["updates"]))
        return metrics

    def _update_once(self, replay: Replay, diagnostics: bool) -> dict[str, Tensor]:
        return self.learn(self._sample(replay), diagnostics)

    def learn(self, batch: TensorDict, diagnostics: bool = False) -> dict[str, Tensor]:
        """One gradient update on replay slices ``batch`` ``[B, L]`` (``self.seq_len`` steps: observations,
        ``action``, ``reward``, ``terminated``): :meth:`step` as ``compile_mode`` runs it, then the NaN
        guard's count and, with ``diagnostics``, collapse diagnostics of the step's embeddings (an SVD,
        outside the step). Data-parallel: ``batch`` is this rank's part of the global batch."""
        c = self.counters
        update_actor = c["updates"] % self.cfg.actor_update_every == 0
        out = self._steps[update_actor](
            batch[self.obs_key], batch["action"], batch["reward"], self._terminal(batch)
        )
        c["updates"] += 1
        names = sorted(self._expected_losses(update_actor)) + ["grad_norm"]
        self.nan_guard.record(out.pop("train/applied"), names, out.pop("train/finite"))
        z0 = out.pop("train/z0")
        if diagnostics and self._use_world_model:
            out.update(collapse_metrics(z0))
        return out

    def step(
        self, obs: Tensor, action: Tensor, reward: Tensor, terminal: Tensor, update_actor: bool
    ) -> dict[str, Tensor]:
        """The gradient step as one function of slices ``[B, L]`` (``obs [B, L, *obs_shape]``, ``action
        [B, L, A]`` or ``[B, L]``, ``reward``, ``terminal`` ``[B, L, 1]``): losses, one backward pass, the
        guarded optimizer steps and target updates. Returns detached metrics, ``train/applied`` (0-d bool),
        ``train/finite`` (one bool per loss and the gradient norm) and ``train/z0`` ``[B, D]``; no host
        synchronisation, no branch on data (``update_actor`` picks one of two step functions)."""
        nets, t = self.nets, self.horizon
        z = nets.model.encode(obs[:, : t + 1], augment=True)  # [B, T+1, D]
        z_all = z.detach()
        if obs.shape[1] > t + 1:
            with torch.no_grad():  # bootstrap-only observations need no backward pass
                z_tail = nets.model.encode(obs[:, t + 1 :], augment=True)  # [B, n-1, D]
            z_all = torch.cat((z_all, z_tail), 1)  # [B, L, D]
        target = self.td_target(z_all, reward, terminal)  # [B, T, 1]
        losses, metrics = self._rl_losses(z, target, action, update_actor)
        if self._use_world_model:
            model = nets.model
            losses["world_model"], metrics_wm = model.loss(
                obs[:, : t + 1],
                action[:, :t],
                rewards=reward[:, :t] if model.cfg.reward_weight > 0 else None,
                z=z[:, : t + 1],
                diagnostics=False,
            )
            metrics.update(metrics_wm)
        weights = {name: self.loss_weights[name] for name in self._expected_losses(update_actor)}
        loss = total_loss(losses, weights)

        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self._params)  # data-parallel: the mean over ranks (identity in one process)
        params = [p for p in self._params if p.grad is not None]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip or math.inf)
        losses = mean_over_ranks(losses)  # every rank takes the same skip-or-step decision
        checked = {name: losses[name] for name in sorted(losses)} | {"grad_norm": grad_norm}
        ok, finite = all_finite(checked)
        for opt in self.optimizers.values():
            opt.step(ok)
        polyak_update(nets.critic_target, nets.critic, self.cfg.tau, ok)
        if self._use_world_model and nets.model.cfg.target == "ema":
            nets.model.update_target(ok=ok)
        metrics["train/loss"] = loss.detach()
        metrics["train/grad_norm"] = grad_norm.detach()
        metrics |= {"train/applied": ok, "train/finite": finite, "train/z0": z_all[:, 0]}
        return metrics

    def _expected_losses(self, update_actor: bool) -> set[str]:
        names = {"critic"}
        if update_actor:
            names |= {"actor", "temperature"} if self.cfg.learn_temperature else {"actor"}
        if self._use_world_model:
            names.add("world_model")
        return names

    # ---------------------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Networks (incl. target critics, ``log α``), optimizer states and the update counters."""
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


def _gather_steps(z: Tensor, index: Tensor) -> Tensor:
    """``z [B, L, D]``, ``index [B, T]`` (positions in ``0..L-1``) -> ``z[b, index[b, t]]`` ``[B, T, D]``."""
    return z.gather(1, index.unsqueeze(-1).expand(-1, -1, z.shape[-1]))


def _frozen(module: nn.Module, *args: Tensor) -> Tensor:
    """``module(*args)`` with its parameters detached: gradients reach the inputs only."""
    params = {name: p.detach() for name, p in module.named_parameters()}
    return torch.func.functional_call(module, params, args)
