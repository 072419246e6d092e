"""Two-stream networks of the TD-JEPA / FB reference code, for the predictors (``T``, ``F``) and the policy.

One MLP on ``[x, a, z]`` gives the 2-d action little say beside the 50-d task vector: on the maze
``Q(s, a, z)`` of trained flat models spreads by 1-3 % of ``|Q|`` over nine actions
(``scripts/zero_shot_maps.py``, docs/zero_shot.md). The reference embeds the two inputs that must interact
apart::

    e₁ = embed₁([x, u]),  e₂ = embed₂([x, v])                 # [*, h/2] each
    embed(y) = ReLU(W₂ tanh(LayerNorm(W₁ y)))                  # widths h, then h/2
    out = head([e₁, e₂])                                       # MLP: hidden[1:] (ReLU), then out_dim

with ``(u, v) = (a, z)`` for a predictor ``T(x, a, z)`` and ``(u, v) = (∅, z)`` for the policy ``π(x, z)``
(``embed₁`` sees ``x`` alone). ``hidden = [h, *head_hidden]``: ``[1024, 1024]`` is the reference's
(``hidden_dim`` 1024, ``embedding_layers`` 2, ``hidden_layers`` 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from jepa_agents.nn import MLP


def _embedding(in_dim: int, width: int) -> nn.Sequential:
    """``[*, in_dim] -> [*, width // 2]``: Linear, LayerNorm, tanh, Linear, ReLU."""
    return nn.Sequential(
        nn.Linear(in_dim, width), nn.LayerNorm(width), nn.Tanh(), nn.Linear(width, width // 2), nn.ReLU()
    )


class TwoStream(nn.Module):
    """``(first [*, F], second [*, S]) -> [*, out_dim]``: ``head([embed₁(first), embed₂(second)])``."""

    def __init__(self, first_dim: int, second_dim: int, hidden: Sequence[int], out_dim: int):
        super().__init__()
        if len(hidden) < 1 or hidden[0] < 2 or hidden[0] % 2:
            raise ValueError(
                f"a two-stream network needs hidden sizes [h, ...] with an even embedding width h >= 2, "
                f"got {list(hidden)}"
            )
        width = hidden[0]
        self.first, self.second = _embedding(first_dim, width), _embedding(second_dim, width)
        self.head = MLP(2 * (width // 2), list(hidden[1:]), out_dim, activation="relu")

    def forward(self, first: Tensor, second: Tensor) -> Tensor:
        return self.head(torch.cat([self.first(first), self.second(second)], dim=-1))
