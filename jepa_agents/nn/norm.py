"""Batch normalization of embeddings ``[*, D]`` (any number of leading dims); under ``torch.distributed``
the moments are those of the global batch (every rank's rows)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa_agents.infra.distributed import global_sum, world_size


class EmbeddingNorm(nn.BatchNorm1d):
    """``z [*, D] -> (z - μ) / sqrt(σ² + ε)`` per dim, without affine parameters.

    Training mode: ``μ, σ²`` are the statistics of every row of ``z`` (all leading dims flattened, so a
    ``[B, T, D]`` sequence batch is normalized over its ``B·T`` rows) and update the running statistics
    (momentum 0.1); eval mode: the running statistics. The running statistics are buffers, so they are
    saved with the module's state dict.
    """

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(dim, eps=eps, momentum=momentum, affine=False)

    def forward(self, z: Tensor, running: bool = False) -> Tensor:  # type: ignore[override]
        """``running``: use the running statistics even in training mode (gradients still reach ``z``)."""
        flat = z.reshape(-1, z.shape[-1])
        if running:
            out = F.batch_norm(flat, self.running_mean, self.running_var, training=False, eps=self.eps)
            return out.reshape(z.shape)
        if self.training and flat.shape[0] < 2:
            raise ValueError(
                f"batch normalization of embeddings in training mode needs at least 2 rows, got shape "
                f"{tuple(z.shape)}: call model.eval() to encode a single observation with the running "
                "statistics (as when acting)"
            )
        if self.training and world_size() > 1:  # eval mode: the running statistics, per rank
            return self._global(flat).reshape(z.shape)
        return super().forward(flat).reshape(z.shape)

    def _global(self, flat: Tensor) -> Tensor:
        """Training-mode normalization with the moments of every rank's rows ``[N_r, D]`` (differentiable
        sums over ranks, two passes as ``batch_norm``); running statistics updated as in one process."""
        n = global_sum(flat.new_tensor(float(flat.shape[0])))
        mean = global_sum(flat.sum(0)) / n  # [D]
        var = global_sum((flat - mean).square().sum(0)) / n  # biased, as batch_norm normalizes
        with torch.no_grad():  # through .data, as batch_norm's kernel: a graph that read the running
            # statistics (forward(running=True)) earlier in this update stays valid
            self.num_batches_tracked.data += 1
            self.running_mean.data.lerp_(mean.detach(), self.momentum)
            self.running_var.data.lerp_(var.detach() * n / (n - 1), self.momentum)
        return (flat - mean) * torch.rsqrt(var + self.eps)

    def batch_only(self, z: Tensor) -> Tensor:
        """Normalize with the batch's own statistics and leave the running statistics unchanged."""
        flat = z.reshape(-1, z.shape[-1])
        return F.batch_norm(flat, None, None, training=True, eps=self.eps).reshape(z.shape)
