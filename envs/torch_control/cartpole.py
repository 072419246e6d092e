"""Cart-pole: dm_control's ``cartpole.xml`` (balance and swing-up) re-derived and batched in torch.

Generalised coordinates ``q = (x, theta)``: cart position on the rail and pole angle from upright (hinge
about +y, so the pole tip is at ``(x + 2 l sin(theta), 1 + 2 l cos(theta))``). With cart mass ``m_c``,
pole mass ``m_p``, pole half-length ``l`` and pole inertia ``I`` about its centre (MuJoCo's capsule formula):

    M(q) = [[m_c + m_p,            m_p l cos(theta)],
            [m_p l cos(theta),     I + m_p l^2     ]]
    M(q) qdd = [g_r u - c_x xd + m_p l sin(theta) thetad^2,  m_p g l sin(theta) - c_t thetad] + J^T f_limit

with gear ``g_r = 10``, joint damping ``c_x, c_t``, ``u`` the control clipped to [-1, 1] and ``f_limit`` the
soft slider limit at |x| = 1.8 (:mod:`constraints`). Integration: RK4, ``dt = 0.01`` (the xml's option).

Physics vector ``[..., 5]``: ``(x, theta, xd, thetad, u)`` (``u`` the last control, for the reward).
State ``[..., 5]`` (dm_control's observation): ``(x, cos(theta), sin(theta), xd, thetad)``.
Reward (dm_control's smooth reward, in [0, 1])::

    upright = (cos(theta) + 1) / 2
    centered = (1 + tolerance(x, margin=2)) / 2
    small_control = (4 + tolerance(u, margin=1, value_at_margin=0, sigmoid="quadratic")) / 5
    small_velocity = (1 + tolerance(thetad, margin=5)) / 2
    reward = upright * centered * small_control * small_velocity
"""

from __future__ import annotations

import math

import torch

from envs.torch_control import render
from envs.torch_control.constraints import limit_force
from envs.torch_control.mechanics import capsule_inertia, rk4
from envs.torch_control.rewards import tolerance

TIMESTEP = 0.01
CART_MASS = 1.0
POLE_MASS = 0.1
POLE_HALF_LENGTH = 0.5
POLE_RADIUS = 0.045
POLE_INERTIA = capsule_inertia(POLE_MASS, POLE_RADIUS, 2 * POLE_HALF_LENGTH)
SLIDER_DAMPING = 5e-4
HINGE_DAMPING = 2e-6
GEAR = 10.0
GRAVITY = 9.81
SLIDER_RANGE = 1.8
SLIDER_SOLREF = (0.08, 1.0)
# diag(M^-1) of the slider at q = 0, MuJoCo's "invweight0" used to scale the limit's regulariser.
_M00, _M01, _M11 = (
    CART_MASS + POLE_MASS,
    POLE_MASS * POLE_HALF_LENGTH,
    POLE_INERTIA + POLE_MASS * POLE_HALF_LENGTH**2,
)
SLIDER_INVWEIGHT0 = _M11 / (_M00 * _M11 - _M01**2)

ACTION_DIM, STATE_DIM, PHYSICS_DIM = 1, 5, 5
TASKS = ("cartpole_balance", "cartpole_swingup")


def accel(qpos: torch.Tensor, qvel: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
    """Accelerations ``[..., 2]`` of ``q = (x, theta)`` given ``qpos, qvel [..., 2]``, ``control [...]``."""
    x, theta = qpos.unbind(-1)
    xd, thetad = qvel.unbind(-1)
    sin, cos = torch.sin(theta), torch.cos(theta)
    m01 = POLE_MASS * POLE_HALF_LENGTH * cos
    f0 = GEAR * control - SLIDER_DAMPING * xd + POLE_MASS * POLE_HALF_LENGTH * sin * thetad**2
    f1 = POLE_MASS * GRAVITY * POLE_HALF_LENGTH * sin - HINGE_DAMPING * thetad
    inv_det = 1.0 / (_M00 * _M11 - m01 * m01)
    i00, i01, i11 = _M11 * inv_det, -m01 * inv_det, _M00 * inv_det  # M^-1
    a0 = i00 * f0 + i01 * f1
    a1 = i01 * f0 + i11 * f1
    f_lim = limit_force(
        x, xd, a0, i00, -SLIDER_RANGE, SLIDER_RANGE, SLIDER_INVWEIGHT0, TIMESTEP, SLIDER_SOLREF
    )
    return torch.stack((a0 + i00 * f_lim, a1 + i01 * f_lim), dim=-1)


def advance(physics: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """One control step: ``physics [N, 5]``, ``action [N, 1]`` -> ``physics [N, 5]``."""
    control = action[:, 0].clamp(-1.0, 1.0)
    qpos, qvel = rk4(physics[:, 0:2], physics[:, 2:4], lambda q, v: accel(q, v, control), TIMESTEP)
    return torch.cat((qpos, qvel, control[:, None]), dim=-1)


def uniform_physics(generator: torch.Generator, n: int, device: torch.device) -> torch.Tensor:
    """Broad start states (``start="uniform"``): ``x ~ U(-1.5, 1.5)``, ``theta ~ U(-pi, pi)`` (every pole
    angle), ``xd ~ N(0, 1)``, ``thetad ~ N(0, 2^2)``, control 0 -> ``[n, 5]``."""
    u = torch.rand(n, 2, generator=generator, device=device) * 2 - 1
    vel = torch.randn(n, 2, generator=generator, device=device) * torch.tensor([1.0, 2.0], device=device)
    qpos = u * torch.tensor([1.5, math.pi], device=device)
    return torch.cat((qpos, vel, torch.zeros(n, 1, device=device)), dim=-1)


def initial_physics(task: str, generator: torch.Generator, n: int, device: torch.device) -> torch.Tensor:
    """dm_control's initial state distribution -> ``[n, 5]``.

    swing-up: ``x ~ 0.01 N(0,1)``, ``theta ~ pi + 0.01 N(0,1)``; balance: ``x ~ U(-0.1, 0.1)``,
    ``theta ~ U(-0.034, 0.034)``; both: ``(xd, thetad) ~ 0.01 N(0, 1)``, control 0.
    """
    noise = torch.randn(n, 4, generator=generator, device=device)
    if task == "cartpole_swingup":
        qpos = torch.stack((0.01 * noise[:, 0], math.pi + 0.01 * noise[:, 1]), dim=-1)
    else:
        uniform = torch.rand(n, 2, generator=generator, device=device) * 2.0 - 1.0
        qpos = uniform * torch.tensor([0.1, 0.034], device=device)
    return torch.cat((qpos, 0.01 * noise[:, 2:4], torch.zeros(n, 1, device=device)), dim=-1)


def canonical(physics: torch.Tensor) -> torch.Tensor:
    """The same physical state with the pole angle wrapped to ``(-pi, pi]`` ``[..., 5]``: dynamics,
    rewards and frames depend on the angle only through its sine and cosine, so a learner reading raw
    physics (``world_model=simulator``) sees one value per pole position instead of one per turn."""
    theta = torch.atan2(physics[..., 1].sin(), physics[..., 1].cos())
    return torch.cat((physics[..., :1], theta[..., None], physics[..., 2:]), dim=-1)


def state(physics: torch.Tensor, task: str) -> torch.Tensor:
    """``[N, 5]`` physics -> ``[N, 5]`` observation ``(x, cos, sin, xd, thetad)``."""
    theta = physics[:, 1]
    return torch.stack((physics[:, 0], theta.cos(), theta.sin(), physics[:, 2], physics[:, 3]), dim=-1)


def reward(physics: torch.Tensor, task: str) -> torch.Tensor:
    """dm_control's smooth cart-pole reward (module doc), ``[..., 5]`` -> ``[...]`` in [0, 1]."""
    upright = (physics[..., 1].cos() + 1.0) / 2.0
    centered = (1.0 + tolerance(physics[..., 0], margin=2.0)) / 2.0
    small_control = (
        4.0 + tolerance(physics[..., 4], margin=1.0, value_at_margin=0.0, sigmoid="quadratic")
    ) / 5.0
    small_velocity = (1.0 + tolerance(physics[..., 3], margin=5.0)) / 2.0
    return upright * centered * small_control * small_velocity


# dm_control's "fixed" camera: at (0, -4, 1) looking along +y; bodies move in the plane y = 0.
CAMERA = render.Camera(
    position=(0.0, -4.0, 1.0), right=(1.0, 0.0, 0.0), up=(0.0, 0.0, 1.0), forward=(0.0, 1.0, 0.0)
)
PLANE = render.Plane(origin=(0.0, 0.0, 0.0), axis_u=(1.0, 0.0, 0.0), axis_v=(0.0, 0.0, 1.0))
FLOOR = render.Floor(height=-0.05, half_size=4.0)


class Scene:
    """Renders ``physics [N, 5]`` -> uint8 ``[N, 3, S, S]``: rail (static), pole capsule, cart box."""

    def __init__(self, task: str, size: int, device: torch.device):
        self.canvas = render.canvas(CAMERA, PLANE, size, device)
        self.background = render.background(CAMERA, FLOOR, size, device)
        one = render.scalar(1.0, device)
        # The two rails (radius 0.02, 0.14 apart in depth) read as one line; drawn 0.03 thick to stay visible.
        rail = render.capsule(self.canvas, -2.0 * one, one, 2.0 * one, one, 0.03)
        render.paint(self.background, rail, render.DECORATION, 1.2)

    def __call__(self, physics: torch.Tensor) -> torch.Tensor:
        x, theta = physics[:, 0], physics[:, 1]
        tip_u = x + 2 * POLE_HALF_LENGTH * theta.sin()
        tip_v = 1.0 + 2 * POLE_HALF_LENGTH * theta.cos()
        pole = render.capsule(self.canvas, x, torch.ones_like(x), tip_u, tip_v, POLE_RADIUS)
        image = render.layer(self.background, pole, render.SELF, 1.2)  # [N, 3, S, S]
        render.paint(image, render.box(self.canvas, x, torch.ones_like(x), 0.2, 0.1), render.SELF, 1.1)
        return render.to_uint8(image)
