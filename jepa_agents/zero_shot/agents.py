"""Zero-shot agents: optimizers, target networks, the update step and save/load around a model.

``make_zero_shot_agent(cfg, obs_shape, action_dim, device)`` builds :class:`TDJEPAAgent` or :class:`FBAgent`
from the ``agent`` config (:class:`jepa_agents.zero_shot.config.ZeroShotAgentConfig`). ``agent.update(batch)``
takes a TensorDict ``[B]`` of transitions (``observation/<key>``, ``action``, ``next/observation/<key>``,
``next/terminated``) and returns its metrics as detached 0-d tensors on the training device, read
(``float()``) only when logged. The gradient steps are one function (``step``) of fixed-shape tensors,
run as ``compile`` says (:mod:`jepa_agents.infra.compile`); the NaN guard decides on the device and
``update`` reads its count once (the first non-finite step raises, with nothing applied). Task vectors
for training are uniform on the sphere of radius ``√d``, a fraction ``train_goal_ratio`` replaced by
embedded dataset states (``ψ(s')``, resp. ``B(s')``, of a permutation of the batch).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from tensordict import TensorDict
from torch import Tensor, nn

from jepa_agents.infra.compile import compile_step
from jepa_agents.infra.distributed import average_gradients, mean_over_ranks
from jepa_agents.infra.guarded_adam import GuardedAdam, all_finite
from jepa_agents.infra.nan_guard import NaNGuard
from jepa_agents.infra.polyak import polyak_update
from jepa_agents.nn.augment import RandomShift
from jepa_agents.regularizers import SIGReg
from jepa_agents.zero_shot.fb import FBModel
from jepa_agents.zero_shot.losses import (
    actor_loss,
    encoder_regularizer,
    fb_loss,
    orthonormality_loss,
    td_jepa_td_loss,
)
from jepa_agents.zero_shot.td_jepa import TDJEPAModel, project_z


def build_model(cfg, obs_shape: Sequence[int], action_dim: int) -> TDJEPAModel | FBModel:
    """The model named by ``cfg.name`` (``td_jepa`` or ``fb``) with the sizes of ``cfg``; every Linear
    layer orthogonally initialised with zero bias (as the reference code; conv encoders already are)."""
    model = _build(cfg, obs_shape, action_dim)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return model


def _build(cfg, obs_shape: Sequence[int], action_dim: int) -> TDJEPAModel | FBModel:
    common = dict(
        phi_dim=cfg.phi_dim,
        z_dim=cfg.z_dim,
        encoder_hidden=list(cfg.encoder_hidden),
        phi_encoder_hidden=None if cfg.phi_encoder_hidden is None else list(cfg.phi_encoder_hidden),
        predictor_hidden=list(cfg.predictor_hidden),
        num_predictors=cfg.num_predictors,
        actor_hidden=list(cfg.actor_hidden),
        actor_std=cfg.actor_std,
        actor_clip=cfg.actor_clip,
        cnn=cfg.cnn,
        cnn_dim=cfg.cnn_dim,
        network=cfg.network,
    )
    if cfg.name == "td_jepa":
        return TDJEPAModel(obs_shape, action_dim, encoder_norm=cfg.encoder_norm, **common)
    if cfg.name == "fb":
        return FBModel(obs_shape, action_dim, **common)
    raise ValueError(f"unknown zero-shot agent {cfg.name!r}; choose td_jepa or fb")


def _prefixed(prefix: str, metrics: dict[str, Tensor]) -> dict[str, Tensor]:
    return {f"{prefix}/{k}": v for k, v in metrics.items()}


def _detached(metrics: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach() for k, v in metrics.items()}


def _decision(ok: Tensor, finite_critic: Tensor, finite_actor: Tensor) -> dict[str, Tensor]:
    """A step's NaN decision (``ok``: both parts applied) and the finiteness of its checked terms, critic
    terms first (the order of ``critic_terms + ACTOR_TERMS``)."""
    return {"applied": ok, "finite": torch.cat((finite_critic, finite_actor))}


ACTOR_TERMS = ["actor", "actor grad_norm"]
"""Names of the terms the actor's step checks (its loss, its gradient norm)."""


class _ZeroShotAgent:
    """Shared pieces: the batch unpacking, mixed task sampling, the guarded optimizer step,
    checkpointable state."""

    model: TDJEPAModel | FBModel

    def __init__(self, cfg, model: TDJEPAModel | FBModel, device: torch.device, compile_mode: str):
        self.cfg, self.device = cfg, device
        self.model = model.to(device)
        self.target = copy.deepcopy(self.model).requires_grad_(False)
        images = len(model.obs_shape) == 3
        self.augment = RandomShift(cfg.augment_pad if images else 0).to(device)
        self.optimizers = {"actor": GuardedAdam(self.model.actor.parameters(), lr=cfg.lr_actor)}
        # the first non-finite loss or gradient stops training before any parameter changes
        self.nan_guard = NaNGuard(1, hint="Lower agent.lr / agent.lr_actor or check the dataset.")
        self.use_compile(compile_mode)

    def use_compile(self, mode: str) -> None:
        """Run :meth:`step` in ``mode`` (``none``, ``compile`` or ``cudagraph``) from now on."""
        self.compile_mode = mode
        self._step_fn = compile_step(self.step, mode)

    def update(self, batch: TensorDict) -> dict[str, Tensor]:
        """One update (:meth:`step` as ``compile_mode`` runs it) on transitions ``batch`` ``[B]``."""
        out = self._step_fn(*self._unpack(batch))
        names = [*self.critic_terms, "critic grad_norm", *ACTOR_TERMS]
        self.nan_guard.record(out.pop("applied"), names, out.pop("finite"))
        self.nan_guard.check()  # the one host read of an update: stop at the first skipped step
        return _detached({f"train/{k}": v for k, v in out.items()})

    critic_terms: list[str]
    """Names of the terms the critic's step checks, in the order of its ``terms`` dict."""

    def step(self, obs: Tensor, action: Tensor, next_obs: Tensor, discount: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    def _guarded_step(
        self, opt: GuardedAdam, loss: Tensor, terms: dict[str, Tensor], ok_before: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``backward``, then the NaN decision on ``terms`` and the gradient norm (and ``ok_before``, an
        earlier step's decision), then ``opt.step(ok)``: ``(ok, finite)``; a non-finite value moves no
        parameter or moment."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for group in opt.param_groups for p in group["params"]]
        average_gradients(params)  # data-parallel: the mean over ranks (identity in one process)
        grads = [p.grad for p in params if p.grad is not None]
        grad_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        checked = mean_over_ranks({**terms, "grad_norm": grad_norm})  # every rank: the same decision
        ok, finite = all_finite(checked)
        if ok_before is not None:
            ok = ok & ok_before
        opt.step(ok)
        return ok, finite

    def _unpack(self, batch: TensorDict) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(obs, action, next_obs, discount)`` of a batch; frames randomly shifted (``augment_pad``),
        each observation by its own offset."""
        key = self.cfg.obs_key
        obs = self.augment(batch["observation", key])  # [B, *obs_shape]
        next_obs = self.augment(batch["next", "observation", key])
        action = batch["action"].float()  # [B, A]
        discount = self.cfg.discount * (~batch["next", "terminated"]).float().reshape(-1, 1)  # [B, 1]
        return obs, action, next_obs, discount

    @torch.no_grad()
    def mixed_z(self, goals: Tensor) -> Tensor:
        """``[B, d]``: uniform on the √d-sphere, a ``train_goal_ratio`` fraction replaced by the projection
        of ``goals`` ``[B, d]`` (embedded dataset states) in a random order."""
        n = goals.shape[0]
        z = self.model.sample_z(n, device=goals.device)
        perm = torch.randperm(n, device=goals.device)
        mask = torch.rand(n, 1, device=goals.device) < self.cfg.train_goal_ratio
        return torch.where(mask, project_z(goals[perm]), z)

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "target": self.target.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.target.load_state_dict(state["target"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])


class TDJEPAAgent(_ZeroShotAgent):
    """TD-JEPA training: both TD directions + encoder regularizer (orthonormality or SIGReg), then π."""

    model: TDJEPAModel
    critic_terms = ["td_phi", "td_psi", "reg_phi", "reg_psi"]

    def __init__(
        self, cfg, obs_shape: Sequence[int], action_dim: int, device: torch.device, compile_mode: str = "none"
    ):
        self.sigreg = SIGReg(num_slices=cfg.sigreg_slices).to(device) if cfg.regularizer == "sigreg" else None
        super().__init__(cfg, build_model(cfg, obs_shape, action_dim), device, compile_mode)
        m = self.model
        params = [*m.phi_encoder.parameters(), *m.psi_encoder.parameters()]
        params += [*m.phi_predictor.parameters(), *m.psi_predictor.parameters()]
        self.optimizers["critic"] = GuardedAdam(params, lr=cfg.lr)

    def state_dict(self) -> dict:
        # SIGReg's direction counter is saved too, so that a resumed run draws the same directions.
        return super().state_dict() | {"sigreg": self.sigreg.state_dict() if self.sigreg else None}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.sigreg is not None:
            self.sigreg.load_state_dict(state["sigreg"])

    def step(self, obs: Tensor, action: Tensor, next_obs: Tensor, discount: Tensor) -> dict:
        """Both TD directions + encoder regularizer, then the actor, then the targets' Polyak steps;
        ``obs``, ``next_obs`` ``[B, *obs_shape]``, ``action`` ``[B, A]``, ``discount`` ``[B, 1]``."""
        cfg, m, t = self.cfg, self.model, self.target
        with torch.no_grad():
            phi_next_t, psi_next_t = t.phi(next_obs), t.psi(next_obs)  # [B, d_φ], [B, d]
            z = self.mixed_z(m.psi(next_obs))  # [B, d]
            next_action = m.actor.sample(phi_next_t, z)  # a' ~ π(φ⁻(s'), z)
            next_pred_phi = t.phi_predictor(phi_next_t, next_action, z)  # [K, B, d]
            next_pred_psi = t.psi_predictor(psi_next_t, next_action, z)  # [K, B, d_φ]
        phi, psi = m.phi(obs), m.psi(obs)
        loss_phi, met_phi = td_jepa_td_loss(
            m.phi_predictor(phi, action, z), psi_next_t, next_pred_phi, discount
        )
        loss_psi, met_psi = td_jepa_td_loss(
            m.psi_predictor(psi, action, z), phi_next_t, next_pred_psi, discount
        )
        reg_phi, met_rphi = encoder_regularizer(phi, cfg.regularizer, self.sigreg)
        reg_psi, met_rpsi = encoder_regularizer(psi, cfg.regularizer, self.sigreg)
        loss = loss_phi + loss_psi + cfg.reg_coef * (reg_phi + reg_psi)
        terms = {"td_phi": loss_phi, "td_psi": loss_psi, "reg_phi": reg_phi, "reg_psi": reg_psi}
        ok_c, finite_c = self._guarded_step(self.optimizers["critic"], loss, terms)

        with torch.no_grad():
            phi_d = m.phi(obs)
        pred = m.phi_predictor(phi_d, m.actor.sample(phi_d, z), z)  # [K, B, d]
        loss_actor, met_actor = actor_loss(pred, z, cfg.actor_pessimism)
        actor_opt = self.optimizers["actor"]
        ok, finite_a = self._guarded_step(actor_opt, loss_actor, {"actor": loss_actor}, ok_c)

        polyak_update(t.phi_encoder, m.phi_encoder, cfg.tau_encoder, ok)
        polyak_update(t.psi_encoder, m.psi_encoder, cfg.tau_encoder, ok)
        polyak_update(t.phi_predictor, m.phi_predictor, cfg.tau_predictor, ok)
        polyak_update(t.psi_predictor, m.psi_predictor, cfg.tau_predictor, ok)
        metrics = _prefixed("td_phi", met_phi) | _prefixed("td_psi", met_psi) | met_actor
        metrics |= _prefixed("reg_phi", met_rphi) | _prefixed("reg_psi", met_rpsi)
        metrics |= {"loss": loss.detach(), "phi_norm": phi.norm(dim=-1).mean().detach()}
        metrics["psi_norm"] = psi.norm(dim=-1).mean().detach()
        return metrics | _decision(ok, finite_c, finite_a)


class FBAgent(_ZeroShotAgent):
    """FB training: the ``M = F Bᵀ`` TD loss + orthonormality of ``B``, then the actor."""

    model: FBModel
    critic_terms = ["fb", "orthonormality"]

    def __init__(
        self, cfg, obs_shape: Sequence[int], action_dim: int, device: torch.device, compile_mode: str = "none"
    ):
        super().__init__(cfg, build_model(cfg, obs_shape, action_dim), device, compile_mode)
        m = self.model
        params = [*m.forward_encoder.parameters(), *m.forward_map.parameters(), *m.backward_map.parameters()]
        self.optimizers["critic"] = GuardedAdam(params, lr=cfg.lr)

    def step(self, obs: Tensor, action: Tensor, next_obs: Tensor, discount: Tensor) -> dict:
        """The FB TD loss + orthonormality, then the actor, then the targets' Polyak steps (shapes as
        :meth:`TDJEPAAgent.step`)."""
        cfg, m, t = self.cfg, self.model, self.target
        with torch.no_grad():
            e_next_t, b_next_t = t.embed(next_obs), t.task_features(next_obs)  # [B, d_e], [B, d]
            z = self.mixed_z(m.task_features(next_obs))
            next_pred = t.forward_map(e_next_t, m.actor.sample(e_next_t, z), z)  # [K, B, d]
        b_next = m.task_features(next_obs)  # [B, d]
        loss_fb, met_fb = fb_loss(
            m.forward_map(m.embed(obs), action, z), b_next, next_pred, b_next_t, discount
        )
        loss_orth, met_orth = orthonormality_loss(b_next)
        loss = loss_fb + cfg.reg_coef * loss_orth
        terms = {"fb": loss_fb, "orthonormality": loss_orth}
        ok_c, finite_c = self._guarded_step(self.optimizers["critic"], loss, terms)

        with torch.no_grad():
            e = m.embed(obs)
        loss_actor, met_actor = actor_loss(m.forward_map(e, m.actor.sample(e, z), z), z, cfg.actor_pessimism)
        actor_opt = self.optimizers["actor"]
        ok, finite_a = self._guarded_step(actor_opt, loss_actor, {"actor": loss_actor}, ok_c)

        polyak_update(t.forward_encoder, m.forward_encoder, cfg.tau_predictor, ok)
        polyak_update(t.forward_map, m.forward_map, cfg.tau_predictor, ok)
        polyak_update(t.backward_map, m.backward_map, cfg.tau_encoder, ok)
        metrics = met_fb | met_orth | met_actor | {"loss": loss.detach()}
        return metrics | _decision(ok, finite_c, finite_a)


def make_zero_shot_agent(
    cfg, obs_shape: Sequence[int], action_dim: int, device: torch.device, compile_mode: str = "none"
):
    """:class:`TDJEPAAgent` (``cfg.name == "td_jepa"``) or :class:`FBAgent` (``"fb"``); ``compile_mode``
    resolved (:func:`jepa_agents.infra.compile.resolve_compile`)."""
    agents = {"td_jepa": TDJEPAAgent, "fb": FBAgent}
    if cfg.name not in agents:
        raise ValueError(f"unknown zero-shot agent {cfg.name!r}; choose one of {sorted(agents)}")
    return agents[cfg.name](cfg, obs_shape, action_dim, device, compile_mode)
