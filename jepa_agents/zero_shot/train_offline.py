"""Offline training of a zero-shot agent on a reward-free dataset (``jepa-agents train-zero-shot``).

One step = one gradient update on a uniform random batch of transitions; ``scalars.csv`` and TensorBoard
count updates on their ``step`` axis. Checkpoints (``checkpoints/ckpt_<updates>.pt``, atomic) hold the
agent (networks, targets, optimizers), every RNG state and the update counter, so ``resume=<run_dir>``
continues the same run. Zero-shot evaluation (:mod:`.evaluate`) runs every ``train.eval_every`` updates
and at the end, without consuming the training RNG streams.
"""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import DictConfig
from tqdm import tqdm

from jepa_agents.config.load import config_hash
from jepa_agents.data.offline import DatasetError, load_dataset
from jepa_agents.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from jepa_agents.train.device import configure_threads, resolve_device
from jepa_agents.train.logger import Logger
from jepa_agents.train.rng import rng_state, seed_everything, set_rng_state
from jepa_agents.train.run_dir import prepare_run_dir
from jepa_agents.zero_shot.agents import make_zero_shot_agent
from jepa_agents.zero_shot.evaluate import check_tasks, report, zero_shot_eval


def _crossed(before: int, after: int, every: int) -> bool:
    return every > 0 and before // every != after // every


def train_zero_shot(cfg: DictConfig) -> Path:
    """Train ``cfg.agent`` on ``cfg.dataset`` for ``cfg.train.num_updates`` updates; return the run dir."""
    device = resolve_device(cfg.device)
    configure_threads(cfg.num_threads, cfg.deterministic)
    check_tasks(cfg.env.name, list(cfg.eval.tasks))  # fail before any work on a bad task name
    data_device = device if cfg.train.dataset_device == "auto" else resolve_device(cfg.train.dataset_device)
    dataset = load_dataset(cfg.dataset, data_device)
    if dataset.meta.env != cfg.env.name:
        raise DatasetError(
            f"dataset {cfg.dataset} was collected on {dataset.meta.env}, the config's domain is "
            f"{cfg.env.name}; pass env.name={dataset.meta.env}"
        )
    dataset.check_obs(cfg.agent.obs_key)
    obs_shape = list(dataset.meta.obs_spec[cfg.agent.obs_key]["shape"])
    run_dir = prepare_run_dir(cfg)
    seed_everything(cfg.seed)
    agent = make_zero_shot_agent(cfg.agent, obs_shape, dataset.meta.action_dim, device)
    step, resume_step, chash = 0, None, config_hash(cfg)
    if cfg.resume:
        path = latest_checkpoint(run_dir / "checkpoints")
        resume_step = 0
        if path is not None:
            ckpt = load_checkpoint(path, chash)
            agent.load_state_dict(ckpt["agent"])
            set_rng_state(ckpt["rng"])
            step = resume_step = ckpt["step"]
    logger = Logger(
        run_dir, tensorboard=cfg.logging.tensorboard, csv_file=cfg.logging.csv, resume_step=resume_step
    )

    def save() -> None:
        state = {
            "agent": agent.state_dict(),
            "rng": rng_state(),
            "obs_shape": obs_shape,
            "action_dim": dataset.meta.action_dim,
        }
        save_checkpoint(run_dir / "checkpoints", step, state, chash, cfg.train.keep_checkpoints)

    def evaluate() -> None:
        report(run_dir, cfg.env.name, step, zero_shot_eval(agent.model, dataset, cfg, device), logger)

    total = cfg.train.num_updates
    bar = tqdm(
        total=total, initial=step, unit="upd", disable=not cfg.logging.progress_bar, desc=cfg.agent.name
    )
    t_last, step_last = time.perf_counter(), step
    try:
        while step < total:
            batch = dataset.sample(cfg.agent.batch_size).to(device)
            metrics = agent.update(batch)
            step += 1
            bar.update(1)
            if _crossed(step - 1, step, cfg.train.log_every):
                now = time.perf_counter()
                metrics["perf/updates_per_s"] = (step - step_last) / (now - t_last)
                t_last, step_last = now, step
                logger.log(metrics, step)
            if _crossed(step - 1, step, cfg.train.eval_every) and step < total:
                evaluate()
            if _crossed(step - 1, step, cfg.train.checkpoint_every) and step < total:
                logger.flush()
                save()
        save()
        if cfg.eval.final:
            evaluate()
        logger.flush()
    finally:
        bar.close()
        logger.close()
    return run_dir
