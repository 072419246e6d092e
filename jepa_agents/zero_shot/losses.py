"""Losses of TD-JEPA and FB: pure functions of tensors returning ``(loss, metrics)``.

Shapes: ``K`` ensemble members, ``B`` batch, ``D`` output space, ``d`` task space. ``discount`` ``[B, 1]`` is
``γ·(1 - terminated)``. ``metrics`` values are detached 0-d tensors. Under ``torch.distributed`` the
losses that pair samples (orthonormality, FB) are computed on the global batch
(:func:`~jepa_agents.infra.distributed.gather_rows`); the TD-JEPA and actor losses are per-sample means.
"""

from __future__ import annotations

from torch import Tensor, nn

from jepa_agents.infra.distributed import gather_rows, world_size

Metrics = dict[str, Tensor]


def td_jepa_td_loss(
    pred: Tensor, next_target: Tensor, next_pred_target: Tensor, discount: Tensor
) -> tuple[Tensor, Metrics]:
    """TD loss of a policy-conditioned predictor (one direction of TD-JEPA).

    For ``T_φ``: ``pred = T_φ(φ(s), a, z)`` ``[K, B, D]``, ``next_target = ψ⁻(s')`` ``[B, D]`` and
    ``next_pred_target = T_φ⁻(φ⁻(s'), a', z)`` ``[K, B, D]`` with ``a' ~ π(φ⁻(s'), z)``; the symmetric
    direction swaps the roles (``T_ψ(ψ(s), a, z)``, ``φ⁻(s')``, ``T_ψ⁻(ψ⁻(s'), a', z)``)::

        y = next_target + discount · mean_k next_pred_target_k                 # [B, D]
        L = mean_{k, b} |pred_{k,b} - y_b|²
    """
    target = next_target + discount * next_pred_target.mean(0)  # [B, D]
    loss = (pred - target.detach()).square().sum(-1).mean()
    return loss, {"td_loss": loss.detach(), "td_target": target.mean().detach()}


def orthonormality_loss(enc: Tensor) -> tuple[Tensor, Metrics]:
    """The paper's orthonormality regularizer on embeddings ``enc`` ``[B, D]`` (``C = enc encᵀ`` ``[B, B]``)::

        L = -mean_i C_ii + ½ Σ_{i≠j} C_ij² / (B(B-1))

    a sample estimate of ``|E[φφᵀ] - I|²`` (up to a constant) that keeps the embedding from collapsing.
    """
    enc = gather_rows(enc)  # [B, D], the global batch under torch.distributed
    n = enc.shape[0]
    if n < 2:
        raise ValueError(f"the orthonormality loss needs a batch of at least 2 embeddings, got {n}")
    cov = enc @ enc.T  # [B, B]
    diag = -cov.diagonal().mean()
    off = 0.5 * (cov.square().sum() - cov.diagonal().square().sum()) / (n * (n - 1))
    return diag + off, {"orth_diag": diag.detach(), "orth_offdiag": off.detach()}


def encoder_regularizer(enc: Tensor, kind: str, sigreg: nn.Module | None = None) -> tuple[Tensor, Metrics]:
    """Anti-collapse term on encoder outputs ``[B, D]``: ``orthonormality`` (above), ``sigreg`` (the
    :class:`~jepa_agents.regularizers.SIGReg` module ``sigreg``: push ``enc`` toward ``N(0, I)``) or
    ``none``."""
    if kind == "orthonormality":
        return orthonormality_loss(enc)
    if kind == "sigreg":
        if sigreg is None:
            raise ValueError("encoder_regularizer(kind='sigreg') needs the SIGReg module")
        loss = sigreg(enc)
        return loss, {"sigreg": loss.detach()}
    if kind == "none":
        zero = enc.new_zeros(())
        return zero, {}
    raise ValueError(f"unknown encoder regularizer {kind!r}; choose orthonormality, sigreg or none")


def actor_loss(pred: Tensor, z: Tensor, pessimism: float = 0.0) -> tuple[Tensor, Metrics]:
    """Policy loss: maximize a pessimistic ``Q(s, π(s, z), z)`` over the ensemble.

    ``pred`` ``[K, B, d]`` (predictions at the policy's actions), ``z`` ``[B, d]``::

        Q_k,b = pred_k,bᵀ z_b                                           # [K, B]
        unc_b = Σ_{i≠j} |Q_i,b - Q_j,b| / (K(K-1))                      # mean gap between members
        L = -mean_b (mean_k Q_k,b - pessimism · unc_b)

    ``pessimism`` 0: the ensemble mean (td_jepa_public's default for both methods); 0.5 with K = 2: the
    minimum of the two members (metamotivo's FB default, ``actor_pessimism_penalty``).
    """
    qs = (pred * z).sum(-1)  # [K, B]
    q = qs.mean(0)  # [B]
    k = qs.shape[0]
    if pessimism > 0 and k > 1:
        unc = (qs.unsqueeze(0) - qs.unsqueeze(1)).abs().sum((0, 1)) / (k * k - k)  # [B]
        q = q - pessimism * unc
    loss = -q.mean()
    return loss, {"actor_loss": loss.detach(), "q": q.mean().detach()}


def fb_loss(
    F: Tensor, B: Tensor, target_F: Tensor, target_B: Tensor, discount: Tensor
) -> tuple[Tensor, Metrics]:
    """FB TD loss on ``M = F Bᵀ`` (successor-measure Bellman equation, sampled on a batch).

    ``F = F(e(s), a, z)`` ``[K, B, d]``, ``B = B(s')`` ``[B, d]``, ``target_F = F⁻(e⁻(s'), a', z)``
    ``[K, B, d]``, ``target_B = B⁻(s')`` ``[B, d]``::

        M_k = F_k Bᵀ,  M⁻ = mean_k F⁻_k B⁻ᵀ,  Δ_k = M_k - discount · M⁻          # [K, B, B]
        L = Σ_k [ ½ Σ_{i≠j} Δ_k,ij² / (B(B-1)) - mean_i Δ_k,ii ]

    (off-diagonal pairs are independent samples of ``s⁺``; the diagonal is the ``s⁺ = s'`` term).
    """
    if world_size() > 1:  # the global batch: every pair (i, j) of the concatenated batch
        F, target_F = (gather_rows(x.transpose(0, 1)).transpose(0, 1) for x in (F, target_F))
        B, target_B, discount = gather_rows(B), gather_rows(target_B), gather_rows(discount)
    n = B.shape[0]
    if n < 2:
        raise ValueError(f"the FB loss needs a batch of at least 2 transitions, got {n}")
    m = F @ B.T  # [K, B, B]
    target_m = (target_F @ target_B.T).mean(0)  # [B, B]
    diff = m - discount * target_m.detach()  # [K, B, B]
    diag = diff.diagonal(dim1=-2, dim2=-1)  # [K, B]
    off = 0.5 * (diff.square().sum((-2, -1)) - diag.square().sum(-1)).sum() / (n * (n - 1))
    on = -diag.mean(-1).sum()
    loss = off + on
    return loss, {
        "fb_loss": loss.detach(),
        "fb_offdiag": off.detach(),
        "fb_diag": on.detach(),
        "M": m.mean().detach(),
    }
