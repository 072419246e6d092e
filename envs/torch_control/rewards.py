"""Smooth bounded rewards in torch, with the semantics of ``dm_control.utils.rewards.tolerance``.

``tolerance(x, bounds=(lo, hi), margin=m)`` is 1 where ``lo <= x <= hi``; outside it decays with the
normalised distance ``d = (lo - x) / m`` (below) or ``(x - hi) / m`` (above) through a sigmoid ``s(d)``
with ``s(0) = 1`` and ``s(1) = value_at_margin``:

* gaussian:  ``s(d) = exp(-0.5 (d k)^2)``,       ``k = sqrt(-2 ln v)``
* linear:    ``s(d) = 1 - d k`` if ``d k < 1`` else 0,    ``k = 1 - v``
* quadratic: ``s(d) = 1 - (d k)^2`` if ``d k < 1`` else 0, ``k = sqrt(1 - v)``

With ``margin == 0`` the reward is the indicator of the bounds. Works elementwise on any shape.
"""

from __future__ import annotations

import math

import torch

SIGMOIDS = ("gaussian", "linear", "quadratic")


def _sigmoid(d: torch.Tensor, value_at_margin: float, sigmoid: str) -> torch.Tensor:
    if sigmoid == "gaussian":
        if not 0.0 < value_at_margin < 1.0:
            raise ValueError(f"gaussian value_at_margin must be in (0, 1), got {value_at_margin}")
        scale = math.sqrt(-2.0 * math.log(value_at_margin))
        return torch.exp(-0.5 * (d * scale) ** 2)
    if sigmoid not in SIGMOIDS:
        raise ValueError(f"Unknown sigmoid {sigmoid!r}; expected one of {SIGMOIDS}")
    if not 0.0 <= value_at_margin < 1.0:
        raise ValueError(f"{sigmoid} value_at_margin must be in [0, 1), got {value_at_margin}")
    if sigmoid == "linear":
        scaled = d * (1.0 - value_at_margin)
        return torch.where(scaled.abs() < 1.0, 1.0 - scaled, torch.zeros_like(scaled))
    scaled = d * math.sqrt(1.0 - value_at_margin)
    return torch.where(scaled.abs() < 1.0, 1.0 - scaled**2, torch.zeros_like(scaled))


def tolerance(
    x: torch.Tensor,
    bounds: tuple[float, float] = (0.0, 0.0),
    margin: float = 0.0,
    sigmoid: str = "gaussian",
    value_at_margin: float = 0.1,
) -> torch.Tensor:
    """1 inside ``bounds``, a sigmoid of the distance to them outside (see module doc). Same shape as x."""
    lower, upper = bounds
    if lower > upper:
        raise ValueError(f"bounds must satisfy lower <= upper, got {bounds}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    in_bounds = (x >= lower) & (x <= upper)
    if margin == 0:
        return in_bounds.to(x.dtype)
    d = torch.where(x < lower, lower - x, x - upper) / margin
    return torch.where(in_bounds, torch.ones_like(x), _sigmoid(d, value_at_margin, sigmoid))
