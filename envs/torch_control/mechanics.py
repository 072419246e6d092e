"""Rigid-body helpers shared by the torch control tasks: MuJoCo's capsule inertia and its RK4 step.

All functions are batched over leading dimensions and never loop over environments.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Accel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def capsule_inertia(mass: float, radius: float, length: float) -> float:
    """Moment of inertia of a solid capsule about a transverse axis through its centre (MuJoCo's formula).

    The mass splits by volume between the cylinder (length ``h``) and the two hemispherical caps:
    ``I = m_cyl (3 r^2 + h^2) / 12 + m_caps (2 r^2 / 5 + h^2 / 4 + 3 h r / 8)``.
    """
    cylinder = math.pi * radius**2 * length
    caps = 4.0 / 3.0 * math.pi * radius**3
    m_caps = mass * caps / (cylinder + caps)
    m_cyl = mass - m_caps
    return m_cyl * (3 * radius**2 + length**2) / 12 + m_caps * (
        2 * radius**2 / 5 + length**2 / 4 + 3 * length * radius / 8
    )


def capsule_mass(radius: float, length: float, density: float = 1000.0) -> float:
    """Mass of a capsule from its volume (MuJoCo's default density is 1000 kg/m^3)."""
    return density * (math.pi * radius**2 * length + 4.0 / 3.0 * math.pi * radius**3)


def rk4(qpos: torch.Tensor, qvel: torch.Tensor, accel: Accel, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One classical Runge-Kutta step of ``q' = v, v' = accel(q, v)`` as MuJoCo's ``mjINT_RK4`` does it.

    Stages ``(q_i, v_i) = (q, v) + c_i dt (v_{i-1}, a_{i-1})`` with ``c = (0, 1/2, 1/2, 1)``, weights
    ``(1, 2, 2, 1) / 6``; the control is held constant over the step. Shapes ``[..., D]`` in and out.
    """
    a1 = accel(qpos, qvel)
    v2 = qvel + 0.5 * dt * a1
    a2 = accel(qpos + 0.5 * dt * qvel, v2)
    v3 = qvel + 0.5 * dt * a2
    a3 = accel(qpos + 0.5 * dt * v2, v3)
    v4 = qvel + dt * a3
    a4 = accel(qpos + dt * v3, v4)
    qpos = qpos + dt / 6.0 * (qvel + 2.0 * v2 + 2.0 * v3 + v4)
    qvel = qvel + dt / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
    return qpos, qvel
