"""Rewards of the zero-shot task set as functions of a MuJoCo physics state (after ``mj_forward``).

Each function maps a ``dm_control.mujoco.Physics`` to a float in ``[0, 1]``. They read only quantities
that ``mj_forward`` recomputes from ``(qpos, qvel, act, ctrl)``, so offline data can be relabeled from
stored physics states (:func:`envs.dmc_tasks.relabel`). ``tol`` is dm_control's ``rewards.tolerance``:
1 inside ``bounds``, decaying with distance ``d`` outside them; with ``sigmoid="linear"`` the value is
``max(0, 1 - (1 - v_m) d / margin)`` where ``v_m = value_at_margin``; the default ``"gaussian"`` is
``exp(-(d / margin)^2 ln(1 / v_m))`` with ``v_m = 0.1``.

Definitions follow URLB (Laskin et al. 2021) and ExoRL (Yarats et al. 2022); the stock ones equal the
dm_control suite rewards (checked to 1e-6 in ``tests/test_dmc_tasks.py``).
"""

from __future__ import annotations

import numpy as np
from dm_control.utils.rewards import tolerance as tol

INF = float("inf")

# ----------------------------------------------------------------------------------------------- walker
_STAND_HEIGHT = 1.2  # torso height (m) above which `standing` is 1
_WALK_SPEED, _RUN_SPEED = 1.0, 8.0  # m/s
_FLIP_SPEED, _SPIN_SPEED = 5.0, 10.0  # torso angular momentum about y (kg m^2/s)


def _walker_stand(physics) -> float:
    """``s = (3 tol(h, [1.2, inf), margin 0.6) + (1 + z_zz) / 2) / 4`` with torso height ``h`` and
    ``z_zz`` the world-z component of the torso z-axis (uprightness)."""
    standing = tol(
        physics.named.data.xpos["torso", "z"], bounds=(_STAND_HEIGHT, INF), margin=_STAND_HEIGHT / 2
    )
    upright = (1.0 + physics.named.data.xmat["torso", "zz"]) / 2.0
    return float((3.0 * standing + upright) / 4.0)


def _walker_move(physics, speed: float) -> float:
    """``s (5 m + 1) / 6`` with ``m = tol(v_x, [speed, inf), margin speed/2, v_m 0.5, linear)``,
    ``v_x`` the horizontal centre-of-mass velocity (``torso_subtreelinvel`` sensor)."""
    v_x = physics.named.data.sensordata["torso_subtreelinvel"][0]
    move = tol(v_x, bounds=(speed, INF), margin=speed / 2, value_at_margin=0.5, sigmoid="linear")
    return float(_walker_stand(physics) * (5.0 * move + 1.0) / 6.0)


def _walker_angmom(physics) -> float:
    """Angular momentum ``L_y`` of the walker about the y axis (``subtree_angmom`` of the torso)."""
    return float(physics.named.data.subtree_angmom["torso"][1])


def walker_stand(physics) -> float:
    """Stock ``walker.stand``: the standing term ``s`` alone."""
    return _walker_stand(physics)


def walker_walk(physics) -> float:
    """Stock ``walker.walk``: ``s (5 m + 1) / 6`` with target speed 1 m/s."""
    return _walker_move(physics, _WALK_SPEED)


def walker_run(physics) -> float:
    """Stock ``walker.run``: ``s (5 m + 1) / 6`` with target speed 8 m/s."""
    return _walker_move(physics, _RUN_SPEED)


def walker_flip(physics) -> float:
    """URLB ``walker.flip``: ``s (5 f + 1) / 6``, ``f = tol(L_y, [5, inf), margin 5, v_m 0, linear)``
    (back flips with a standing posture at take-off and landing)."""
    flip = tol(
        _walker_angmom(physics),
        bounds=(_FLIP_SPEED, INF),
        margin=_FLIP_SPEED,
        value_at_margin=0,
        sigmoid="linear",
    )
    return float(_walker_stand(physics) * (5.0 * flip + 1.0) / 6.0)


def walker_spin(physics) -> float:
    """TD-JEPA/ExoRL ``walker.spin``: ``tol(L_y, [10, inf), margin 10, v_m 0, linear)`` (no posture term)."""
    return float(
        tol(
            _walker_angmom(physics),
            bounds=(_SPIN_SPEED, INF),
            margin=_SPIN_SPEED,
            value_at_margin=0,
            sigmoid="linear",
        )
    )


# ---------------------------------------------------------------------------------------------- cheetah
def _cheetah(physics, speed: float) -> float:
    """``tol(v_x, [speed, inf), margin |speed|, v_m 0, linear)`` with the sign of ``speed`` giving the
    direction: ``v_x`` is the torso-subtree horizontal velocity, multiplied by ``sign(speed)``."""
    direction = 1.0 if speed > 0 else -1.0
    v_x = direction * physics.named.data.sensordata["torso_subtreelinvel"][0]
    return float(tol(v_x, bounds=(abs(speed), INF), margin=abs(speed), value_at_margin=0, sigmoid="linear"))


def cheetah_run(physics) -> float:
    """Stock ``cheetah.run``: forward speed 10 m/s."""
    return _cheetah(physics, 10.0)


def cheetah_run_backward(physics) -> float:
    """URLB ``cheetah.run_backward``: backward speed 10 m/s."""
    return _cheetah(physics, -10.0)


def cheetah_walk(physics) -> float:
    """URLB ``cheetah.walk``: forward speed 2 m/s."""
    return _cheetah(physics, 2.0)


def cheetah_walk_backward(physics) -> float:
    """URLB ``cheetah.walk_backward``: backward speed 2 m/s."""
    return _cheetah(physics, -2.0)


# -------------------------------------------------------------------------------------------- quadruped
def _quadruped_upright(physics) -> float:
    """``u = tol(z_zz, [1, inf), margin 2, v_m 0, linear) = (1 + z_zz) / 2``: 1 upright, 0 upside down."""
    return float(
        tol(
            physics.named.data.xmat["torso", "zz"],
            bounds=(1.0, INF),
            margin=2.0,
            value_at_margin=0,
            sigmoid="linear",
        )
    )


def _quadruped_move(physics, speed: float) -> float:
    """``u tol(v, [speed, inf), margin speed, v_m 0.5, linear)``, ``v`` = torso-frame forward velocity."""
    v = physics.named.data.sensordata["velocimeter"][0]
    return _quadruped_upright(physics) * float(
        tol(v, bounds=(speed, INF), margin=speed, value_at_margin=0.5, sigmoid="linear")
    )


def quadruped_stand(physics) -> float:
    """URLB ``quadruped.stand``: the uprightness ``u`` alone."""
    return _quadruped_upright(physics)


def quadruped_walk(physics) -> float:
    """Stock ``quadruped.walk``: ``u`` times the move term at 0.5 m/s."""
    return _quadruped_move(physics, 0.5)


def quadruped_run(physics) -> float:
    """Stock ``quadruped.run``: ``u`` times the move term at 5 m/s."""
    return _quadruped_move(physics, 5.0)


def quadruped_jump(physics) -> float:
    """URLB ``quadruped.jump``: ``u tol(z_com, [1, inf), margin 1, v_m 0.5, linear)``, ``z_com`` the height
    of the torso-subtree centre of mass (``center_of_mass`` sensor)."""
    z_com = physics.named.data.sensordata["center_of_mass"][2]
    jump = tol(z_com, bounds=(1.0, INF), margin=1.0, value_at_margin=0.5, sigmoid="linear")
    return _quadruped_upright(physics) * float(jump)


# -------------------------------------------------------------------------------------- point-mass maze
_TARGET_SIZE = 0.015
CORNERS = {
    "top_left": (-0.15, 0.15),
    "top_right": (0.15, 0.15),
    "bottom_left": (-0.15, -0.15),
    "bottom_right": (0.15, -0.15),
}
FAR_GOAL = (0.25, -0.25)  # far corner of the bottom-right room, two doorways away from the start room
_LOOP_HALF = 0.15  # the loop runs along the square through the four room centres (+-0.15, +-0.15)
_LOOP_SPEED = 0.05  # m/s along the loop for full reward


def _maze_xy(physics) -> np.ndarray:
    return np.asarray(physics.named.data.geom_xpos["pointmass"][:2])


def _maze_reach(physics, goal: tuple[float, float]) -> float:
    """ExoRL reach: ``tol(|p - g|, [0, 0.015], margin 0.09) (4 + mean_i tol(a_i, margin 1, v_m 0,
    quadratic)) / 5``: near the goal ``g``, with a small-control bonus (``a`` = ``ctrl``)."""
    near = tol(
        np.linalg.norm(_maze_xy(physics) - np.asarray(goal)),
        bounds=(0, _TARGET_SIZE),
        margin=6 * _TARGET_SIZE,
    )
    control = tol(physics.data.ctrl, margin=1, value_at_margin=0, sigmoid="quadratic").mean()
    return float(near * (4.0 + control) / 5.0)


def point_mass_maze_reach_top_left(physics) -> float:
    """Reach the centre of the top-left room (the start room)."""
    return _maze_reach(physics, CORNERS["top_left"])


def point_mass_maze_reach_top_right(physics) -> float:
    """Reach the centre of the top-right room."""
    return _maze_reach(physics, CORNERS["top_right"])


def point_mass_maze_reach_bottom_left(physics) -> float:
    """Reach the centre of the bottom-left room."""
    return _maze_reach(physics, CORNERS["bottom_left"])


def point_mass_maze_reach_bottom_right(physics) -> float:
    """Reach the centre of the bottom-right room."""
    return _maze_reach(physics, CORNERS["bottom_right"])


def point_mass_maze_reach_far(physics) -> float:
    """Sparse far goal: ``1[|p - (0.25, -0.25)| <= 0.03]``, the far corner of the room diagonally
    opposite the start room (two doorways away); no shaping, a long-horizon exploration test."""
    return float(np.linalg.norm(_maze_xy(physics) - np.asarray(FAR_GOAL)) <= 2 * _TARGET_SIZE)


def point_mass_maze_loop(physics) -> float:
    """Clockwise loop through the four rooms: ``on * fwd``.

    The path is the square through the room centres (side ``2 * 0.15``; it crosses every doorway). The
    nearest side is picked by the dominant coordinate of ``p = (x, y)``: top (``y >= |x|``, heading
    ``+x``), right (``x > |y|``, ``-y``), bottom (``-y >= |x|``, ``-x``), else left (``+y``).
    ``on = tol(d, [0, 0.02], margin 0.03, v_m 0, linear)`` with ``d`` the distance to that side's line,
    ``fwd = tol(v . e, [0.05, inf), margin 0.05, v_m 0, linear)`` with ``e`` the heading.
    """
    x, y = _maze_xy(physics)
    vx, vy = physics.data.qvel[:2]
    if y >= abs(x):
        dist, speed = abs(y - _LOOP_HALF), vx
    elif x > abs(y):
        dist, speed = abs(x - _LOOP_HALF), -vy
    elif -y >= abs(x):
        dist, speed = abs(y + _LOOP_HALF), -vx
    else:
        dist, speed = abs(x + _LOOP_HALF), vy
    on = tol(dist, bounds=(0, 0.02), margin=0.03, value_at_margin=0, sigmoid="linear")
    fwd = tol(speed, bounds=(_LOOP_SPEED, INF), margin=_LOOP_SPEED, value_at_margin=0, sigmoid="linear")
    return float(on * fwd)
