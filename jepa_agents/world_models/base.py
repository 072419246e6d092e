"""Parts shared by the JEPA world models: encoder, augmentation, EMA target, regularizer, heads."""

from __future__ import annotations

import abc
import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa_agents.infra.polyak import polyak_update
from jepa_agents.nn import MLP, EmbeddingNorm, RandomShift, make_encoder
from jepa_agents.regularizers import SIGReg, make_regularizer
from jepa_agents.world_models.config import WorldModelConfig
from jepa_agents.world_models.loss import JEPALoss


class EncoderStack(nn.Module):
    """What every agent's encoder is, with or without a world model: ``obs -> z [*, D]`` through the
    random shift (images, ``augment_pad``), the encoder (``world_model.encoder``, orthogonal init) and the
    embedding normalization (``embed_norm``). ``world_model=none`` builds this alone, so the no-world-model
    ablation differs from the world-model rows only in the missing loss (``tests/test_ablation_rows.py``).
    """

    def __init__(self, cfg: WorldModelConfig, obs_shape: Sequence[int]):
        super().__init__()
        self.cfg = cfg
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.latent_dim = cfg.latent_dim
        enc_kwargs = {"channels": tuple(cfg.encoder_channels)} if cfg.encoder_channels else {}
        pixels = len(self.obs_shape) == 3
        if pixels:
            enc_kwargs["precision"] = cfg.precision
        self._encoder = make_encoder(cfg.encoder, self.obs_shape, cfg.latent_dim, **enc_kwargs)
        self._norm = EmbeddingNorm(cfg.latent_dim) if cfg.embed_norm == "batch" else None
        self._augment = RandomShift(cfg.augment_pad) if pixels and cfg.augment_pad > 0 else nn.Identity()

    def encode(self, obs: Tensor, augment: bool = False, running_stats: bool = False) -> Tensor:
        """``obs [*, *obs_shape] -> z [*, D]``; random-shifts images first when ``augment`` and training.

        With ``embed_norm=batch`` the output is batch-normalized over every leading dim (training mode:
        the batch's statistics, which also update the running ones; eval mode or ``running_stats``: the
        running statistics, so acting on one observation is deterministic given the state, and an
        on-policy learner sees the same embedding when acting and when recomputing log-probabilities).
        """
        z = self._encoder(self._augment(obs) if augment else obs)
        return z if self._norm is None else self._norm(z, running=running_stats)


class LatentWorldModel(EncoderStack, JEPALoss, abc.ABC):
    """Encoder ``obs -> z [*, D]`` plus everything a latent-predictive loss needs besides the predictor.

    Built from ``(cfg, obs_shape, action_dim, discrete)``: ``obs_shape`` has no batch dims (``[C, H, W]``
    images or ``[S]`` states); ``action_dim`` is ``A`` (the number of actions when ``discrete``).
    Actions are float ``[..., A]`` (continuous, or one-hot when discrete) or integer indices ``[...]``
    (discrete only; one-hot encoded inside).

    Subclasses implement ``predict_sequence(z [B, K+1, D], actions [B, K, ...]) -> [B, K, D]``, the
    predictions of ``z[:, 1:]`` that its loss (``model.loss``, :mod:`~jepa_agents.world_models.loss`)
    compares with the targets.
    """

    def __init__(self, cfg: WorldModelConfig, obs_shape: Sequence[int], action_dim: int, discrete: bool):
        super().__init__(cfg, obs_shape)
        self.action_dim = int(action_dim)
        self.discrete = bool(discrete)
        self._target_encoder = None
        if cfg.target == "ema":
            self._target_encoder = copy.deepcopy(self._encoder).requires_grad_(False)
        reg_kwargs = {"num_slices": cfg.num_slices} if cfg.regularizer == "sigreg" else {}
        self._regularizer = make_regularizer(cfg.regularizer, **reg_kwargs)
        self._projector = (
            MLP(cfg.latent_dim, cfg.projector_hidden, cfg.latent_dim, "relu", batch_norm=True)
            if cfg.projector_hidden and cfg.regularizer != "none"
            else None
        )
        d, a, hidden = cfg.latent_dim, self.action_dim, cfg.head_hidden
        self._reward_head = MLP(d + a, hidden, 1, "elu", True) if cfg.reward_weight > 0 else None
        self._continue_head = MLP(d, hidden, 1, "elu", True) if cfg.continue_weight > 0 else None
        self._value_head = MLP(d, hidden, 1, "elu", True) if cfg.value_weight > 0 else None
        self._inverse_head = MLP(2 * d, hidden, a, "elu", True) if cfg.inverse_weight > 0 else None

    @torch.no_grad()
    def encode_target(self, obs: Tensor, augment: bool = False) -> Tensor:
        """EMA target encoder (``target=ema`` only): ``obs [*, *obs_shape] -> z [*, D]``, no gradient;
        normalized with its own batch statistics when ``embed_norm=batch`` (running ones untouched)."""
        if self._target_encoder is None:
            raise RuntimeError(f"encode_target needs world_model.target='ema', got {self.cfg.target!r}")
        z = self._target_encoder(self._augment(obs) if augment else obs)
        return z if self._norm is None else self._norm.batch_only(z)

    @torch.no_grad()
    def update_target(self, tau: float | None = None, ok: Tensor | None = None) -> None:
        """EMA step ``θ_target <- (1 - τ)·θ_target + τ·θ_online`` (``τ = cfg.ema_tau`` by default); with a
        0-d bool ``ok`` (the learner's NaN decision), the identity where ``ok`` is false."""
        if self._target_encoder is None:
            raise RuntimeError(f"update_target needs world_model.target='ema', got {self.cfg.target!r}")
        tau = self.cfg.ema_tau if tau is None else tau
        polyak_update(self._target_encoder, self._encoder, tau, ok)
        for bt, bo in zip(self._target_encoder.buffers(), self._encoder.buffers()):
            bt.copy_(bo)

    def regularize(self, z: Tensor) -> Tensor:
        """The configured regularizer (SIGReg/VICReg/zero) of ``z [N, D]`` or ``[T, N, D]`` -> scalar,
        applied to the projector's output ``g(z)`` when ``projector_hidden`` is set."""
        return self._regularizer(z if self._projector is None else self._projector(z))

    def regularizer_references(self, n: int) -> dict[str, Tensor]:
        """SIGReg's reference values at batch size ``n`` (``{}`` for other regularizers):
        ``wm/reg_ref_gaussian`` (expected statistic of an isotropic Gaussian batch) and
        ``wm/reg_ref_collapsed`` (a batch at one point, the value a scale-collapsed embedding gives)."""
        if not isinstance(self._regularizer, SIGReg):
            return {}
        return {
            "wm/reg_ref_gaussian": self._regularizer.gaussian_reference(),
            "wm/reg_ref_collapsed": self._regularizer.collapsed_reference(n),
        }

    # ------------------------------------------------------------------------------------ actions
    def action_input(self, actions: Tensor, lead: Sequence[int]) -> Tensor:
        """Check ``actions`` against the batch dims ``lead`` and return float ``[*lead, A]``."""
        lead = tuple(lead)
        if self.discrete and not actions.is_floating_point():
            if tuple(actions.shape) != lead:
                raise ValueError(
                    f"discrete action indices must have shape {lead}, got {tuple(actions.shape)}"
                )
            return F.one_hot(actions.long(), self.action_dim).float()
        if tuple(actions.shape) != (*lead, self.action_dim):
            raise ValueError(
                f"actions must have shape {(*lead, self.action_dim)} (float; integer indices [{lead}] for "
                f"discrete actions), got {tuple(actions.shape)}"
            )
        return actions.float()

    # -------------------------------------------------------------------------------------- heads
    def reward(self, z: Tensor, actions: Tensor) -> Tensor:
        """Reward head ``r(z, a)``: ``z [*, D]``, actions ``[*, A]`` or ``[*]`` -> ``[*]``."""
        head = self._require(self._reward_head, "reward_weight")
        return head(torch.cat((z, self.action_input(actions, z.shape[:-1])), -1)).squeeze(-1)

    def continue_logits(self, z: Tensor) -> Tensor:
        """Continuation head: logit of ``P(episode goes on after reaching z)``, ``z [*, D] -> [*]``."""
        return self._require(self._continue_head, "continue_weight")(z).squeeze(-1)

    def value(self, z: Tensor) -> Tensor:
        """Value head ``v(z)``: ``z [*, D] -> [*]``."""
        return self._require(self._value_head, "value_weight")(z).squeeze(-1)

    def inverse_action(self, z: Tensor, z_next: Tensor) -> Tensor:
        """Inverse dynamics ``g(z, z')``: ``[*, D], [*, D] -> [*, A]`` (tanh means, or logits if discrete)."""
        out = self._require(self._inverse_head, "inverse_weight")(torch.cat((z, z_next), -1))
        return out if self.discrete else torch.tanh(out)

    @staticmethod
    def _require(head: nn.Module | None, weight: str) -> nn.Module:
        if head is None:
            raise RuntimeError(f"this head is built only when world_model.{weight} > 0")
        return head

    @abc.abstractmethod
    def predict_sequence(self, z: Tensor, actions: Tensor) -> Tensor:
        """Predict ``z[:, 1:]``:
        ``z [B, K+1, D]``, actions ``[B, K, A]`` or ``[B, K]`` -> ``[B, K, D]``.
        """
