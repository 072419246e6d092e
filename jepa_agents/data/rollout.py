"""The rollout buffer of on-policy learners: the ``[T, N]`` transitions of one rollout."""

from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor


class RolloutBuffer:
    """The ``[T, N]`` transitions of one rollout, overwritten every iteration.

    Row ``(t, n)``: the observation ``o_t`` (key ``obs_key``), what the agent's ``explore`` returned
    (``action``, ``sample``, ``log_prob``, ``value``), ``reward``, ``terminated``, ``done`` (``[T, N]``) and
    ``bootstrap``: ``V(o'_t)`` of the step's next observation where the trainer computed it (truncated
    episodes and the last step), else 0. :meth:`rollout` adds ``next_value`` ``[T, N]``:
    ``V(o_{t+1})`` where the episode goes on, ``bootstrap`` where it ended or at ``t = T - 1``.

    Its :meth:`state_dict` is empty: checkpoints are written at rollout boundaries only, when the
    buffer holds nothing that the next iteration needs (it is refilled from scratch).
    """

    def __init__(self, steps: int, num_envs: int, obs_key: str):
        self.steps, self.num_envs, self.obs_key = steps, num_envs, obs_key
        self._data: TensorDictBase | None = None
        self._filled = 0

    def add(self, t: int, step_td: TensorDictBase, info: TensorDictBase, bootstrap: Tensor) -> None:
        """Store step ``t`` from ``env.step`` output ``step_td`` ``[N]``, ``explore`` output ``info`` ``[N]``
        and ``bootstrap`` ``[N]``."""
        n = self.num_envs
        row = TensorDict(
            {
                self.obs_key: step_td[self.obs_key],
                **info,
                "reward": step_td["next", "reward"].reshape(n),
                "terminated": step_td["next", "terminated"].reshape(n),
                "done": step_td["next", "done"].reshape(n),
                "bootstrap": bootstrap,
            },
            batch_size=[n],
        )
        if self._data is None:
            self._data = row.expand(self.steps, n).clone()  # [T, N], allocated once
        self._data[t] = row
        self._filled = t + 1

    def rollout(self) -> TensorDictBase:
        """The full rollout ``[T, N]`` with ``next_value``; raises unless all ``T`` steps were added."""
        if self._data is None or self._filled != self.steps:
            raise RuntimeError(f"rollout incomplete: {self._filled} of {self.steps} steps added")
        data = self._data
        next_value = data["bootstrap"].clone()  # [T, N]
        next_value[:-1] = torch.where(data["done"][:-1], next_value[:-1], data["value"][1:])
        data["next_value"] = next_value
        return data

    def __len__(self) -> int:
        return self._filled * self.num_envs

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"a rollout buffer has no state to restore, got keys {sorted(state)}")
