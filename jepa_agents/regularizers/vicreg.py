"""VICReg variance + covariance regularizer (Bardes, Ponce & LeCun 2022), same interface as SIGReg.

For embeddings ``Z`` ``[N, D]`` with per-dimension std ``s_j`` and covariance ``C``:

    var(Z) = (1/D) Σ_j relu(γ - s_j),        s_j = sqrt(Var(Z_j) + ε)
    cov(Z) = (1/D) Σ_{i≠j} C_ij²,            C = (Z - mean)ᵀ (Z - mean) / (N - 1)
    VICReg(Z) = var_weight · var(Z) + cov_weight · cov(Z)

``[T, N, D]`` inputs are regularized per time step and averaged over ``T``. The default weights keep
VICReg's 25:1 ratio of variance to covariance. Under ``torch.distributed`` the statistics are those of
the global batch (every rank's rows, :func:`~jepa_agents.infra.distributed.gather_rows`). Needs ``N >= 2``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from jepa_agents.infra.distributed import gather_rows


class VICReg(nn.Module):
    """``forward(z [N, D] | [T, N, D]) -> scalar`` (equation in the module docstring)."""

    def __init__(
        self, var_weight: float = 1.0, cov_weight: float = 0.04, gamma: float = 1.0, eps: float = 1e-4
    ):
        super().__init__()
        self.var_weight = var_weight
        self.cov_weight = cov_weight
        self.gamma = gamma
        self.eps = eps

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim not in (2, 3):
            raise ValueError(f"VICReg expects embeddings [N, D] or [T, N, D], got shape {tuple(z.shape)}")
        z = gather_rows(z) if z.ndim == 2 else gather_rows(z.transpose(0, 1)).transpose(0, 1)
        n, d = z.shape[-2], z.shape[-1]
        if n < 2:
            raise ValueError(f"VICReg needs a batch of at least 2 embeddings, got shape {tuple(z.shape)}")
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float()
            zc = z - z.mean(-2, keepdim=True)
            std = torch.sqrt(zc.square().sum(-2) / (n - 1) + self.eps)  # [..., D]
            var = torch.relu(self.gamma - std).mean(-1)  # [...]
            cov = zc.transpose(-1, -2) @ zc / (n - 1)  # [..., D, D]
            off = cov.square().sum((-1, -2)) - cov.diagonal(dim1=-2, dim2=-1).square().sum(-1)
            return (self.var_weight * var + self.cov_weight * off / d).mean()
