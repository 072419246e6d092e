"""What a zero-shot evaluation row optimizes: a built-in task, a user's reward function or a goal.

An :class:`EvalTask` has a ``name`` (the row of the table and CSV), ``reward(physics [N, P]) -> [N]``
(it relabels the dataset to infer ``z`` and scores every step of the rollouts) and, for goals, the goal
observation ``goal_obs`` ``[*obs_shape]`` from which ``z`` is inferred directly (``z = ψ(g)`` or
``B(g)``) instead of from relabeled rewards.

* built-in: ``eval.tasks`` names, rewards from ``envs.relabel``;
* a reward of one's own: ``eval.reward=<module>:<function>`` (the module importable from the current
  directory or ``sys.path``), or ``reward_fn=`` from Python; the function maps a float32 batch of
  physics states ``[N, P]`` to rewards ``[N]`` (any array-like of N numbers);
* the goal rows ``<task>@goal`` (``eval.goal_rows``): a built-in goal task with ``z`` from its goal's
  observation, a diagnostic of reward inference (a good goal-z return next to a poor reward-z return
  points at the least-squares inference, not at the policy);
* a goal: ``eval.goal=[x, y]`` on ``torch/point_mass_maze``: the goal observation is the point mass at
  rest at ``(x, y)`` (state or rendered pixels), and the row is scored with the domain's goal-reaching
  reward around ``(x, y)``.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

import envs

RewardFn = Callable[[Tensor], Tensor]
REWARDED = 0.1
"""A transition counts as rewarded for a task when its reward is at least this (the goal-reaching rewards
are 1 inside the goal and 0.1 at its margin); used by the coverage report and the evaluation table."""
MIN_REWARDED = 0.01
"""Tasks whose data is rewarded less often are flagged: the data hardly shows their goal."""
GOAL_DOMAINS = ("torch/point_mass_maze",)
GOAL_SUFFIX = "@goal"
"""Rows ``<task>@goal``: a built-in goal task with ``z`` from its goal observation instead of from rewards
(``eval.goal_rows``), a diagnostic left out of the mean over tasks."""


def rewarded_fraction(rewards: Tensor) -> float:
    """Share of ``rewards`` (any shape) that count as rewarded (at least :data:`REWARDED`)."""
    return float((rewards >= REWARDED).float().mean())


class TaskSpecError(ValueError):
    """A custom reward or goal cannot be used (import failure, bad output, goal outside the arena)."""


@dataclass
class EvalTask:
    name: str
    reward: RewardFn
    goal_obs: Tensor | None = None


def builtin_task(env_name: str, task: str) -> EvalTask:
    def reward(physics: Tensor) -> Tensor:
        return torch.as_tensor(envs.relabel(env_name, physics, task)).float().to(physics.device).reshape(-1)

    return EvalTask(task, reward)


def checked_reward(fn: Callable, label: str) -> RewardFn:
    """``fn`` wrapped so that an exception, an output that is not ``N`` numbers, or non-finite values
    become one :class:`TaskSpecError` naming the function (and how many values were bad)."""

    def reward(physics: Tensor) -> Tensor:
        try:
            out = fn(physics)
            values = torch.as_tensor(out, dtype=torch.float32, device=physics.device)
        except Exception as err:
            raise TaskSpecError(f"custom reward {label} raised {type(err).__name__}: {err}") from None
        if values.numel() != physics.shape[0] or values.ndim > 2:
            raise TaskSpecError(
                f"custom reward {label} must return {physics.shape[0]} rewards (shape [N]) for physics of "
                f"shape {list(physics.shape)}, got shape {list(values.shape)}"
            )
        bad = int((~torch.isfinite(values)).sum())
        if bad:
            raise TaskSpecError(
                f"custom reward {label} returned {bad} non-finite value(s) (NaN or inf) of {values.numel()} "
                f"for physics of shape {list(physics.shape)}: make it return finite rewards"
            )
        return values.reshape(-1)

    return reward


def load_reward_fn(spec: str) -> Callable:
    """``"<module>:<function>"`` -> the function (the current directory is importable)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise TaskSpecError(f"eval.reward={spec!r}: expected '<module>:<function>' (my_rewards:near_door)")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except Exception as err:
        raise TaskSpecError(f"eval.reward={spec!r}: cannot import {module_name!r}: {err}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise TaskSpecError(f"eval.reward={spec!r}: {module_name} has no function {attr!r}")
    return fn


def custom_reward_task(fn: Callable, name: str) -> EvalTask:
    return EvalTask(name, checked_reward(fn, name))


def goal_task(env_name: str, goal: Sequence[float], obs_key: str, obs_shape: Sequence[int]) -> EvalTask:
    """The goal row for ``goal = (x, y)`` on the point-mass maze (see the module docstring); the goal
    observation has the model's ``obs_shape`` (pixels: the frame repeated over the stack)."""
    if env_name not in GOAL_DOMAINS:
        raise TaskSpecError(f"eval.goal is supported on {', '.join(GOAL_DOMAINS)}, not on {env_name}")
    from envs.torch_control import point_mass_maze as maze
    from envs.torch_control.rewards import tolerance

    if len(goal) != 2:
        raise TaskSpecError(f"eval.goal must be a position [x, y] on {env_name}, got {list(goal)}")
    x, y = (float(v) for v in goal)
    if not all(map(math.isfinite, (x, y))):
        raise TaskSpecError(f"eval.goal=[{x}, {y}] is not finite: give a position [x, y] in the arena")
    inner = 1.0 - maze.RADIUS
    if not bool(maze.is_free(torch.tensor([[x, y]]))[0]):
        raise TaskSpecError(
            f"eval.goal=[{x}, {y}] is outside the arena of {env_name} or inside a wall: the point mass "
            f"(radius {maze.RADIUS}) reaches |x|, |y| <= {inner} outside the walls (the cross at x = 0 and "
            "y = 0 is 0.1 thick)"
        )
    physics = torch.tensor([[x, y, 0.0, 0.0, 0.0, 0.0]])  # at rest, no control
    if obs_key == "pixels":
        channels, size = int(obs_shape[0]), int(obs_shape[-1])
        frame = maze.Scene("reward_free", size, torch.device("cpu"))(physics)[0]  # [3, H, W]
        goal_obs = frame.repeat(channels // 3, 1, 1)  # [3·stack, H, W]
    else:
        goal_obs = maze.state(physics, "reward_free")[0]
    target = torch.tensor([x, y])

    def reward(phys: Tensor) -> Tensor:
        dist = (phys[..., 0:2] - target.to(phys)).norm(dim=-1)
        near = tolerance(dist, (0.0, maze.GOAL_RADIUS), margin=maze.GOAL_RADIUS)
        control = tolerance(phys[..., 4:6], margin=1.0, value_at_margin=0.0, sigmoid="quadratic").mean(-1)
        return near * (4.0 + control) / 5.0

    return EvalTask(f"goal({x:g},{y:g})", reward, goal_obs)


def builtin_goal_task(env_name: str, task: str, obs_key: str, obs_shape: Sequence[int]) -> EvalTask | None:
    """Row ``<task>@goal`` of a built-in goal-reaching task: ``z`` from the observation of its goal, the
    task's own reward; None when the task has no goal position (or the domain no goal observation)."""
    if env_name not in GOAL_DOMAINS:
        return None
    from envs.torch_control.point_mass_maze import GOALS

    if task not in GOALS:
        return None
    goal = goal_task(env_name, GOALS[task], obs_key, obs_shape)
    return EvalTask(task + GOAL_SUFFIX, builtin_task(env_name, task).reward, goal.goal_obs)
