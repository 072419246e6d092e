"""Vectorized environments for jepa_agents, all behind one torchrl ``EnvBase`` interface.

``envs.make("torch/cartpole_swingup", num_envs=1024, seed=0, device="cpu")`` builds any registered
environment; ``envs.list_envs()`` lists the names; ``envs.relabel(name, physics)`` recomputes rewards
from stored physics states (for offline datasets).
"""

from envs.registry import default_action_repeat, list_envs, make, relabel

__all__ = ["default_action_repeat", "list_envs", "make", "relabel"]
