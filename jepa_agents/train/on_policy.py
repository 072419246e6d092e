"""On-policy schedule (PPO): collect ``T`` steps on all ``N`` copies -> update -> evaluate -> checkpoint.

:class:`OnPolicyTrainer` reuses :class:`jepa_agents.train.loop.Trainer` for the env, the agent, evaluation,
episode bookkeeping, logging and checkpoints; it replaces the replay buffer by a :class:`RolloutBuffer`
and the schedule by :meth:`OnPolicyTrainer.run`. Evaluation and checkpoints happen at rollout
boundaries, on the same ``eval.every`` / ``train.checkpoint_every`` schedule as the off-policy loop
(a rollout is ``T·N·action_repeat`` env steps, so a schedule finer than that fires once per rollout).
The run stops after the first rollout that reaches ``train.total_env_steps``.
``train.seed_env_steps`` and the replay settings do not apply.

The agent provides ``explore(obs) -> TensorDict(action, sample, log_prob, value)``, ``value(obs) -> [N]``,
``update(rollout [T, N], step) -> metrics``, ``act`` (evaluation) and ``state_dict``/``load_state_dict``.
"""

from __future__ import annotations

import time

import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor
from tqdm import tqdm

from jepa_agents.train.loop import Trainer, _crossed


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


class OnPolicyTrainer(Trainer):
    """On-policy schedule; see the module docstring."""

    def _make_replay(self) -> RolloutBuffer:
        return RolloutBuffer(self.cfg.agent.rollout_steps, self.env.batch_size[0], self.agent.obs_key)

    def _bootstrap(self, nxt: TensorDictBase, last: bool) -> Tensor:
        """``V(o'_t)`` ``[N]`` of truncated copies (all copies on the rollout's ``last`` step), else 0."""
        if last:
            return self.agent.value(nxt)
        boot = torch.zeros(self.env.batch_size[0], device=self.device)
        truncated = (nxt["done"] & ~nxt["terminated"]).reshape(-1)  # [N]
        if truncated.any():
            boot[truncated] = self.agent.value(nxt[truncated])
        return boot

    @torch.no_grad()
    def _collect(self) -> None:
        """``T`` steps of every copy into the rollout buffer; logs finished episodes as they end."""
        c, n, steps = self.counters, self.env.batch_size[0], self.replay.steps
        for t in range(steps):
            info = self.agent.explore(self.td)
            self.td["action"] = info["action"]
            step_td, self.td = self.env.step_and_maybe_reset(self.td)
            self.replay.add(t, step_td, info, self._bootstrap(step_td["next"], last=t == steps - 1))
            c.env_steps += n * self.action_repeat
            c.agent_steps += n
            episode_metrics = self._track_episodes(step_td)
            if episode_metrics:
                self.logger.log(episode_metrics, c.env_steps)

    def _train(self, bar: tqdm) -> None:
        cfg, c = self.cfg, self.counters
        total = cfg.train.total_env_steps
        t_last, steps_last = time.perf_counter(), c.env_steps
        while c.env_steps < total:
            before, t0 = c.env_steps, time.perf_counter()
            self._collect()
            t1 = time.perf_counter()
            try:
                train_metrics = self.agent.update(self.replay.rollout(), c.env_steps)
            except FloatingPointError as err:
                raise self._stopped(err) from None
            t2 = time.perf_counter()
            if _crossed(before, c.env_steps, cfg.logging.every):
                perf = {
                    "perf/env_steps_per_s": (c.env_steps - steps_last) / (t2 - t_last),
                    "perf/collect_steps_per_s": (c.env_steps - before) / (t1 - t0),
                    "perf/update_s": t2 - t1,
                }
                self.logger.log({**train_metrics, **perf}, c.env_steps)
                t_last, steps_last = t2, c.env_steps
                bar.set_postfix(sps=f"{perf['perf/env_steps_per_s']:.0f}", eval=f"{self.last_eval:.1f}")
            self._evaluate_and_checkpoint(before, bar)
