"""Pendulum swing-up: dm_control's ``pendulum.xml`` re-derived and batched in torch.

One hinge (about +y) at height 0.6; angle ``theta`` from upright. A point-like sphere of mass 1 and radius
0.05 sits at distance ``l = 0.5`` (pole and base are massless), so ``I = m l^2 + 2/5 m r^2``:

    I thetadd = u + m g l sin(theta) - c thetad,          c = 0.1 (joint damping), u in [-1, 1]

MuJoCo's default integrator (semi-implicit Euler with implicitly integrated damping), ``dt = 0.02``:

    thetad' = thetad + dt (u + m g l sin(theta) - c thetad) / (I + dt c),   theta' = theta + dt thetad'

Physics vector ``[..., 3]``: ``(theta, thetad, u)``. State ``[..., 3]`` (dm_control's observation):
``(cos(theta), sin(theta), thetad)``. Reward: 1 when ``cos(theta) >= cos(8 deg)`` else 0 (sparse).
"""

from __future__ import annotations

import math

import torch

from envs.torch_control import render
from envs.torch_control.rewards import tolerance

TIMESTEP = 0.02
MASS = 1.0
LENGTH = 0.5
BALL_RADIUS = 0.05
INERTIA = MASS * LENGTH**2 + 0.4 * MASS * BALL_RADIUS**2
DAMPING = 0.1
GRAVITY = 9.81
PIVOT_HEIGHT = 0.6
COSINE_BOUND = math.cos(math.radians(8.0))

ACTION_DIM, STATE_DIM, PHYSICS_DIM = 1, 3, 3
TASKS = ("pendulum_swingup",)


def advance(physics: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """One control step: ``physics [N, 3]``, ``action [N, 1]`` -> ``physics [N, 3]``."""
    theta, thetad = physics[:, 0], physics[:, 1]
    control = action[:, 0].clamp(-1.0, 1.0)
    force = control + MASS * GRAVITY * LENGTH * theta.sin() - DAMPING * thetad
    thetad = thetad + TIMESTEP * force / (INERTIA + TIMESTEP * DAMPING)
    return torch.stack((theta + TIMESTEP * thetad, thetad, control), dim=-1)


def initial_physics(task: str, generator: torch.Generator, n: int, device: torch.device) -> torch.Tensor:
    """``theta ~ U(-pi, pi)``, at rest (dm_control's initial state) -> ``[n, 3]``."""
    theta = (torch.rand(n, generator=generator, device=device) * 2.0 - 1.0) * math.pi
    return torch.stack((theta, torch.zeros_like(theta), torch.zeros_like(theta)), dim=-1)


def canonical(physics: torch.Tensor) -> torch.Tensor:
    """The same physical state with the angle wrapped to ``(-pi, pi]`` ``[..., 3]`` (see
    :func:`envs.torch_control.cartpole.canonical`)."""
    theta = torch.atan2(physics[..., 0].sin(), physics[..., 0].cos())
    return torch.cat((theta[..., None], physics[..., 1:]), dim=-1)


def state(physics: torch.Tensor, task: str) -> torch.Tensor:
    """``[N, 3]`` physics -> ``[N, 3]`` observation ``(cos, sin, thetad)``."""
    theta = physics[:, 0]
    return torch.stack((theta.cos(), theta.sin(), physics[:, 1]), dim=-1)


def reward(physics: torch.Tensor, task: str) -> torch.Tensor:
    """``tolerance(cos(theta), (cos 8 deg, 1))``: ``[..., 3]`` -> ``[...]`` in {0, 1}."""
    return tolerance(physics[..., 0].cos(), (COSINE_BOUND, 1.0))


# dm_control's "fixed" camera at (0, -1.5, 2), looking 45 degrees down towards +y; pendulum plane y = 0.
_S = math.sqrt(0.5)
CAMERA = render.Camera(
    position=(0.0, -1.5, 2.0), right=(1.0, 0.0, 0.0), up=(0.0, _S, _S), forward=(0.0, _S, -_S)
)
PLANE = render.Plane(origin=(0.0, 0.0, 0.0), axis_u=(1.0, 0.0, 0.0), axis_v=(0.0, 0.0, 1.0))
FLOOR = render.Floor(height=0.0, half_size=2.0)


class Scene:
    """Renders ``physics [N, 3]`` -> uint8 ``[N, 3, S, S]``: pivot (static), pole capsule, mass sphere."""

    def __init__(self, task: str, size: int, device: torch.device):
        self.canvas = render.canvas(CAMERA, PLANE, size, device)
        self.background = render.background(CAMERA, FLOOR, size, device)
        zero, pivot = render.scalar(0.0, device), render.scalar(PIVOT_HEIGHT, device)
        base, shade = render.disc(self.canvas, zero, pivot, 0.021)
        render.paint_shaded(self.background, base, shade, render.DECORATION)

    def __call__(self, physics: torch.Tensor) -> torch.Tensor:
        theta = physics[:, 0]
        zero, pivot = torch.zeros_like(theta), torch.full_like(theta, PIVOT_HEIGHT)
        tip_u, tip_v = LENGTH * theta.sin(), PIVOT_HEIGHT + LENGTH * theta.cos()
        pole = render.capsule(self.canvas, zero, pivot, tip_u, tip_v, 0.02)
        image = render.layer(self.background, pole, render.SELF, 1.2)  # [N, 3, S, S]
        ball, shade = render.disc(self.canvas, tip_u, tip_v, BALL_RADIUS, aspect=_S)  # seen at 45 degrees
        render.paint_shaded(image, ball, shade, render.EFFECTOR)
        return render.to_uint8(image)
