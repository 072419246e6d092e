"""The JEPA world-model loss, owned by the model: ``model.loss(obs, actions, ...)`` (:class:`JEPALoss`, a
base of :class:`~jepa_agents.world_models.base.LatentWorldModel`): K-step latent prediction +
anti-collapse regularizer (what SIGReg sees and its weight: :meth:`JEPALoss.loss`) + optional heads.

Metrics of ``loss`` (detached scalar tensors): ``wm/loss``, ``wm/pred_loss``, ``wm/reg``,
``wm/pred_error_k1..K`` and, when enabled, ``wm/reward_loss``, ``wm/continue_loss``, ``wm/value_loss``,
``wm/inverse_loss``;
with SIGReg, its two reference values at this batch size ``wm/reg_ref_gaussian`` (an isotropic Gaussian
batch, ≈1.06) and ``wm/reg_ref_collapsed`` (a batch collapsed to one point, ≈0.402·N); with
``diagnostics``, ``wm/sigreg``, ``wm/effective_rank``, ``wm/std_mean``, ``wm/std_min`` of what the
regularizer sees at step 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from jepa_agents.world_models.diagnostics import collapse_metrics


class JEPALoss:
    """Mixin of :class:`~jepa_agents.world_models.base.LatentWorldModel`: the loss it is trained by. The
    helpers below take that model (annotated by this mixin, its only base they may name here)."""

    def loss(
        self,
        obs: Tensor,
        actions: Tensor,
        *,
        rewards: Tensor | None = None,
        continues: Tensor | None = None,
        value_targets: Tensor | None = None,
        z: Tensor | None = None,
        diagnostics: bool = True,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """JEPA world-model loss; every switch and weight comes from ``self.cfg`` (a ``WorldModelConfig``).

            ẑ = self.predict_sequence(z, a)                       predictions of z_1..z_K     [B, K, D]
            L = (1/K) Σ_k mean_b ℓ(ẑ_k, z̄_k) + λ·R(z) + w_r·L_r + w_c·L_c + w_v·L_v + w_inv·L_inv

        with ``z = encode(obs)`` (random-shifted images; batch-normalized per dim when ``embed_norm=batch``,
        so scale collapse is not a solution and SIGReg's gradient is alive from the first update); targets
        ``z̄_k`` = ``z_k`` (``target=online``, with gradients: the default), ``sg(z_k)`` or the EMA encoder's;
        ``ℓ`` = the element-mean squared error (``mse``) or ``1 - cos``; ``R`` the regularizer on all
        ``N = B·(K+1)`` embeddings as one batch ``[N, D]``, averaged with ``R(ẑ)`` when
        ``regularize_predictions``; heads as :func:`_head_losses`.

        Args:
            obs: ``[B, K+1, *obs_shape]`` observations (uint8 images or float states).
            actions: ``[B, K, A]`` float, or ``[B, K]`` integer indices for discrete actions.
            rewards: ``[B, K]`` or ``[B, K, 1]``, needed when ``reward_weight > 0``.
            continues: ``1 - terminated`` ``[B, K]`` or ``[B, K, 1]``, needed when ``continue_weight > 0``.
            value_targets: ``[B, K+1]`` or ``[B, K+1, 1]``, needed when ``value_weight > 0``.
            z: precomputed online embeddings ``[B, K+1, D]`` of ``obs`` (e.g.
                ``model.encode(obs, augment=True)`` shared with an agent's critic); encoded here if ``None``.
            diagnostics: add collapse diagnostics of ``z[:, 0]`` (no gradients; one small SVD).

        Returns ``(loss, metrics)``: the scalar loss and the metrics listed in the module docstring.
        """
        cfg = self.cfg
        z = _embeddings(self, obs, z)  # [B, K+1, D]
        b, steps = obs.shape[0], obs.shape[1] - 1
        pred = self.predict_sequence(z, actions)  # [B, K, D]
        target = _targets(self, obs, z)  # [B, K, D]
        if cfg.pred_loss == "cosine":
            err = 1.0 - F.cosine_similarity(pred, target, dim=-1)  # [B, K]
        else:
            err = (pred - target).square().mean(-1)  # [B, K]
        per_step = err.mean(0)  # [K]
        pred_loss = per_step.mean()

        # one regularizer batch of all N = B·(K+1) embeddings (measured better than per-step batches of B)
        reg = self.regularize(z.reshape(-1, z.shape[-1]))  # [B·(K+1), D]
        if cfg.regularize_predictions:
            reg = 0.5 * (reg + self.regularize(pred.reshape(-1, pred.shape[-1])))
        loss = pred_loss + cfg.reg_weight * reg
        metrics = {"wm/pred_loss": pred_loss, "wm/reg": reg}
        metrics.update({f"wm/pred_error_k{k + 1}": per_step[k] for k in range(steps)})
        metrics.update(self.regularizer_references(b * (steps + 1)))

        head_loss, head_metrics = _head_losses(self, z, pred, actions, rewards, continues, value_targets)
        loss = loss + head_loss
        metrics.update(head_metrics, **{"wm/loss": loss})
        if diagnostics:
            metrics.update(collapse_metrics(z[:, 0].detach()))
        return loss, {k: v.detach() for k, v in metrics.items()}


def _embeddings(model: JEPALoss, obs: Tensor, z: Tensor | None) -> Tensor:
    """Check ``obs [B, K+1, *obs_shape]`` (and a given ``z``); ``z [B, K+1, D]``, encoded if ``None``."""
    if obs.ndim != 2 + len(model.obs_shape) or tuple(obs.shape[2:]) != model.obs_shape or obs.shape[1] < 2:
        raise ValueError(
            f"obs must be [B, K+1, {', '.join(map(str, model.obs_shape))}] with K >= 1, "
            f"got {tuple(obs.shape)}"
        )
    if z is None:
        return model.encode(obs, augment=True)
    if tuple(z.shape) != (*obs.shape[:2], model.latent_dim):
        raise ValueError(f"z must have shape {(*obs.shape[:2], model.latent_dim)}, got {tuple(z.shape)}")
    return z


def _targets(model: JEPALoss, obs: Tensor, z: Tensor) -> Tensor:
    """Prediction targets ``[B, K, D]``: ``z[:, 1:]`` (online), detached (stopgrad) or the EMA encoder's."""
    if model.cfg.target == "ema":
        return model.encode_target(obs[:, 1:], augment=True)
    if model.cfg.target == "stopgrad":
        return z[:, 1:].detach()
    return z[:, 1:]


def _head_losses(
    model: JEPALoss,
    z: Tensor,
    pred: Tensor,
    actions: Tensor,
    rewards: Tensor | None,
    continues: Tensor | None,
    value_targets: Tensor | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``w_r·L_r + w_c·L_c + w_v·L_v + w_inv·L_inv`` of the heads whose weight is > 0: reward ``r(s_k, a_k)``
    on ``s = [z_0, ẑ_1 .. ẑ_{K-1}]`` vs ``rewards``; continuation ``c(ẑ_{k+1})`` vs ``continues``
    (binary cross-entropy on logits); value ``v(z_k)`` vs ``value_targets``; inverse dynamics
    ``g(z_k, z_{k+1})`` vs ``a_k`` (MSE, or cross-entropy for integer actions). ``z [B, K+1, D]``,
    ``pred [B, K, D]``; returns ``(weighted sum, {wm/<head>_loss: unweighted})``."""
    cfg = model.cfg
    b, steps = pred.shape[:2]
    loss, metrics = z.new_zeros(()), {}
    if cfg.reward_weight > 0:
        if rewards is None:
            raise ValueError("world_model.reward_weight > 0 needs rewards [B, K]")
        states = torch.cat((z[:, :1], pred[:, :-1]), 1)  # [B, K, D]: latent where a_k is taken
        reward_loss = F.mse_loss(model.reward(states, actions), rewards.reshape(b, steps).float())
        loss = loss + cfg.reward_weight * reward_loss
        metrics["wm/reward_loss"] = reward_loss
    if cfg.continue_weight > 0:
        if continues is None:
            raise ValueError("world_model.continue_weight > 0 needs continues [B, K]")
        logits = model.continue_logits(pred)  # [B, K]: after a_k
        continue_loss = F.binary_cross_entropy_with_logits(logits, continues.reshape(b, steps).float())
        loss = loss + cfg.continue_weight * continue_loss
        metrics["wm/continue_loss"] = continue_loss
    if cfg.value_weight > 0:
        if value_targets is None:
            raise ValueError("world_model.value_weight > 0 needs value_targets [B, K+1]")
        value_loss = F.mse_loss(model.value(z), value_targets.reshape(b, steps + 1).float())
        loss = loss + cfg.value_weight * value_loss
        metrics["wm/value_loss"] = value_loss
    if cfg.inverse_weight > 0:
        out = model.inverse_action(z[:, :-1], z[:, 1:])  # [B, K, A]
        if actions.is_floating_point():
            inverse_loss = F.mse_loss(out, actions.float())
        else:
            inverse_loss = F.cross_entropy(out.reshape(b * steps, -1), actions.reshape(-1).long())
        loss = loss + cfg.inverse_weight * inverse_loss
        metrics["wm/inverse_loss"] = inverse_loss
    return loss, metrics
