"""Point mass in a four-room maze: a 2-D disc pushed by a force, colliding with axis-aligned walls.

Arena ``[-1, 1]^2`` split into four rooms by a wall cross (``x = 0`` and ``y = 0``, thickness 0.1), each
of its four arms pierced by a 0.3-wide doorway centred at 0.5 from the middle. Dynamics of the disc
(radius ``r = 0.05``, mass ``m = 1``, viscous damping ``c = 2``, force gain ``g = 2``, so at most 1 m/s):

    v' = (m v + dt g u) / (m + dt c),    p' = p + dt v'         (semi-implicit Euler, dt = 0.02)

then, wall by wall, a penetrating disc is pushed out along the contact normal ``n`` and loses its
normal velocity into the wall (``v -= n min(0, v . n)``): inelastic, frictionless sliding. A step moves
at most 0.02 < r, so the disc cannot tunnel through a wall.

Episodes start at rest, uniformly in ``[-0.75, -0.25]^2`` (the bottom-left room). Reward-free by
default (task ``reward_free``: reward 0); ``task=`` picks a goal-reaching reward, each computable from
``physics`` afterwards::

    near = tolerance(|p - goal|, (0, 0.1), margin=0.1)          # gaussian, 0.1 at the margin
    small_control = (4 + mean_i tolerance(u_i, margin=1, value_at_margin=0, sigmoid="quadratic")) / 5
    reward = near * small_control

Physics vector ``[..., 6]``: ``(x, y, vx, vy, ux, uy)``; state ``[..., 4]``: ``(x, y, vx, vy)``.
The goal is not drawn, so pixels are the same for every task.
"""

from __future__ import annotations

import functools

import torch

from envs.torch_control import render
from envs.torch_control.rewards import tolerance

TIMESTEP = 0.02
MASS = 1.0
DAMPING = 2.0
GAIN = 2.0
RADIUS = 0.05
GOAL_RADIUS = 0.1
# Walls as (centre_x, centre_y, half_x, half_y); they touch but never overlap.
WALLS = (
    (0.0, 1.05, 1.1, 0.05),  # outer: top, bottom, left, right
    (0.0, -1.05, 1.1, 0.05),
    (-1.05, 0.0, 0.05, 1.0),
    (1.05, 0.0, 0.05, 1.0),
    (0.0, 0.825, 0.05, 0.175),  # vertical cross arm: top piece, centre piece, bottom piece
    (0.0, 0.0, 0.05, 0.35),
    (0.0, -0.825, 0.05, 0.175),
    (-0.825, 0.0, 0.175, 0.05),  # horizontal cross arm: far-left, near-left, near-right, far-right
    (-0.2, 0.0, 0.15, 0.05),
    (0.2, 0.0, 0.15, 0.05),
    (0.825, 0.0, 0.175, 0.05),
)
GOALS = {
    "reach_top_left": (-0.5, 0.5),
    "reach_top_right": (0.5, 0.5),
    "reach_bottom_left": (-0.5, -0.5),
    "reach_bottom_right": (0.5, -0.5),
    "reach_far": (0.85, 0.85),  # the corner farthest from the start room
}
REWARD_FREE = "reward_free"
TASKS = (REWARD_FREE, *GOALS)
DEFAULT_TASK = REWARD_FREE

ACTION_DIM, STATE_DIM, PHYSICS_DIM = 2, 4, 6


@functools.lru_cache(maxsize=8)
def _wall_corners(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower-left and upper-right corners of the walls, ``[W, 2]`` each."""
    walls = torch.tensor(WALLS, device=device)
    return walls[:, 0:2] - walls[:, 2:4], walls[:, 0:2] + walls[:, 2:4]


def _collide(pos: torch.Tensor, vel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Resolve disc-wall contacts wall by wall: ``pos, vel [N, 2]`` -> ``[N, 2]`` each."""
    lows, highs = _wall_corners(pos.device)
    for lo, hi in zip(lows, highs):
        delta = pos - torch.maximum(torch.minimum(pos, hi), lo)  # [N, 2] from the box's closest point
        dist = delta.norm(dim=-1, keepdim=True)  # [N, 1]
        normal = delta / dist.clamp(min=1e-9)
        contact = (dist < RADIUS).to(pos.dtype)
        pos = pos + contact * (RADIUS - dist) * normal
        vel = vel - contact * normal * (vel * normal).sum(-1, keepdim=True).clamp(max=0.0)
    return pos, vel


def advance(physics: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """One control step: ``physics [N, 6]``, ``action [N, 2]`` -> ``physics [N, 6]``."""
    control = action.clamp(-1.0, 1.0)
    vel = (MASS * physics[:, 2:4] + TIMESTEP * GAIN * control) / (MASS + TIMESTEP * DAMPING)
    pos, vel = _collide(physics[:, 0:2] + TIMESTEP * vel, vel)
    return torch.cat((pos, vel, control), dim=-1)


def initial_physics(task: str, generator: torch.Generator, n: int, device: torch.device) -> torch.Tensor:
    """At rest, uniform in the bottom-left room's centre square ``[-0.75, -0.25]^2`` -> ``[n, 6]``."""
    pos = torch.rand(n, 2, generator=generator, device=device) * 0.5 - 0.75
    return torch.cat((pos, torch.zeros(n, 4, device=device)), dim=-1)


def is_free(pos: torch.Tensor) -> torch.Tensor:
    """Whether the disc fits at ``pos`` ``[N, 2]``: inside the outer walls (``|x|, |y| <= 1 - r``) and
    overlapping no wall -> ``[N]`` bool."""
    lo, hi = _wall_corners(pos.device)  # [W, 2] each
    nearest = torch.maximum(lo[None], torch.minimum(pos[:, None], hi[None]))  # [N, W, 2]
    clear = ((pos[:, None] - nearest).norm(dim=-1) > RADIUS).all(-1)  # [N]
    return clear & (pos.abs() <= 1 - RADIUS).all(-1)


def uniform_physics(generator: torch.Generator, n: int, device: torch.device) -> torch.Tensor:
    """Broad start states (``start="uniform"``): at rest, uniform over every free position of the
    arena (:func:`is_free`; rejection sampling) -> ``[n, 6]``."""
    chunks, found = [], 0
    while found < n:
        pos = (torch.rand(2 * n, 2, generator=generator, device=device) * 2 - 1) * (1 - RADIUS)  # [2n, 2]
        free = is_free(pos)  # [2n]
        chunks.append(pos[free])
        found += int(free.sum())
    pos = torch.cat(chunks)[:n]
    return torch.cat((pos, torch.zeros(n, 4, device=device)), dim=-1)


def state(physics: torch.Tensor, task: str) -> torch.Tensor:
    """``[N, 6]`` -> ``[N, 4]`` position and velocity."""
    return physics[:, 0:4]


def reward(physics: torch.Tensor, task: str) -> torch.Tensor:
    """Goal-reaching reward of ``task`` (module doc), 0 when reward-free: ``[..., 6]`` -> ``[...]``."""
    if task == REWARD_FREE:
        return torch.zeros_like(physics[..., 0])
    goal = torch.tensor(GOALS[task], dtype=physics.dtype, device=physics.device)
    near = tolerance((physics[..., 0:2] - goal).norm(dim=-1), (0.0, GOAL_RADIUS), margin=GOAL_RADIUS)
    control = tolerance(physics[..., 4:6], margin=1.0, value_at_margin=0.0, sigmoid="quadratic").mean(-1)
    return near * (4.0 + control) / 5.0


# Top-down camera seeing the whole arena (half-width 1.1 at 45 degrees field of view).
CAMERA = render.Camera(
    position=(0.0, 0.0, 2.7), right=(1.0, 0.0, 0.0), up=(0.0, 1.0, 0.0), forward=(0.0, 0.0, -1.0)
)
PLANE = render.Plane(origin=(0.0, 0.0, 0.0), axis_u=(1.0, 0.0, 0.0), axis_v=(0.0, 1.0, 0.0))
FLOOR = render.Floor(height=0.0, half_size=1.2, check=1.0, phase=0.0)  # one square per room


class Scene:
    """Renders ``physics [N, 6]`` -> uint8 ``[N, 3, S, S]``: floor and walls (static), the point mass."""

    def __init__(self, task: str, size: int, device: torch.device):
        self.canvas = render.canvas(CAMERA, PLANE, size, device)
        self.background = render.background(CAMERA, FLOOR, size, device)
        for cx, cy, hx, hy in WALLS:
            wall = render.box(self.canvas, render.scalar(cx, device), render.scalar(cy, device), hx, hy)
            render.paint(self.background, wall, render.DECORATION, 1.5)  # bright, to stand out

    def __call__(self, physics: torch.Tensor) -> torch.Tensor:
        mass, shade = render.disc(self.canvas, physics[:, 0], physics[:, 1], RADIUS)
        image = render.paint_shaded(self.background, mass, shade, render.EFFECTOR, new=True)  # [N, 3, S, S]
        return render.to_uint8(image)
