"""Control tasks written natively in torch: batched physics and batched rendering, on any device.

``envs.make("torch/<task>", num_envs, seed, device, **options)`` builds N copies of a task stepping in
one call. Tasks (``NAMES``): ``cartpole_balance``, ``cartpole_swingup``, ``pendulum_swingup`` (same
dynamics, rewards and initial states as dm_control's), ``point_mass_maze`` (reward-free four-room
maze with goal-reaching tasks) and ``reacher`` (two-link arm with a family of reach targets).
``TASKS[name]`` lists the reward functions a task accepts as ``task=`` and that ``relabel`` computes.

Options: ``from_pixels`` (True; False skips rendering), ``image_size`` (64), ``frame_stack`` (1: one RGB
frame; the learner may stack), ``action_repeat`` (1), and ``task`` for ``point_mass_maze`` (default
``reward_free``) and ``reacher`` (default ``reach_random``), ``distraction`` (pixels only: a mapping of
``color``, ``background``, ``camera`` strengths in [0, 1] and ``heldout``; see
:mod:`envs.torch_control.distraction`). See ``docs/torch_envs.md``.
Heavy work is deferred to ``make``; importing this package only defines names.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping

import torch

from envs.torch_control.distraction import DistractionSpec

NAMES: tuple[str, ...] = (
    "cartpole_balance",
    "cartpole_swingup",
    "pendulum_swingup",
    "point_mass_maze",
    "reacher",
)
_DOMAINS = {
    "cartpole_balance": "cartpole",
    "cartpole_swingup": "cartpole",
    "pendulum_swingup": "pendulum",
    "point_mass_maze": "point_mass_maze",
    "reacher": "reacher",
}
# Action repeat per domain when a config leaves it open (cartpole as in the PlaNet/DrQ benchmark).
ACTION_REPEAT: dict[str, int] = {"cartpole": 8}
DEFAULT_ACTION_REPEAT = 2


def default_action_repeat(task: str) -> int:
    """Action repeat of ``task``'s domain for training configs (cartpole 8, others 2); ``make`` itself
    defaults to 1."""
    return ACTION_REPEAT.get(_DOMAINS[task], DEFAULT_ACTION_REPEAT)


# The reward functions of each task: the first is the default (also used when relabeling by task name).
TASKS: dict[str, tuple[str, ...]] = {
    "cartpole_balance": ("cartpole_balance",),
    "cartpole_swingup": ("cartpole_swingup",),
    "pendulum_swingup": ("pendulum_swingup",),
    "point_mass_maze": (
        "reward_free",
        "reach_top_left",
        "reach_top_right",
        "reach_bottom_left",
        "reach_bottom_right",
        "reach_far",
    ),
    "reacher": (
        "reach_random",
        "reach_n",
        "reach_ne",
        "reach_e",
        "reach_se",
        "reach_s",
        "reach_sw",
        "reach_w",
        "reach_nw",
    ),
}
_OPTIONS = ("from_pixels", "image_size", "frame_stack", "action_repeat", "task", "start", "distraction")
STARTS = ("reset", "uniform")
"""``start=``: the task's reset distribution, or the domain's broad start states (``uniform_physics``)."""


def _domain(name: str):
    return importlib.import_module(f"envs.torch_control.{_DOMAINS[name]}")


def _positive_int(key: str, value, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


def make(
    task: str,
    /,
    num_envs: int,
    seed: int,
    device: torch.device | str,
    *,
    from_pixels: bool = True,
    image_size: int = 64,
    frame_stack: int = 1,
    action_repeat: int = 1,
    **options,
):
    """Build ``num_envs`` copies of torch task ``task`` on ``device`` (a ``TorchControlEnv``).

    ``task`` is positional-only so that the reward option ``task=`` (maze, reacher) reaches ``options``.
    """
    if task not in NAMES:
        raise ValueError(f"Unknown torch task {task!r}; expected one of {NAMES}")
    unknown = set(options) - {"task", "start", "distraction"}
    if unknown or ("task" in options and len(TASKS[task]) == 1):
        bad = sorted(unknown or {"task"})
        known = [o for o in _OPTIONS if o != "task" or len(TASKS[task]) > 1]
        raise ValueError(f"Unknown option(s) {bad} for torch/{task}; known options: {known}")
    start = options.get("start", "reset")
    if start not in STARTS:
        raise ValueError(f"start={start!r} for torch/{task}; choose one of {STARTS}")
    if start == "uniform" and not hasattr(_domain(task), "uniform_physics"):
        have = sorted(n for n in NAMES if hasattr(_domain(n), "uniform_physics"))
        raise ValueError(f"start='uniform' is not available for torch/{task}; it is for {', '.join(have)}")
    reward_task = options.get("task", TASKS[task][0])
    if reward_task not in TASKS[task]:
        raise ValueError(f"Unknown task={reward_task!r} for torch/{task}; expected one of {TASKS[task]}")
    _positive_int("num_envs", num_envs)
    if not isinstance(from_pixels, bool):
        raise ValueError(f"from_pixels must be a bool, got {from_pixels!r}")
    _positive_int("image_size", image_size, minimum=16)
    _positive_int("frame_stack", frame_stack)
    _positive_int("action_repeat", action_repeat)
    distraction = _distraction_spec(options.get("distraction"), task)
    if distraction.active and not from_pixels:
        raise ValueError(f"distraction changes what the frames show: torch/{task} needs from_pixels=True")
    from envs.torch_control.env import TorchControlEnv

    return TorchControlEnv(
        _domain(task),
        reward_task,
        num_envs=num_envs,
        seed=seed,
        device=torch.device(device),
        from_pixels=from_pixels,
        image_size=image_size,
        frame_stack=frame_stack,
        action_repeat=action_repeat,
        start=start,
        distraction=distraction,
    )


def _distraction_spec(value, task: str) -> DistractionSpec:
    """``distraction=`` as a :class:`DistractionSpec`, a mapping of its fields, or None (none)."""
    if value is None or isinstance(value, DistractionSpec):
        return value or DistractionSpec()
    if not isinstance(value, Mapping):
        raise ValueError(f"distraction for torch/{task} must be a mapping of color/background/camera/heldout")
    fields = {f.name for f in dataclasses.fields(DistractionSpec)}
    unknown = sorted(set(value) - fields)
    if unknown:
        raise ValueError(f"Unknown distraction key(s) {unknown} for torch/{task}; known: {sorted(fields)}")
    return DistractionSpec(**dict(value))


def relabel(task: str, physics: torch.Tensor) -> torch.Tensor:
    """Rewards of ``task`` for stored physics states ``[..., P]`` -> ``[...]`` (one physics step each).

    ``task`` is a name in ``NAMES`` (its default reward) or any reward function in ``TASKS``. With
    ``action_repeat > 1`` the online reward sums the repeated steps; this recomputes the last one.
    """
    owners = [name for name, rewards in TASKS.items() if task in rewards]
    if task in NAMES:
        name, reward_task = task, TASKS[task][0]
    elif owners:
        name, reward_task = owners[0], task
    else:
        known = sorted({*NAMES, *(t for rewards in TASKS.values() for t in rewards)})
        raise ValueError(f"Unknown torch task {task!r} for relabel; expected one of {known}")
    domain = _domain(name)
    if not isinstance(physics, torch.Tensor) or physics.shape[-1:] != (domain.PHYSICS_DIM,):
        shape = list(physics.shape) if isinstance(physics, torch.Tensor) else type(physics).__name__
        raise ValueError(f"physics for {name} must have shape [..., {domain.PHYSICS_DIM}], got {shape}")
    return domain.reward(physics.float(), reward_task)
