"""Batched 10x10 grid helpers shared by the MinAtar games: cells as (row ``y``, column ``x``) long tensors
``[N]``, maps as bool ``[N, 10, 10]``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

SIZE = 10


def clamp(x: Tensor, low: int, high: int) -> Tensor:
    return x.clamp(low, high)


def lookup(table: Sequence[int], index: Tensor) -> Tensor:
    """``table[index]`` for a long ``index`` of any shape (a small constant table)."""
    return torch.tensor(table, device=index.device)[index]


class Grid:
    """Index helpers on ``device``."""

    def __init__(self, device: torch.device):
        self.r = torch.arange(SIZE, device=device)

    def cell(self, y: Tensor, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``[N, 10, 10]`` bool: true at ``(y[n], x[n])`` (where ``mask``; nowhere outside the grid)."""
        hit = (self.r.view(1, SIZE, 1) == y.view(-1, 1, 1)) & (self.r.view(1, 1, SIZE) == x.view(-1, 1, 1))
        return hit if mask is None else hit & mask.view(-1, 1, 1)

    def at(self, grid: Tensor, y: Tensor, x: Tensor) -> Tensor:
        """``grid[n, y[n], x[n]]`` ``[N]`` (false outside the grid)."""
        return (grid & self.cell(y, x)).flatten(1).any(1)

    def rows(self, start: int, stop: int) -> Tensor:
        """``[10, 10]`` bool: rows ``start .. stop-1``."""
        return ((self.r >= start) & (self.r < stop)).view(SIZE, 1).expand(SIZE, SIZE)

    def block(self, rows: tuple[int, int], cols: tuple[int, int]) -> Tensor:
        """``[10, 10]`` bool: rows ``rows[0] .. rows[1]-1`` x columns ``cols[0] .. cols[1]-1``."""
        r = (self.r >= rows[0]) & (self.r < rows[1])
        c = (self.r >= cols[0]) & (self.r < cols[1])
        return r.view(SIZE, 1) & c.view(1, SIZE)


def paint(obs: Tensor, channel: Tensor | int, y: Tensor, x: Tensor, mask: Tensor | None = None) -> None:
    """Set ``obs[n, channel[n, k], y[n, k], x[n, k]]`` for every object ``k`` (where ``mask`` and inside the
    grid), in place, with one scatter: ``obs`` ``[N, C, 10, 10]`` bool, the rest ``[N, K]`` (or ``[N]``:
    one object each)."""
    n, c = obs.shape[:2]
    y, x = y.view(n, -1), x.view(n, -1)
    mask = None if mask is None else mask.view(n, -1)
    valid = (y >= 0) & (y < SIZE) & (x >= 0) & (x < SIZE)
    if mask is not None:
        valid = valid & mask
    flat = torch.zeros(n, c * SIZE * SIZE + 1, dtype=torch.bool, device=obs.device)  # the last: a bin
    index = torch.where(valid, (channel * SIZE + y) * SIZE + x, c * SIZE * SIZE)
    flat.scatter_(1, index, True)
    obs |= flat[:, :-1].view_as(obs)
