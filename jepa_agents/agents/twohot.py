"""DreamerV3's distributional critic: a categorical over symlog-spaced bins trained on two-hot targets.

``symlog(x) = sign(x) ln(1 + |x|)``, ``symexp`` its inverse. The critic outputs logits over ``K`` bins
``b_1 < … < b_K`` spaced evenly in symlog space (DreamerV3: 255 bins over ``[-20, 20]``); its value is
``v = symexp(Σ_k softmax(logits)_k b_k)``. A target ``y`` is encoded as the *two-hot* vector that puts
weights on the two bins around ``symlog(y)`` in proportion to their closeness (its expectation is exactly
``symlog(y)``), and the loss is the cross-entropy to it. Why: the gradient of a cross-entropy does not
grow with the size of the target, so a critic learns returns of 1 and of 1,000 at the same speed, where
a squared error on raw returns crawls towards large values (measured on the true cart-pole simulator,
docs/imagination.md). The output layer starts at zero (a uniform distribution, value 0), as DreamerV3's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa_agents.nn import MLP


def symlog(x: Tensor) -> Tensor:
    """``sign(x) · ln(1 + |x|)``."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: Tensor) -> Tensor:
    """The inverse of :func:`symlog`: ``sign(x) · (exp(|x|) - 1)``."""
    return torch.sign(x) * torch.expm1(x.abs())


def twohot(y: Tensor, bins: Tensor) -> Tensor:
    """Two-hot encoding ``[*, K]`` of ``y`` ``[*]`` (already in bin space) over sorted ``bins`` ``[K]``: the
    two bins around ``y`` weighted by closeness (a value outside the range goes to the end bin)."""
    y = y.clamp(bins[0], bins[-1])
    above = torch.searchsorted(bins, y.contiguous(), right=True).clamp(1, bins.numel() - 1)  # [*]
    below = above - 1
    lo, hi = bins[below], bins[above]
    w_hi = ((y - lo) / (hi - lo)).clamp(0.0, 1.0)  # [*]
    k = bins.numel()
    return F.one_hot(below, k) * (1.0 - w_hi)[..., None] + F.one_hot(above, k) * w_hi[..., None]


class TwoHotCritic(nn.Module):
    """``V(z)``: an MLP to logits over ``num_bins`` symlog-spaced bins in ``[-limit, limit]`` (module doc)."""

    def __init__(self, latent_dim: int, hidden: Sequence[int], num_bins: int = 255, limit: float = 20.0):
        super().__init__()
        if num_bins < 2:
            raise ValueError(f"a two-hot critic needs at least 2 bins, got {num_bins}")
        self._mlp = MLP(latent_dim, hidden, num_bins, "relu")
        last = [m for m in self._mlp.modules() if isinstance(m, nn.Linear)][-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.register_buffer("bins", torch.linspace(-limit, limit, num_bins))

    def logits(self, z: Tensor) -> Tensor:
        """``z [*, D] -> [*, K]``."""
        return self._mlp(z)

    def value(self, logits: Tensor) -> Tensor:
        """The value ``[*]`` of a distribution given by ``logits [*, K]``."""
        return symexp((logits.softmax(-1) * self.bins).sum(-1))

    def forward(self, z: Tensor) -> Tensor:
        """``z [*, D] -> V(z) [*, 1]`` (the interface of a scalar critic)."""
        return self.value(self.logits(z))[..., None]

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy ``[*]`` of ``logits [*, K]`` against the two-hot encoding of ``symlog(target)``
        (``target [*]``, no gradient)."""
        return -(twohot(symlog(target.detach()), self.bins) * logits.log_softmax(-1)).sum(-1)
