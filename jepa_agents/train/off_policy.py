"""Off-policy schedule (SAC, discrete SAC): one env step of every copy, then ``agent.update(replay)``.

The agent does its own number of gradient steps per call (its update-to-data ratio). The first
``train.seed_env_steps`` env steps act uniformly at random and do not update.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from jepa_agents.data.replay import OBS_KEYS, Replay
from jepa_agents.infra import distributed
from jepa_agents.infra.schedule import crossed
from jepa_agents.train.online import OnlineTrainer


def row_nbytes(env, frame_stack: int = 1) -> int:
    """Bytes of one replay row for ``env`` (observations, action, reward, flags, bookkeeping)."""
    obs = env.observation_spec
    total = 64 + math.prod(env.action_spec.shape[1:]) * env.action_spec.dtype.itemsize  # 64: scalars
    for key in (k for k in OBS_KEYS if k in obs.keys()):
        size = math.prod(obs[key].shape[1:]) * obs[key].dtype.itemsize
        total += size // frame_stack if key == "pixels" else size
    return total


def make_replay(cfg: DictConfig, env, agent, device: torch.device) -> Replay:
    """The replay of a run: ``cfg.train.replay_capacity`` rows for ``env``'s copies, batches on ``device``
    (``agent`` is not needed: the signature of every data builder).

    ``cfg.train.replay_device``: ``auto`` keeps rows on ``device`` when they fit in half of its free
    memory (else on the CPU), ``cpu`` on the CPU, ``memmap`` in memory-mapped files under
    ``<run_dir>/replay`` (a temporary directory without a run directory). Pixel stacks of
    ``cfg.env.frame_stack`` frames are stored one frame per step.
    """
    mode = str(cfg.train.replay_device)  # one of the schema's REPLAY_DEVICES (checked when composed)
    obs_keys = [k for k in OBS_KEYS if k in env.observation_spec.keys()]
    frame_stack = int(cfg.env.frame_stack) if "pixels" in obs_keys else 1
    if "pixels" in obs_keys and env.observation_spec["pixels"].shape[1] % frame_stack:
        channels = env.observation_spec["pixels"].shape[1]
        raise ValueError(
            f"pixels have {channels} channels, not a stack of env.frame_stack={frame_stack} frames"
        )
    capacity = int(cfg.train.replay_capacity)
    storage_device, memmap_dir = torch.device("cpu"), None
    if mode == "memmap":
        run_dir = str(cfg.get("run_dir", "") or "")
        memmap_dir = Path(run_dir) / "replay" if run_dir else Path(tempfile.mkdtemp(prefix="jepa_replay_"))
        ctx = distributed.context()
        memmap_dir = memmap_dir / f"rank{ctx.rank}" if ctx.world_size > 1 else memmap_dir  # one per rank
    elif mode == "auto" and device.type != "cpu":
        free, _ = torch.accelerator.get_memory_info(device)
        if capacity * row_nbytes(env, frame_stack) <= free // 2:
            storage_device = device
    return Replay(capacity, env.batch_size[0], obs_keys, device, storage_device, memmap_dir, frame_stack)


class OffPolicyTrainer(OnlineTrainer):
    """The off-policy schedule (module docstring)."""

    def _train(self, bar: tqdm) -> None:
        cfg, c = self.cfg, self.counters
        total, n = self.total, self.env.batch_size[0]
        steps_per_iter = n * self.action_repeat * self.ctx.world_size  # frames of every rank
        # rates over the logging window: env frames and gradient updates, as the agent counts them in its
        # `train/updates` metric (utd and update_every make them differ from the loop's update calls; an
        # agent without that metric counts one per call); the first window opens after the first update
        t_last, steps_last, calls, updates, updates_last = time.perf_counter(), c.env_steps, 0, 0.0, 0.0
        train_metrics: dict[str, float] = {}
        while c.env_steps < total:
            before = c.env_steps
            with torch.no_grad():
                if c.env_steps < cfg.train.seed_env_steps:
                    self.td["action"] = self.env.action_spec.rand()
                else:
                    self.td["action"] = self.agent.act(self.td, eval_mode=False)
            step_td, self.td = self.env.step_and_maybe_reset(self.td)
            self.data.add(step_td)
            c.env_steps += steps_per_iter
            c.agent_steps += n * self.ctx.world_size
            episode_metrics = self._track_episodes(step_td)
            if c.env_steps > cfg.train.seed_env_steps:
                try:
                    train_metrics = self.agent.update(self.data, c.env_steps)
                except FloatingPointError as err:
                    raise self.stopped(err) from None
                if train_metrics:
                    updates = float(train_metrics.get("train/updates", updates + 1))
                if calls == 0:  # the rates count from the first update, not over the seed phase
                    t_last, steps_last, updates_last = time.perf_counter(), c.env_steps, updates
                calls += 1
            if episode_metrics:
                self.logger.log(episode_metrics, c.env_steps)
            if crossed(before, c.env_steps, cfg.logging.every) and train_metrics:
                now, perf = time.perf_counter(), {}
                if c.env_steps > steps_last:  # not the window the first update has just opened
                    perf = {
                        "perf/env_steps_per_s": (c.env_steps - steps_last) / (now - t_last),
                        "perf/updates_per_s": (updates - updates_last) / (now - t_last),
                    }
                    bar.set_postfix(upd_s=f"{perf['perf/updates_per_s']:.1f}", eval=f"{self.last_eval:.1f}")
                self.logger.log({**train_metrics, **perf}, c.env_steps)
                t_last, steps_last, updates_last = now, c.env_steps, updates
            self._after_iteration(before, bar)
