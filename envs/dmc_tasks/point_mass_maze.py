"""Point-mass maze domain: a 2-D point mass (two slide joints, two motors) in a four-room maze.

Model: ``point_mass_maze.xml`` (arena ``[-0.3, 0.3]^2``, rooms centred at ``(+-0.15, +-0.15)``, doorways
centred on the room-centre lines). Physics step 0.02 s, one step per control step, so 1000 steps = 20 s
as in ExoRL. Episodes start at rest at a uniform position in the top-left room,
``x ~ U[-0.25, -0.05]``, ``y ~ U[0.05, 0.25]``. Observation: ``position`` (2) and ``velocity`` (2).
"""

from __future__ import annotations

import collections
import os

from dm_control import mujoco
from dm_control.rl import control
from dm_control.suite import base, common

XML_PATH = os.path.join(os.path.dirname(__file__), "point_mass_maze.xml")


class MazeTask(base.Task):
    """A maze task whose reward is ``reward_fn(physics)`` (see :mod:`envs.dmc_tasks.rewards`)."""

    def __init__(self, reward_fn, random=None):
        self._reward_fn = reward_fn
        super().__init__(random=random)

    def initialize_episode(self, physics) -> None:
        physics.named.data.qpos["root_x"] = self.random.uniform(-0.25, -0.05)
        physics.named.data.qpos["root_y"] = self.random.uniform(0.05, 0.25)
        super().initialize_episode(physics)

    def get_observation(self, physics) -> collections.OrderedDict:
        return collections.OrderedDict(position=physics.position(), velocity=physics.velocity())

    def get_reward(self, physics) -> float:
        return self._reward_fn(physics)


def make_env(reward_fn, random=None, time_limit: float = float("inf")) -> control.Environment:
    """A dm_control ``Environment`` of the maze with the given reward."""
    with open(XML_PATH) as f:
        physics = mujoco.Physics.from_xml_string(f.read(), common.ASSETS)
    return control.Environment(physics, MazeTask(reward_fn, random=random), time_limit=time_limit)
