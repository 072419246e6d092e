"""On-policy schedule (PPO): collect ``T`` steps on all ``N`` copies -> update -> evaluate -> checkpoint.

:class:`OnPolicyTrainer` is an :class:`~jepa_agents.train.online.OnlineTrainer` whose data is a
:class:`~jepa_agents.data.rollout.RolloutBuffer`. Evaluation and checkpoints happen at rollout
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
from omegaconf import DictConfig
from tensordict import TensorDictBase
from torch import Tensor
from tqdm import tqdm

from jepa_agents.data.rollout import RolloutBuffer
from jepa_agents.infra.schedule import crossed
from jepa_agents.train.online import OnlineTrainer


def make_rollout_buffer(cfg: DictConfig, env, agent, device: torch.device) -> RolloutBuffer:
    """The ``[T, N]`` buffer of one rollout (``agent.rollout_steps`` steps of every copy)."""
    return RolloutBuffer(cfg.agent.rollout_steps, env.batch_size[0], agent.obs_key)


class OnPolicyTrainer(OnlineTrainer):
    """On-policy schedule; see the module docstring."""

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
        c, n, steps = self.counters, self.env.batch_size[0], self.data.steps
        for t in range(steps):
            info = self.agent.explore(self.td)
            self.td["action"] = info["action"]
            step_td, self.td = self.env.step_and_maybe_reset(self.td)
            self.data.add(t, step_td, info, self._bootstrap(step_td["next"], last=t == steps - 1))
            c.env_steps += n * self.action_repeat * self.ctx.world_size  # frames of every rank
            c.agent_steps += n * self.ctx.world_size
            episode_metrics = self._track_episodes(step_td)
            if episode_metrics:
                self.logger.log(episode_metrics, c.env_steps)

    def _train(self, bar: tqdm) -> None:
        cfg, c = self.cfg, self.counters
        total = self.total
        t_last, steps_last = time.perf_counter(), c.env_steps
        while c.env_steps < total:
            before, t0 = c.env_steps, time.perf_counter()
            self._collect()
            t1 = time.perf_counter()
            try:
                train_metrics = self.agent.update(self.data.rollout(), c.env_steps)
            except FloatingPointError as err:
                raise self.stopped(err) from None
            t2 = time.perf_counter()
            if crossed(before, c.env_steps, cfg.logging.every):
                perf = {
                    "perf/env_steps_per_s": (c.env_steps - steps_last) / (t2 - t_last),
                    "perf/collect_steps_per_s": (c.env_steps - before) / (t1 - t0),
                    "perf/update_s": t2 - t1,
                }
                self.logger.log({**train_metrics, **perf}, c.env_steps)
                t_last, steps_last = t2, c.env_steps
                bar.set_postfix(sps=f"{perf['perf/env_steps_per_s']:.0f}", eval=f"{self.last_eval:.1f}")
            self._after_iteration(before, bar)
