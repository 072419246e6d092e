"""Offline training of a zero-shot agent on a reward-free dataset (``jepa-agents train-zero-shot``).

One step = one gradient update on a uniform random batch of transitions; ``scalars.csv`` and TensorBoard
count updates on their ``step`` axis. :class:`OfflineTrainer` is a :class:`~jepa_agents.train.lifecycle.
Lifecycle`: checkpoints (``checkpoints/ckpt_<updates>.pt``, atomic) hold the agent (networks, targets,
optimizers), every RNG state and the update counter, so ``resume=<run_dir>`` continues the same run; a
non-finite loss stops training before the optimizer step (parameters unchanged, last checkpoint intact).
Zero-shot evaluation (:mod:`.evaluate`) runs every ``train.eval_every`` updates and at the end, without
consuming the training RNG streams; so does the Monte-Carlo check of the successor features
(:mod:`.successor_check`, ``sf/*`` scalars every ``train.sf_check_every`` updates).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from jepa_agents.config.load import saved_config_hash
from jepa_agents.data.offline import DatasetError, OfflineDataset, load_dataset
from jepa_agents.infra import distributed
from jepa_agents.infra.checkpoint import finished_step
from jepa_agents.infra.compile import resolve_compile_setting
from jepa_agents.infra.device import configure_threads, resolve_device
from jepa_agents.infra.rng import rng_state, seed_everything, set_rng_state
from jepa_agents.infra.run_dir import RunDirError, prepare_run_dir
from jepa_agents.infra.schedule import crossed
from jepa_agents.train.lifecycle import Lifecycle
from jepa_agents.train.online import make_env
from jepa_agents.zero_shot.agents import make_zero_shot_agent
from jepa_agents.zero_shot.evaluate import (
    baselines,
    check_custom_rewards,
    check_tasks,
    output_name,
    report,
    save_results,
    zero_shot_eval,
)
from jepa_agents.zero_shot.successor_check import successor_check

SF_SEED_OFFSET = 2_000_003


class OfflineTrainer(Lifecycle):
    """Updates of ``agent`` on batches of ``dataset`` until ``train.num_updates`` (module docstring).
    Data-parallel: every rank samples ``agent.batch_size`` transitions of its own shard of the dataset
    (the global batch is ``W·batch_size``); rank 0 evaluates, logs and writes the checkpoints."""

    rank_keys = ("rng",)

    def __init__(self, cfg: DictConfig, run_dir: Path, device: torch.device, agent, dataset: OfflineDataset):
        super().__init__(
            run_dir,
            config_hash=saved_config_hash(run_dir),
            total=cfg.train.num_updates,
            checkpoint_every=cfg.train.checkpoint_every,
            keep_checkpoints=cfg.train.keep_checkpoints,
            logging=cfg.logging,
            desc=cfg.agent.name,
            unit="upd",
        )
        self.cfg, self.device, self.agent, self.dataset = cfg, device, agent, dataset
        self.updates = 0
        self.shard = (self.ctx.rank, self.ctx.world_size)

    @property
    def step(self) -> int:
        return self.updates

    def state(self) -> dict:
        return {
            "agent": self.agent.state_dict(),
            "rng": rng_state(),
            "obs_shape": list(self.dataset.meta.obs_spec[self.cfg.agent.obs_key]["shape"]),
            "action_dim": self.dataset.meta.action_dim,
        }

    def load_state(self, ckpt: dict) -> None:
        self.agent.load_state_dict(ckpt["agent"])
        set_rng_state(ckpt["rng"])
        self.updates = int(ckpt["step"])

    def _evaluate(self, final: bool = False) -> None:
        """Zero-shot returns; the final one with the zero-action / random baselines and data coverage.
        Rank 0 only (the others go on to the next collective and wait there)."""
        if not self.ctx.is_main:
            return
        results = zero_shot_eval(self.agent.model, self.dataset, self.cfg, self.device)
        context = baselines(self.dataset, self.cfg, self.device) if final else None
        report(
            self.run_dir,
            self.cfg.env.name,
            self.updates,
            results,
            self.logger,
            context,
            output_name(self.cfg),
        )
        if final:
            save_results(self.cfg, self.updates, results, context)

    def _check_successors(self) -> None:
        """Log ``sf/*``: the model's predicted value of its own policies against rolled-out returns."""
        if not self.ctx.is_main:
            return
        cfg = self.cfg
        env = make_env(cfg.env, cfg.train.sf_check_episodes, cfg.seed + SF_SEED_OFFSET, self.device)
        try:
            out = successor_check(
                self.agent.model, env, self.dataset, cfg.agent.obs_key, cfg.agent.discount,
                seed=cfg.seed + SF_SEED_OFFSET, max_steps=cfg.eval.max_episode_steps,
            )  # fmt: skip
        finally:
            env.close()
        self.logger.log({f"sf/{k}": v for k, v in out.items()}, self.updates)

    def _on_schedule(self, before: int, bar: tqdm) -> None:
        if crossed(before, self.updates, self.cfg.train.sf_check_every):
            self._check_successors()
        if crossed(before, self.updates, self.cfg.train.eval_every) and self.updates < self.total:
            self._evaluate()

    def _train(self, bar: tqdm) -> None:
        cfg = self.cfg
        t_last, step_last = time.perf_counter(), self.updates
        while self.updates < self.total:
            batch = self.dataset.sample(cfg.agent.batch_size, shard=self.shard).to(self.device)
            try:
                metrics = self.agent.update(batch)
            except FloatingPointError as err:
                raise self.stopped(err) from None
            self.updates += 1
            if crossed(self.updates - 1, self.updates, cfg.train.log_every):
                now = time.perf_counter()
                metrics["perf/updates_per_s"] = (self.updates - step_last) / (now - t_last)
                t_last, step_last = now, self.updates
                self.logger.log(metrics, self.updates)
            self._after_iteration(self.updates - 1, bar)

    def _finish(self) -> None:
        self.save()
        if self.cfg.eval.final:
            self._evaluate(final=True)
        self.logger.flush()


def load_checked_dataset(cfg: DictConfig, device: torch.device) -> OfflineDataset:
    """``cfg.dataset`` on the configured device, checked against the config's domain and observation."""
    data_device = device if cfg.train.dataset_device == "auto" else resolve_device(cfg.train.dataset_device)
    dataset = load_dataset(cfg.dataset, data_device)
    if dataset.meta.env != cfg.env.name:
        raise DatasetError(
            f"dataset {cfg.dataset} was collected on {dataset.meta.env}, the config's domain is "
            f"{cfg.env.name}; pass env.name={dataset.meta.env}"
        )
    dataset.check_obs(cfg.agent.obs_key)
    return dataset


def _refuse_complete_run(cfg: DictConfig) -> None:
    """A resumed run whose latest checkpoint is at ``train.num_updates`` is complete: say so before anything
    is written (its scores and checkpoints stay as they are)."""
    step = finished_step(Path(cfg.run_dir) / "checkpoints", cfg.train.num_updates)
    if step is not None:
        raise RunDirError(
            f"{cfg.run_dir} is complete ({step} of train.num_updates="
            f"{cfg.train.num_updates} updates, final checkpoint and evaluation written); nothing to resume. "
            "Evaluate it again with "
            f"`jepa-agents eval-zero-shot {cfg.run_dir}`, or train longer in a new run."
        )


def train_zero_shot(cfg: DictConfig) -> Path:
    """Train ``cfg.agent`` on ``cfg.dataset`` for ``cfg.train.num_updates`` updates; return the run dir."""
    device = distributed.device_for(resolve_device(cfg.device))
    distributed.init(cfg.distributed.enabled, cfg.distributed.backend, cfg.distributed.timeout_s, device)
    configure_threads(cfg.num_threads, cfg.deterministic)
    check_tasks(cfg.env.name, list(cfg.eval.tasks))  # fail before any work on a bad task name
    if cfg.resume:
        _refuse_complete_run(cfg)
    dataset = load_checked_dataset(cfg, device)
    check_custom_rewards(cfg, dataset)  # a custom reward that fails is one line, before the run dir exists
    obs_shape = list(dataset.meta.obs_spec[cfg.agent.obs_key]["shape"])
    cfg, compile_line = resolve_compile_setting(cfg, device)
    run_dir = distributed.on_main(prepare_run_dir, cfg)  # rank 0 makes it, every rank gets its path
    if distributed.context().is_main:
        print(compile_line, flush=True)
    seed_everything(cfg.seed)  # the same networks on every rank
    agent = make_zero_shot_agent(cfg.agent, obs_shape, dataset.meta.action_dim, device, cfg.compile)
    if distributed.world_size() > 1:
        seed_everything(distributed.rank_seed(cfg.seed))  # each rank's own batches and noise
    trainer = OfflineTrainer(cfg, run_dir, device, agent, dataset)
    trainer.open(resume=bool(cfg.resume))
    return trainer.run()
