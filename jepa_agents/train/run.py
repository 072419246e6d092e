"""``jepa-agents train``: validate, make the run directory, build the parts, hand them to the trainer of
the learner's kind, run, and print a summary."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from jepa_agents.config.load import saved_config_hash
from jepa_agents.infra import distributed
from jepa_agents.infra.checkpoint import finished_step
from jepa_agents.infra.compile import resolve_compile_setting
from jepa_agents.infra.device import configure_threads, resolve_device
from jepa_agents.infra.precision import describe, resolve_precision
from jepa_agents.infra.run_dir import prepare_run_dir
from jepa_agents.train.lifecycle import TrainingError
from jepa_agents.train.off_policy import OffPolicyTrainer, make_replay
from jepa_agents.train.on_policy import OnPolicyTrainer, make_rollout_buffer
from jepa_agents.train.online import OnlineTrainer, build_parts

__all__ = ["RunStartError", "TrainingError", "train"]

TRAINERS = {
    "off_policy": (OffPolicyTrainer, make_replay),
    "on_policy": (OnPolicyTrainer, make_rollout_buffer),
}
"""Trainer kind -> (trainer class, builder of its data store ``(cfg, env, agent, device)``)."""


class RunStartError(RuntimeError):
    """The run could not start (environment or learner construction failed, or the run to resume is
    already complete); nothing was left behind or changed."""


def _refuse_complete_run(cfg: DictConfig) -> None:
    """A resumed run whose latest checkpoint is at ``train.total_env_steps`` is complete: say so before
    anything is opened for writing (its scores, checkpoints, GIFs and curve stay as they are)."""
    step = finished_step(Path(cfg.run_dir) / "checkpoints", cfg.train.total_env_steps)
    if step is not None:
        raise RunStartError(
            f"{cfg.run_dir} is complete ({step} of train.total_env_steps={cfg.train.total_env_steps} env "
            "steps, final checkpoint and evaluation written); nothing to resume. To train for longer, "
            "start a new run with a larger train.total_env_steps."
        )


def resolve_hardware_settings(cfg: DictConfig, device: torch.device) -> tuple[DictConfig, str]:
    """``world_model.precision=auto`` and ``compile=auto`` resolved for ``device`` (so the saved
    ``config.yaml`` and every resume compute the same thing), and the lines that say what was chosen
    and why."""
    asked = cfg.world_model.precision
    resolved = resolve_precision(asked, device)
    if resolved != asked:
        cfg = OmegaConf.merge(cfg, {"world_model": {"precision": resolved}})
    why = f"auto on {device.type}: {describe(device)}" if asked == "auto" else "as configured"
    cfg, compile_line = resolve_compile_setting(cfg, device)
    return cfg, f"precision: {resolved} ({why})\n{compile_line}"


def build_trainer(cfg: DictConfig, run_dir: Path, device: torch.device) -> OnlineTrainer:
    """The parts of the run, handed to the trainer of the learner's kind, resumed when ``cfg.resume``."""
    from jepa_agents.agents import trainer_kind

    trainer_cls, make_data = TRAINERS[trainer_kind(cfg.agent.name)]
    parts = build_parts(cfg, device, make_data)
    trainer = trainer_cls(cfg, run_dir, device, parts, saved_config_hash(run_dir))
    trainer.open(resume=bool(cfg.resume))
    return trainer


def train(cfg: DictConfig) -> Path:
    """Entry point of ``jepa-agents train`` for one (validated, read-only) config.

    A new run whose environment or learner cannot be built leaves no run directory behind; expected
    construction errors (``ValueError``s: unknown options, a learner that does not fit the env, ...)
    become one :class:`RunStartError` line.
    """
    device = distributed.device_for(resolve_device(cfg.device))
    ctx = distributed.init(
        cfg.distributed.enabled, cfg.distributed.backend, cfg.distributed.timeout_s, device
    )
    configure_threads(cfg.num_threads, cfg.deterministic)
    cfg, precision_line = resolve_hardware_settings(cfg, device)
    if cfg.resume:
        _refuse_complete_run(cfg)
    fresh = not cfg.resume and not Path(cfg.run_dir).exists()
    run_dir = distributed.on_main(prepare_run_dir, cfg)  # rank 0 makes it, every rank gets its path
    if str(run_dir) != cfg.run_dir:  # a default run_dir is stamped per process: take rank 0's
        cfg = OmegaConf.merge(cfg, {"run_dir": str(run_dir)})
    if ctx.is_main:
        print(f"run directory: {run_dir}", flush=True)
        print(precision_line, flush=True)
    start = time.perf_counter()
    try:
        trainer = build_trainer(cfg, run_dir, device)
    except BaseException as err:
        if fresh and ctx.is_main:
            shutil.rmtree(run_dir, ignore_errors=True)
        if isinstance(err, ValueError):
            what = f"{cfg.env.name}, agent={cfg.agent.name}"
            raise RunStartError(f"could not start the run ({what}): {err}") from None
        raise
    try:
        trainer.run()
    finally:
        trainer.close_envs()
    if ctx.is_main:
        _print_summary(trainer, time.perf_counter() - start)
    return run_dir


def _print_summary(trainer: OnlineTrainer, wall_s: float) -> None:
    """What a run ends with on stdout: wall time, first and final evaluation, the random baseline."""
    c = trainer.counters
    line = f"finished {c.env_steps} env steps in {wall_s / 60:.1f} min ({wall_s:.0f} s)"
    total = trainer.train_seconds()
    if total == total and abs(total - wall_s) > 60:  # resumed: the earlier sessions trained too
        line += f" this session, {total / 60:.1f} min of training over all sessions"
    if trainer.first_eval == trainer.first_eval:  # not NaN: this session evaluated at step 0
        line += f"; eval return {trainer.first_eval:.1f} untrained -> {trainer.last_eval:.1f} final"
        line += f"; uniformly random policy {trainer.random_return:.1f}"
    else:
        line += f"; final eval return {trainer.last_eval:.1f}"
    print(line)
    print(f"learning curve: {trainer.run_dir / 'curve.png'}")
