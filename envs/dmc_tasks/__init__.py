"""DeepMind Control tasks: the stock suite plus the URLB / ExoRL / TD-JEPA zero-shot task set.

Names are ``<domain>_<task>`` (``walker_walk``, ``point_mass_maze_reach_top_left``). The zero-shot set
(:data:`TASK_SET`) has one reward function per task in :mod:`envs.dmc_tasks.rewards`, of the physics state
only, so offline data relabels without re-simulation (:func:`relabel`):

========================  =================================================================
walker                    stand, walk, run (stock); flip (URLB); spin (ExoRL / TD-JEPA)
cheetah                   run (stock); run_backward, walk, walk_backward (URLB)
quadruped                 walk, run (stock); stand, jump (URLB)
point_mass_maze           reach_top_left/top_right/bottom_left/bottom_right (ExoRL);
                          reach_far (sparse far goal), loop (clockwise through all rooms)
========================  =================================================================

A physics state here is ``[qpos, qvel, act, ctrl]`` (``physics.get_state()`` then ``data.ctrl``, the
control applied in the step that produced the state), float ``[P]``. Importing this package is cheap;
``dm_control`` is imported by :func:`import_suite` (which defaults ``MUJOCO_GL`` to ``egl``).
"""

from __future__ import annotations

import functools
import os

import numpy as np

# dm_control.suite.ALL_TASKS of dm-control 1.0.50 (tests/test_dmc.py checks the list is current).
STOCK_TASKS: tuple[str, ...] = (
    "acrobot_swingup", "acrobot_swingup_sparse", "ball_in_cup_catch", "cartpole_balance",
    "cartpole_balance_sparse", "cartpole_swingup", "cartpole_swingup_sparse", "cartpole_three_poles",
    "cartpole_two_poles", "cheetah_run", "dog_fetch", "dog_run", "dog_stand", "dog_trot", "dog_walk",
    "finger_spin", "finger_turn_easy", "finger_turn_hard", "fish_swim", "fish_upright", "hopper_hop",
    "hopper_stand", "humanoid_CMU_run", "humanoid_CMU_stand", "humanoid_CMU_walk", "humanoid_run",
    "humanoid_run_pure_state", "humanoid_stand", "humanoid_walk", "lqr_lqr_2_1", "lqr_lqr_6_2",
    "manipulator_bring_ball", "manipulator_bring_peg", "manipulator_insert_ball", "manipulator_insert_peg",
    "pendulum_swingup", "point_mass_easy", "point_mass_hard", "quadruped_escape", "quadruped_fetch",
    "quadruped_run", "quadruped_walk", "reacher_easy", "reacher_hard", "stacker_stack_2", "stacker_stack_4",
    "swimmer_swimmer15", "swimmer_swimmer6", "walker_run", "walker_stand", "walker_walk",
)  # fmt: skip

TASK_SET: tuple[str, ...] = (
    "walker_stand", "walker_walk", "walker_run", "walker_flip", "walker_spin",
    "cheetah_run", "cheetah_run_backward", "cheetah_walk", "cheetah_walk_backward",
    "quadruped_stand", "quadruped_walk", "quadruped_run", "quadruped_jump",
    "point_mass_maze_reach_top_left", "point_mass_maze_reach_top_right", "point_mass_maze_reach_bottom_left",
    "point_mass_maze_reach_bottom_right", "point_mass_maze_reach_far", "point_mass_maze_loop",
)  # fmt: skip

CUSTOM_TASKS: tuple[str, ...] = tuple(t for t in TASK_SET if t not in STOCK_TASKS)
ALL_TASKS: tuple[str, ...] = STOCK_TASKS + CUSTOM_TASKS

# Longest first, so that "point_mass_maze_loop" parses as point_mass_maze + loop, not point_mass + maze_loop.
DOMAINS: tuple[str, ...] = tuple(
    sorted(
        {"humanoid_CMU", "point_mass", "ball_in_cup", "point_mass_maze"}
        | {name.split("_", 1)[0] for name in ALL_TASKS},
        key=len,
        reverse=True,
    )
)

GL_HELP = (
    "Pixels need a working OpenGL backend for MuJoCo. Install EGL (e.g. `apt-get install libegl1` with a "
    "GPU or Mesa EGL driver) and set MUJOCO_GL=egl, or install OSMesa (`apt-get install libosmesa6`) and "
    "set MUJOCO_GL=osmesa; or pass from_pixels=False."
)


class GLBackendError(RuntimeError):
    """No usable OpenGL backend for MuJoCo rendering."""


def gl_error(err: BaseException) -> GLBackendError:
    """The one error raised when rendering cannot work, naming the backend that failed and the fixes."""
    backend = os.environ.get("MUJOCO_GL")
    return GLBackendError(
        f"MuJoCo rendering failed with MUJOCO_GL={backend!r} ({type(err).__name__}: {err}). {GL_HELP}"
    )


def split_name(name: str) -> tuple[str, str]:
    """``"point_mass_maze_loop"`` -> ``("point_mass_maze", "loop")``."""
    for domain in DOMAINS:
        if name.startswith(domain + "_"):
            return domain, name[len(domain) + 1 :]
    raise ValueError(f"Cannot split DMC task name {name!r} into <domain>_<task>")


def import_suite():
    """``dm_control.suite`` (``MUJOCO_GL`` defaults to ``egl``); a bad backend -> :class:`GLBackendError`."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        from dm_control import suite
    except (RuntimeError, ImportError, AttributeError) as err:
        if "MUJOCO_GL" in str(err) or "OpenGL" in str(err) or "GL" in type(err).__name__:
            raise gl_error(err) from None
        raise
    return suite


def load(name: str, seed: int, time_limit: float = float("inf")):
    """dm_control ``Environment`` of task ``name`` with task RNG seed ``seed`` (no time limit by default)."""
    suite = import_suite()
    random = np.random.RandomState(seed)
    if name in STOCK_TASKS:
        domain, task = split_name(name)
        return suite.load(domain, task, task_kwargs={"random": random, "time_limit": time_limit})
    if name not in CUSTOM_TASKS:
        raise ValueError(f"Unknown DMC task {name!r}")
    domain, _ = split_name(name)
    if domain == "point_mass_maze":
        from envs.dmc_tasks import point_mass_maze

        return point_mass_maze.make_env(reward_fn(name), random=random, time_limit=time_limit)
    from envs.dmc_tasks import custom

    return custom.make_env(domain, reward_fn(name), random=random, time_limit=time_limit)


def reward_fn(name: str):
    """The reward function ``physics -> float`` of a task of :data:`TASK_SET`."""
    if name not in TASK_SET:
        raise ValueError(f"No physics-state reward for {name!r}; relabeling supports: {', '.join(TASK_SET)}")
    from envs.dmc_tasks import rewards

    return getattr(rewards, name)


def physics_state(physics) -> np.ndarray:
    """``[qpos, qvel, act, ctrl]`` float64 ``[P]`` of a dm_control physics."""
    return np.concatenate([physics.get_state(), physics.data.ctrl])


@functools.lru_cache(maxsize=8)
def _domain_physics(domain: str):
    """One physics per domain, used as a scratch pad by :func:`relabel`."""
    first = next(t for t in TASK_SET if split_name(t)[0] == domain)
    return load(first, seed=0).physics


def relabel(name: str, states: np.ndarray) -> np.ndarray:
    """Rewards ``[...]`` of task ``name`` for physics states ``[..., P]`` (any task of the same domain).

    For each state: ``set_state(qpos, qvel, act)``, ``ctrl <- state[-nu:]``, ``mj_forward``, then the task's
    reward function. Equals the online reward of a step with ``action_repeat=1`` (with ``k > 1`` the online
    reward is the sum over the ``k`` sub-steps, of which only the last state is stored).
    """
    fn = reward_fn(name)
    physics = _domain_physics(split_name(name)[0])
    states = np.asarray(states, dtype=np.float64)
    nu = physics.model.nu
    size = physics.get_state().size + nu
    if states.ndim < 1 or states.shape[-1] != size:
        raise ValueError(f"{name}: physics states must have shape [..., {size}], got {list(states.shape)}")
    flat = states.reshape(-1, size)
    out = np.empty(len(flat), np.float64)
    for i, row in enumerate(flat):
        physics.set_state(row[: size - nu])
        physics.data.ctrl[:] = row[size - nu :]
        physics.forward()
        out[i] = fn(physics)
    return out.reshape(states.shape[:-1])
