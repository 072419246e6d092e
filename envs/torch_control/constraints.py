"""MuJoCo's soft joint-limit constraint for one degree of freedom, in closed form.

MuJoCo turns a violated limit (signed distance ``r < 0``, i.e. ``q < lower`` or ``q > upper``) into a
force ``f >= 0`` along the constraint Jacobian ``J = +1`` (lower) or ``-1`` (upper) that solves

    min_f 1/2 f (A + R) f + f (J a0 - a_ref),  f >= 0   =>   f = max(0, (a_ref - J a0) / (A + R)),

with ``a0`` the unconstrained acceleration, ``A = J M^-1 J^T`` (here ``(M^-1)_jj``), the regulariser
``R = (1 - d) / d * invweight0`` and the reference acceleration ``a_ref = -b J v - k d r``, where

* impedance ``d(|r|)`` rises from ``solimp[0]`` to ``solimp[1]`` over ``|r| in [0, solimp[2]]`` along a
  power sigmoid (midpoint ``solimp[3]``, power ``solimp[4]``);
* ``b = 2 / (dmax tau)``, ``k = 1 / (dmax^2 tau^2 zeta^2)`` from ``solref = (tau, zeta)``, with
  ``tau >= 2 timestep`` (MuJoCo's "refsafe") and ``dmax = solimp[1]``.

With a single scalar constraint the solver's answer is exact, so this matches MuJoCo to rounding.
"""

from __future__ import annotations

import torch

DEFAULT_SOLREF = (0.02, 1.0)
DEFAULT_SOLIMP = (0.9, 0.95, 0.001, 0.5, 2.0)


def impedance(violation: torch.Tensor, solimp: tuple[float, ...] = DEFAULT_SOLIMP) -> torch.Tensor:
    """MuJoCo's constraint impedance ``d`` as a function of ``|r|`` (any shape)."""
    dmin, dmax, width, mid, power = solimp
    x = (violation.abs() / width).clamp(max=1.0)
    low = x**power / mid ** (power - 1)
    high = 1.0 - (1.0 - x) ** power / (1.0 - mid) ** (power - 1)
    y = torch.where(x <= mid, low, high)
    return dmin + y * (dmax - dmin)


def limit_force(
    qpos: torch.Tensor,
    qvel: torch.Tensor,
    acc0: torch.Tensor,
    inv_mass: torch.Tensor,
    lower: float,
    upper: float,
    invweight0: float,
    timestep: float,
    solref: tuple[float, float] = DEFAULT_SOLREF,
    solimp: tuple[float, ...] = DEFAULT_SOLIMP,
) -> torch.Tensor:
    """Generalised force ``J^T f`` of the limit ``lower <= q <= upper`` on one dof (module doc).

    ``qpos, qvel, acc0`` (unconstrained acceleration), ``inv_mass`` (``(M^-1)_jj``): ``[...]``;
    returns ``[...]``, zero where the limit is not violated.
    """
    sign = torch.where(qpos < 0.5 * (lower + upper), 1.0, -1.0)  # J: +1 on the lower side, -1 above
    dist = torch.where(sign > 0, qpos - lower, upper - qpos)  # r < 0 when violated
    timeconst, dampratio = solref
    timeconst = max(timeconst, 2.0 * timestep)
    dmax = solimp[1]
    damping = 2.0 / (dmax * timeconst)
    stiffness = 1.0 / (dmax**2 * timeconst**2 * dampratio**2)
    imp = impedance(dist, solimp)
    a_ref = -damping * sign * qvel - stiffness * imp * dist
    regulariser = (1.0 - imp) / imp * invweight0
    force = ((a_ref - sign * acc0) / (inv_mass + regulariser)).clamp(min=0.0)
    return torch.where(dist < 0, sign * force, torch.zeros_like(force))
