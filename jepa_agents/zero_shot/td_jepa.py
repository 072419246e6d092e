"""TD-JEPA model (Tirinzoni et al. 2025): encoders, policy-conditioned predictors, policy, inference.

Networks (``d_φ`` = ``phi_dim``, ``d`` = ``z_dim`` = the task space = ψ-space):

* state encoder ``φ(s)`` ``[B, d_φ]`` and task encoder ``ψ(s)`` ``[B, d]`` (MLP on states; CNN trunk + MLP
  head on pixels);
* predictors ``T_φ(φ(s), a, z) -> ψ-space`` ``[K, B, d]`` and ``T_ψ(ψ(s), a, z) -> φ-space`` ``[K, B, d_φ]``
  (ensembles of ``K`` MLPs on ``[x, a, z]``), trained so that
  ``T_φ(φ(s), a, z) ≈ E_π_z[Σ_t γ^t ψ(s_{t+1})]`` (successor features of ψ under the policy ``π_z``);
* policy ``π(φ(s), z)``: deterministic ``tanh`` mean, Gaussian exploration noise ``std`` clipped at ``clip``.

Zero-shot inference: for a reward ``r(s') ≈ ψ(s')ᵀ w`` the Q-function of ``π_z`` is ``T_φ(φ(s), a, z)ᵀ w``, so
``z = √d · w / |w|`` with ``w`` the least-squares fit of ``r`` on ``ψ(s')`` (:meth:`infer_z_from_rewards`;
``rule="mean"``: ``w = mean_i r_i ψ(s'_i)`` instead, FB's rule, measured better on the maze, docs);
a goal ``g`` gives ``z = ψ(g)`` projected (:meth:`infer_z_from_goal`). The building blocks (encoder, ensemble
predictor, actor, sphere projection, reward checks) are shared with :mod:`jepa_agents.zero_shot.fb`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa_agents.nn import MLP, make_encoder
from jepa_agents.zero_shot.config import NETWORKS
from jepa_agents.zero_shot.two_stream import TwoStream


def _check_network(network: str) -> None:
    if network not in NETWORKS:
        raise ValueError(f"unknown network layout {network!r}; choose one of {NETWORKS}")


class DegenerateTaskError(ValueError):
    """Rewards from which no task embedding can be inferred (non-finite, constant, or a zero fit)."""


def project_z(z: Tensor) -> Tensor:
    """Project ``z`` ``[..., d]`` onto the sphere of radius ``√d``: ``√d · z / |z|``."""
    return math.sqrt(z.shape[-1]) * F.normalize(z, dim=-1)


def check_rewards(rewards: Tensor, task: str = "the task") -> Tensor:
    """``rewards`` ``[N]`` or ``[N, 1]`` -> float ``[N]``; non-finite or constant rewards raise."""
    r = rewards.reshape(-1).float()
    if r.numel() < 2:
        raise DegenerateTaskError(f"{task}: need at least 2 reward samples to infer z, got {r.numel()}")
    bad = int((~torch.isfinite(r)).sum())
    if bad:
        raise DegenerateTaskError(f"{task}: {bad} of {r.numel()} rewards are NaN or infinite; cannot infer z")
    spread = float(r.max() - r.min())
    if spread <= 1e-8 * max(1.0, float(r.abs().max())):
        raise DegenerateTaskError(
            f"{task}: all {r.numel()} rewards equal {float(r[0]):.6g}; a constant reward has no "
            "optimal policy to infer (check the reward function or sample transitions where it varies)"
        )
    return r


def checked_z(w: Tensor, task: str) -> Tensor:
    """Project a fitted ``w`` ``[d]`` to the sphere; a non-finite or (numerically) zero ``w`` raises."""
    norm = float(w.norm())
    if not math.isfinite(norm) or norm < 1e-8:
        raise DegenerateTaskError(f"{task}: the reward fit gave |w| = {norm:.3g}; z would be meaningless")
    return project_z(w)


class Encoder(nn.Module):
    """``obs -> [*, dim]``: identity (states ``[*, S]``) or CNN trunk (pixels ``[*, C, H, W]``), then an MLP
    head (LayerNorm + ReLU); with ``norm`` the output is projected on the sphere of radius ``√dim``."""

    def __init__(
        self,
        obs_shape: Sequence[int],
        dim: int,
        hidden: Sequence[int],
        norm: bool,
        cnn: str = "small_cnn",
        cnn_dim: int = 256,
    ):
        super().__init__()
        obs_shape = tuple(obs_shape)
        if len(obs_shape) == 1:
            self.trunk: nn.Module = nn.Identity()
            in_dim = obs_shape[0]
        else:
            self.trunk = make_encoder(cnn, obs_shape, cnn_dim)
            in_dim = cnn_dim
        self.head = MLP(in_dim, hidden, dim, activation="relu", layer_norm=True)
        self.norm, self.dim, self.obs_shape = norm, dim, obs_shape

    def forward(self, obs: Tensor) -> Tensor:
        x = self.trunk(obs) if obs.dtype == torch.uint8 else self.trunk(obs.float())
        out = self.head(x)  # [*, dim]
        return project_z(out) if self.norm else out


class Predictor(nn.Module):
    """Ensemble of ``num`` networks ``(x [B, D_in], a [B, A], z [B, d]) -> [num, B, out]``: MLPs on
    ``[x, a, z]`` (``network="flat"``, LayerNorm + ReLU) or two-stream networks on ``[x, a]`` and ``[x, z]``
    (``"two_stream"``, the reference's)."""

    def __init__(
        self,
        in_dim: int,
        action_dim: int,
        z_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        num: int,
        network: str = "flat",
    ):
        super().__init__()
        if num < 1:
            raise ValueError(f"an ensemble needs num >= 1 members, got {num}")
        _check_network(network)
        self.network = network
        if network == "flat":
            members = (
                MLP(in_dim + action_dim + z_dim, hidden, out_dim, activation="relu", layer_norm=True)
                for _ in range(num)
            )
        else:
            members = (TwoStream(in_dim + action_dim, in_dim + z_dim, hidden, out_dim) for _ in range(num))
        self.members = nn.ModuleList(members)

    def forward(self, x: Tensor, action: Tensor, z: Tensor) -> Tensor:
        if self.network == "flat":
            inp = torch.cat([x, action, z], dim=-1)  # [B, D_in + A + d]
            return torch.stack([m(inp) for m in self.members])  # [K, B, out]
        xa, xz = torch.cat([x, action], dim=-1), torch.cat([x, z], dim=-1)  # [B, D_in + A], [B, D_in + d]
        return torch.stack([m(xa, xz) for m in self.members])  # [K, B, out]


class Actor(nn.Module):
    """``π(x, z)``: ``tanh(MLP([x, z]))`` (``network="flat"``) or ``tanh(TwoStream(x, [x, z]))``
    (``"two_stream"``) ``[B, A]``, plus clipped Gaussian noise when sampling, with a straight-through clamp
    to the action box (as the reference code's truncated normal)."""

    def __init__(
        self,
        in_dim: int,
        z_dim: int,
        action_dim: int,
        hidden: Sequence[int],
        std: float,
        clip: float,
        network: str = "flat",
    ):
        super().__init__()
        _check_network(network)
        self.network = network
        if network == "flat":
            self.net: nn.Module = MLP(in_dim + z_dim, hidden, action_dim, activation="relu", layer_norm=True)
        else:
            self.net = TwoStream(in_dim, in_dim + z_dim, hidden, action_dim)
        self.std, self.clip = std, clip

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        xz = torch.cat([x, z], dim=-1)  # [B, D_in + d]
        return torch.tanh(self.net(xz) if self.network == "flat" else self.net(x, xz))  # [B, A]

    def sample(self, x: Tensor, z: Tensor) -> Tensor:
        """``a = μ + clamp(std·ε, ±clip)``, returned as ``clamp(a, ±1)`` in the forward pass but with the
        gradient of ``a`` (straight-through): a hard clamp gave no actor gradient to the 41-43 % of
        action components that the noise pushed outside the box. ``[B, A]``."""
        mean = self(x, z)
        noise = (torch.randn_like(mean) * self.std).clamp(-self.clip, self.clip)
        action = mean + noise
        return action + (action.clamp(-1.0, 1.0) - action).detach()


class ZeroShotModel(nn.Module):
    """What TD-JEPA and FB share: a policy ``π(embed(s), z)``, task vectors on the sphere of radius ``√d``.

    Subclasses define ``z_dim``, ``actor``, ``embed(obs)`` (the policy's input) and ``task_features(obs)``
    (what rewards are regressed on and goals embedded with).
    """

    z_dim: int
    actor: nn.Module

    def embed(self, obs: Tensor) -> Tensor:
        raise NotImplementedError

    def task_features(self, obs: Tensor) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def act(self, obs: Tensor, z: Tensor, mean: bool = True) -> Tensor:
        """Actions ``[B, A]`` of ``π(embed(s), z)`` (``z`` ``[B, d]`` or ``[d]``); the mean when ``mean``."""
        x = self.embed(obs)
        z = z.expand(x.shape[0], -1) if z.ndim == 1 else z
        return self.actor(x, z) if mean else self.actor.sample(x, z)

    def sample_z(self, n: int, device: torch.device | str = "cpu") -> Tensor:
        """``n`` task vectors uniform on the sphere of radius ``√d`` ``[n, d]``."""
        return project_z(torch.randn(n, self.z_dim, device=device))

    def reward_weights(self, next_obs: Tensor, rewards: Tensor) -> Tensor:
        """The unprojected ``w`` with ``Q_r(s, a) = successor(s, a, z)ᵀ w``: ``rewards`` ``[N]`` -> ``[d]``,
        ``[N, k]`` -> ``[k, d]``."""
        raise NotImplementedError

    @torch.no_grad()
    def mean_reward_weights(self, next_obs: Tensor, rewards: Tensor) -> Tensor:
        """``w = (1/N) Σ_i r_i f(s'_i)``, ``f`` = :meth:`task_features` (FB's rule): ``rewards`` ``[N]`` ->
        ``[d]``, or ``[N, k]`` -> ``[k, d]``."""
        feats = self.task_features(next_obs)  # [N, d]
        r = rewards.to(feats).reshape(feats.shape[0], -1)  # [N, k]
        w = r.T @ feats / feats.shape[0]  # [k, d]
        return w[0] if rewards.ndim == 1 else w

    def successor(self, obs: Tensor, action: Tensor, z: Tensor) -> Tensor:
        """Predicted successor features ``[B, d]`` of ``π_z`` (ensemble mean), the left factor of ``Q``."""
        raise NotImplementedError

    @torch.no_grad()
    def infer_z_from_rewards(
        self, next_obs: Tensor, rewards: Tensor, task: str = "the task", rule: str = "own"
    ) -> Tensor:
        """``z = √d w/|w|`` ``[d]``; ``next_obs`` ``[N, *obs_shape]``, ``rewards`` ``[N]``. ``rule``: ``own``
        (``w`` = :meth:`reward_weights`, the method's rule) or ``mean`` (:meth:`mean_reward_weights`, FB's
        rule for any model). NaN, constant rewards or a zero fit raise
        :class:`DegenerateTaskError`."""
        rules = {"own": self.reward_weights, "mean": self.mean_reward_weights}
        if rule not in rules:
            raise ValueError(f"unknown z inference rule {rule!r}; choose own or mean")
        w = rules[rule](next_obs, check_rewards(rewards, task).to(next_obs.device))  # [d]
        return checked_z(w, task).to(next_obs.device)


class TDJEPAModel(ZeroShotModel):
    """Networks and zero-shot inference of TD-JEPA (see the module docstring). ``obs`` is one observation
    tensor (``state`` ``[B, S]`` or ``pixels`` ``[B, C, H, W]``) of shape ``obs_shape`` (no batch dims)."""

    def __init__(
        self,
        obs_shape: Sequence[int],
        action_dim: int,
        *,
        phi_dim: int,
        z_dim: int,
        encoder_hidden: Sequence[int],
        encoder_norm: bool,
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
        enc = dict(norm=encoder_norm, cnn=cnn, cnn_dim=cnn_dim)
        phi_hidden = encoder_hidden if phi_encoder_hidden is None else phi_encoder_hidden
        self.phi_encoder = Encoder(obs_shape, phi_dim, phi_hidden, **enc)
        self.psi_encoder = Encoder(obs_shape, z_dim, encoder_hidden, **enc)
        pred = dict(hidden=predictor_hidden, num=num_predictors, network=network)
        self.phi_predictor = Predictor(phi_dim, action_dim, z_dim, out_dim=z_dim, **pred)
        self.psi_predictor = Predictor(z_dim, action_dim, z_dim, out_dim=phi_dim, **pred)
        self.actor = Actor(phi_dim, z_dim, action_dim, actor_hidden, actor_std, actor_clip, network)

    def phi(self, obs: Tensor) -> Tensor:
        return self.phi_encoder(obs)  # [B, d_φ]

    def embed(self, obs: Tensor) -> Tensor:
        """The policy's input: ``φ(s)`` ``[B, d_φ]``."""
        return self.phi(obs)

    def psi(self, obs: Tensor) -> Tensor:
        return self.psi_encoder(obs)  # [B, d]

    def task_features(self, obs: Tensor) -> Tensor:
        """The features rewards are regressed on and goals embedded with: ``ψ(s)`` ``[B, d]``."""
        return self.psi(obs)

    @torch.no_grad()
    def reward_weights(self, next_obs: Tensor, rewards: Tensor) -> Tensor:
        """``w = argmin_w |ψ(s') w - r|²`` (least squares in float64 over the ``N`` samples): ``rewards``
        ``[N]`` -> ``[d]``, or ``[N, k]`` (k rewards at once) -> ``[k, d]``."""
        feats = self.task_features(next_obs).double().cpu()  # [N, d]
        r = rewards.double().cpu()
        w = torch.linalg.lstsq(feats, r.reshape(r.shape[0], -1)).solution.T  # [k, d]
        return (w[0] if rewards.ndim == 1 else w).float().to(next_obs.device)

    def successor(self, obs: Tensor, action: Tensor, z: Tensor) -> Tensor:
        """``T_φ(φ(s), a, z)`` averaged over the ensemble ``[B, d]`` ≈ ``E_π_z[Σ_t γ^t ψ(s_{t+1})]``."""
        return self.phi_predictor(self.phi(obs), action, z).mean(0)

    @torch.no_grad()
    def infer_z_from_goal(self, goal_obs: Tensor) -> Tensor:
        """``z = √d ψ(g)/|ψ(g)|`` for goal observations ``[*, *obs_shape]`` -> ``[*, d]``."""
        return project_z(self.task_features(goal_obs))
