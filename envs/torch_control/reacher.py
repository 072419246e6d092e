"""Two-link planar reacher (dm_control's ``reacher.xml`` arm) with a family of reach targets.

Joint angles ``q = (q1, q2)`` (shoulder, wrist; hinges about +z), links of length ``L1 = 0.12`` and
fingertip at 0.12 along the second link. Masses and inertias are MuJoCo's, from the capsule/sphere
geoms at density 1000. With ``J1`` the first link's inertia about the shoulder, ``m2, s2, J2`` the
second link's (plus finger) mass, first moment and inertia about the wrist, and ``h = L1 s2 sin(q2)``:

    M(q) = [[J1 + J2 + m2 L1^2 + 2 L1 s2 cos(q2),   J2 + L1 s2 cos(q2)],
            [J2 + L1 s2 cos(q2),                    J2               ]]
    M qdd = 0.05 u - c qd - (-h (2 qd1 qd2 + qd2^2), h qd1^2) + J^T f_limit

with joint damping ``c = 0.01``, gear 0.05 and MuJoCo's soft wrist limit |q2| <= 160 deg
(:mod:`constraints`). Integration as MuJoCo's default: semi-implicit Euler, damping implicit,
``qd' = qd + dt (M + dt c I)^-1 F``, ``q' = q + dt qd'``, ``dt = 0.02``.

Tasks: ``reach_random`` (default; dm_control's reacher-easy: target uniform in angle, radius in
[0.05, 0.2], new each episode) and eight fixed targets at radius 0.15 named by compass direction
(``reach_n`` = +y, ``reach_e`` = +x, ...). Reward: 1 when the fingertip is within 0.05 + 0.01 of the
target, else 0. The target drawn and observed is the env's own task's.

Physics ``[..., 8]``: ``(q1, q2, qd1, qd2, u1, u2, target_x, target_y)``. State ``[..., 8]``:
``(cos q1, sin q1, cos q2, sin q2, qd1, qd2, target - fingertip)``.
"""

from __future__ import annotations

import math

import torch

from envs.torch_control import render
from envs.torch_control.constraints import limit_force
from envs.torch_control.mechanics import capsule_inertia, capsule_mass
from envs.torch_control.rewards import tolerance

TIMESTEP = 0.02
DAMPING = 0.01
GEAR = 0.05
LINK_RADIUS = 0.01
UPPER_LENGTH, LOWER_LENGTH, FINGER_DISTANCE = 0.12, 0.1, 0.12
WRIST_RANGE = math.radians(160.0)
TARGET_SIZE, FINGER_SIZE = 0.05, 0.01
_M_UPPER = capsule_mass(LINK_RADIUS, UPPER_LENGTH)
_M_LOWER = capsule_mass(LINK_RADIUS, LOWER_LENGTH)
_M_FINGER = 1000.0 * 4.0 / 3.0 * math.pi * FINGER_SIZE**3
J1 = capsule_inertia(_M_UPPER, LINK_RADIUS, UPPER_LENGTH) + _M_UPPER * (UPPER_LENGTH / 2) ** 2
M2 = _M_LOWER + _M_FINGER
S2 = _M_LOWER * LOWER_LENGTH / 2 + _M_FINGER * FINGER_DISTANCE
J2 = (
    capsule_inertia(_M_LOWER, LINK_RADIUS, LOWER_LENGTH)
    + _M_LOWER * (LOWER_LENGTH / 2) ** 2
    + 0.4 * _M_FINGER * FINGER_SIZE**2
    + _M_FINGER * FINGER_DISTANCE**2
)
_A = J1 + J2 + M2 * UPPER_LENGTH**2  # M11 = _A + 2 _B cos(q2), M12 = J2 + _B cos(q2)
_B = UPPER_LENGTH * S2
WRIST_INVWEIGHT0 = (_A + 2 * _B) / ((_A + 2 * _B) * J2 - (J2 + _B) ** 2)  # (M^-1)_22 at q = 0

_COMPASS = ("n", "ne", "e", "se", "s", "sw", "w", "nw")
FIXED_TARGETS = {
    f"reach_{name}": (0.15 * math.sin(math.radians(45 * i)), 0.15 * math.cos(math.radians(45 * i)))
    for i, name in enumerate(_COMPASS)
}
RANDOM_TASK = "reach_random"
TASKS = (RANDOM_TASK, *FIXED_TARGETS)
DEFAULT_TASK = RANDOM_TASK

ACTION_DIM, STATE_DIM, PHYSICS_DIM = 2, 8, 8


def advance(physics: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """One control step: ``physics [N, 8]``, ``action [N, 2]`` -> ``physics [N, 8]``."""
    q2, qd1, qd2 = physics[:, 1], physics[:, 2], physics[:, 3]
    control = action.clamp(-1.0, 1.0)
    cos, h = q2.cos(), _B * q2.sin()
    m11, m12 = _A + 2 * _B * cos, J2 + _B * cos
    f1 = GEAR * control[:, 0] - DAMPING * qd1 + h * (2 * qd1 * qd2 + qd2**2)
    f2 = GEAR * control[:, 1] - DAMPING * qd2 - h * qd1**2
    inv_det = 1.0 / (m11 * J2 - m12 * m12)
    acc2 = (m11 * f2 - m12 * f1) * inv_det  # unconstrained wrist acceleration
    f2 = f2 + limit_force(q2, qd2, acc2, m11 * inv_det, -WRIST_RANGE, WRIST_RANGE, WRIST_INVWEIGHT0, TIMESTEP)
    d11, d22 = m11 + TIMESTEP * DAMPING, J2 + TIMESTEP * DAMPING  # M + dt c I
    inv_det = 1.0 / (d11 * d22 - m12 * m12)
    qd1 = qd1 + TIMESTEP * (d22 * f1 - m12 * f2) * inv_det
    qd2 = qd2 + TIMESTEP * (d11 * f2 - m12 * f1) * inv_det
    qpos = physics[:, 0:2] + TIMESTEP * torch.stack((qd1, qd2), dim=-1)
    return torch.cat((qpos, qd1[:, None], qd2[:, None], control, physics[:, 6:8]), dim=-1)


def initial_physics(task: str, generator: torch.Generator, n: int, device: torch.device) -> torch.Tensor:
    """``q1 ~ U(-pi, pi)``, ``q2 ~ U(-160, 160) deg``, at rest; the task's target -> ``[n, 8]``.

    ``reach_random`` draws ``angle ~ U(0, 2 pi)``, ``radius ~ U(0.05, 0.2)`` and puts the target at
    ``radius (sin(angle), cos(angle))`` as dm_control does.
    """
    u = torch.rand(n, 4, generator=generator, device=device)
    qpos = (u[:, 0:2] * 2.0 - 1.0) * torch.tensor([math.pi, WRIST_RANGE], device=device)
    if task == RANDOM_TASK:
        angle, radius = u[:, 2] * 2 * math.pi, 0.05 + 0.15 * u[:, 3]
        target = radius[:, None] * torch.stack((angle.sin(), angle.cos()), dim=-1)
    else:
        target = torch.tensor(FIXED_TARGETS[task], device=device).expand(n, 2)
    return torch.cat((qpos, torch.zeros(n, 4, device=device), target), dim=-1)


def fingertip(physics: torch.Tensor) -> torch.Tensor:
    """``[..., 8]`` -> fingertip position ``[..., 2]``."""
    q1, q12 = physics[..., 0], physics[..., 0] + physics[..., 1]
    x = UPPER_LENGTH * q1.cos() + FINGER_DISTANCE * q12.cos()
    y = UPPER_LENGTH * q1.sin() + FINGER_DISTANCE * q12.sin()
    return torch.stack((x, y), dim=-1)


def _target(physics: torch.Tensor, task: str) -> torch.Tensor:
    if task == RANDOM_TASK:
        return physics[..., 6:8]
    return torch.tensor(FIXED_TARGETS[task], dtype=physics.dtype, device=physics.device)


def state(physics: torch.Tensor, task: str) -> torch.Tensor:
    """``[N, 8]`` physics -> ``[N, 8]`` observation (module doc)."""
    q = physics[:, 0:2]
    to_target = _target(physics, task) - fingertip(physics)
    return torch.cat(
        (q[:, 0:1].cos(), q[:, 0:1].sin(), q[:, 1:2].cos(), q[:, 1:2].sin(), physics[:, 2:4], to_target), -1
    )


def reward(physics: torch.Tensor, task: str) -> torch.Tensor:
    """1 if the fingertip is within ``0.06`` of the task's target: ``[..., 8]`` -> ``[...]``."""
    distance = (_target(physics, task) - fingertip(physics)).norm(dim=-1)
    return tolerance(distance, (0.0, TARGET_SIZE + FINGER_SIZE))


# dm_control's "fixed" camera: 0.75 above the table, looking down; the arm moves in the plane z = 0.01.
CAMERA = render.Camera(
    position=(0.0, 0.0, 0.75), right=(1.0, 0.0, 0.0), up=(0.0, 1.0, 0.0), forward=(0.0, 0.0, -1.0)
)
PLANE = render.Plane(origin=(0.0, 0.0, 0.01), axis_u=(1.0, 0.0, 0.0), axis_v=(0.0, 1.0, 0.0))
FLOOR = render.Floor(height=0.0, half_size=0.3)
_ARENA_WALLS = (
    (-0.3, 0.0, 0.006, 0.3),
    (0.3, 0.0, 0.006, 0.3),
    (0.0, -0.3, 0.3, 0.006),
    (0.0, 0.3, 0.3, 0.006),
)


class Scene:
    """Renders ``physics [N, 8]`` -> uint8 ``[N, 3, S, S]``: arena and root (static), target, arm, finger."""

    def __init__(self, task: str, size: int, device: torch.device):
        self.canvas = render.canvas(CAMERA, PLANE, size, device)
        self.background = render.background(CAMERA, FLOOR, size, device)
        for cx, cy, hx, hy in _ARENA_WALLS:
            wall = render.box(self.canvas, render.scalar(cx, device), render.scalar(cy, device), hx, hy)
            render.paint(self.background, wall, render.DECORATION)
        zero = render.scalar(0.0, device)
        root, shade = render.disc(self.canvas, zero, zero, 0.011)
        render.paint_shaded(self.background, root, shade, render.DECORATION)
        self.task = task

    def __call__(self, physics: torch.Tensor) -> torch.Tensor:
        n = physics.shape[0]
        target = _target(physics, self.task).expand(n, 2)
        disc, shade = render.disc(self.canvas, target[:, 0], target[:, 1], TARGET_SIZE)
        image = render.paint_shaded(self.background, disc, shade, render.TARGET, new=True)  # [N, 3, S, S]
        q1, q12 = physics[:, 0], physics[:, 0] + physics[:, 1]
        zero = torch.zeros_like(q1)
        elbow_u, elbow_v = UPPER_LENGTH * q1.cos(), UPPER_LENGTH * q1.sin()
        upper = render.capsule(self.canvas, zero, zero, elbow_u, elbow_v, LINK_RADIUS)
        render.paint(image, upper, render.SELF, 1.2)
        hand_u, hand_v = elbow_u + LOWER_LENGTH * q12.cos(), elbow_v + LOWER_LENGTH * q12.sin()
        lower = render.capsule(self.canvas, elbow_u, elbow_v, hand_u, hand_v, LINK_RADIUS)
        render.paint(image, lower, render.SELF, 1.2)
        tip = fingertip(physics)
        finger, shade = render.disc(self.canvas, tip[:, 0], tip[:, 1], FINGER_SIZE)
        render.paint_shaded(image, finger, shade, render.EFFECTOR)
        return render.to_uint8(image)
