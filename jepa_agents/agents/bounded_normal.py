"""DreamerV3's continuous policy (``bounded_normal``): a Gaussian ``N(tanh(m), σ²)`` with
``σ = (σ_max - σ_min)·sigmoid(s + 2) + σ_min``, its samples clipped to the action box ``[-1, 1]``.

Unlike the tanh-Gaussian (SAC's policy), the sample is not squashed: an untrained policy (mean near 0,
``σ ≈ 0.89`` from the ``+2`` shift) already pushes with actions near the bounds, and ``log π`` is the
plain Gaussian's of the unclipped sample. The last layer starts small (DreamerV3's ``outscale 0.01``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from jepa_agents.nn import MLP

_HALF_LOG_2PI_E = 0.5 * math.log(2 * math.pi * math.e)


def normal_log_prob(mean: Tensor, std: Tensor, u: Tensor) -> Tensor:
    """``log N(u; mean, std²)`` summed over the action dimensions: ``[*, A] -> [*]``."""
    return (-0.5 * ((u - mean) / std).square() - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)


def normal_entropy(std: Tensor) -> Tensor:
    """Entropy of the diagonal Gaussian: ``[*, A] -> [*]``."""
    return (std.log() + _HALF_LOG_2PI_E).sum(-1)


class BoundedNormalActor(nn.Module):
    """``π(a|z)`` of DreamerV3 (module docstring): an MLP to ``(mean [*, A], std [*, A])``."""

    def __init__(
        self, latent_dim: int, action_dim: int, hidden: Sequence[int], std_min: float, std_max: float
    ):
        super().__init__()
        assert 0 < std_min < std_max, (std_min, std_max)
        self._mlp = MLP(latent_dim, hidden, 2 * action_dim, "relu")
        with torch.no_grad():
            self._mlp.output_layer.weight.mul_(0.01)
            self._mlp.output_layer.bias.zero_()
        self._std_min, self._std_max = std_min, std_max

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z [*, D] -> (mean [*, A] in (-1, 1), std [*, A] in (σ_min, σ_max))``."""
        m, s = self._mlp(z).chunk(2, -1)
        return torch.tanh(m), (self._std_max - self._std_min) * torch.sigmoid(s + 2.0) + self._std_min

    def mode(self, z: Tensor) -> Tensor:
        """The mean action ``[*, A]``."""
        return self(z)[0]

    def sample(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Reparameterized ``(clip(u, -1, 1) [*, A], log π(u) [*, 1])``, ``u ~ N(mean, std²)``."""
        mean, std = self(z)
        u = mean + std * torch.randn_like(mean)
        return u.clamp(-1.0, 1.0), normal_log_prob(mean, std, u).unsqueeze(-1)
