"""Custom (URLB / ExoRL / TD-JEPA) tasks on the stock walker, cheetah and quadruped domains.

Each reuses the stock domain's model, initial-state distribution, observation and control timestep and
replaces only ``get_reward`` with a function of :mod:`envs.dmc_tasks.rewards`. Quadruped stand/jump use a
10 m floor (as URLB).
"""

from __future__ import annotations

from dm_control.rl import control
from dm_control.suite import cheetah, common, quadruped, walker


def _with_reward(task_cls: type, reward_fn) -> type:
    """Subclass of the stock task class ``task_cls`` whose reward is ``reward_fn(physics)``."""

    def get_reward(self, physics) -> float:
        return reward_fn(physics)

    return type(f"{task_cls.__name__}_{reward_fn.__name__}", (task_cls,), {"get_reward": get_reward})


def make_env(domain: str, reward_fn, random=None, time_limit: float = float("inf")) -> control.Environment:
    """A dm_control ``Environment`` of stock ``domain`` with the reward ``reward_fn``."""
    if domain == "walker":
        physics = walker.Physics.from_xml_string(*walker.get_model_and_assets())
        task = _with_reward(walker.PlanarWalker, reward_fn)(move_speed=0, random=random)
        return control.Environment(
            physics, task, time_limit=time_limit, control_timestep=walker._CONTROL_TIMESTEP
        )
    if domain == "cheetah":
        physics = cheetah.Physics.from_xml_string(*cheetah.get_model_and_assets())
        task = _with_reward(cheetah.Cheetah, reward_fn)(random=random)
        return control.Environment(physics, task, time_limit=time_limit)
    if domain == "quadruped":
        physics = quadruped.Physics.from_xml_string(quadruped.make_model(floor_size=10), common.ASSETS)
        task = _with_reward(quadruped.Move, reward_fn)(desired_speed=0.5, random=random)
        return control.Environment(
            physics, task, time_limit=time_limit, control_timestep=quadruped._CONTROL_TIMESTEP
        )
    raise ValueError(f"No custom tasks for domain {domain!r}")
