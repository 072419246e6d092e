"""Zero-shot evaluation: for each task of the domain, infer ``z`` from relabeled dataset transitions and
roll out ``π_z`` with no further training.

Per task ``k``: draw ``eval.inference_samples`` transitions from the dataset, relabel their rewards
``r_i = r_k(physics(s'_i))`` (``envs.relabel``), ``z_k = model.infer_z_from_rewards(s', r)``; run
``eval.episodes`` episodes of the mean policy ``π(·, z_k)`` in parallel copies, scoring every step with the
same relabeled reward of its next physics state. Results: a table on stdout, rows in
``<run_dir>/zero_shot.csv`` (``step,domain,task,return_mean,return_std,episodes``) and TensorBoard / scalars
tags ``zero_shot/<domain>/<task>`` and ``zero_shot/<domain>/mean``. A task whose rewards are degenerate on
the sampled data (NaN, constant) is reported as such (NaN row, message on stderr) and left out of the mean.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import torch
from omegaconf import DictConfig

import envs
from jepa_agents.data.offline import DatasetError, OfflineDataset, load_dataset
from jepa_agents.train.checkpoint import latest_checkpoint, load_checkpoint
from jepa_agents.train.device import configure_threads, resolve_device
from jepa_agents.train.logger import Logger
from jepa_agents.train.loop import make_env
from jepa_agents.train.rng import rng_state, set_rng_state
from jepa_agents.zero_shot.td_jepa import DegenerateTaskError

EVAL_SEED_OFFSET = 1_000_003
CSV_HEADER = ("step", "domain", "task", "return_mean", "return_std", "episodes")
_REWARD_FREE = "reward_free"  # the torch family's zero-reward task: not a task to optimize


def domain_of(env_name: str) -> str:
    """``torch/point_mass_maze`` -> ``point_mass_maze``; ``dmc/walker_walk`` -> ``walker``."""
    family, task = env_name.split("/", 1)
    if family == "dmc":
        from envs.dmc_tasks import split_name

        return split_name(task)[0]
    return task


def domain_tasks(env_name: str) -> list[str]:
    """The relabelable tasks of the domain of ``env_name`` (names accepted by ``envs.relabel``)."""
    family, task = env_name.split("/", 1)
    if family == "dmc":
        from envs.dmc_tasks import TASK_SET, split_name

        return [t for t in TASK_SET if split_name(t)[0] == domain_of(env_name)]
    if family == "torch":
        from envs.torch_control import TASKS

        return [t for t in TASKS[task] if t != _REWARD_FREE]
    raise ValueError(f"{env_name}: zero-shot evaluation supports the dmc and torch families (relabeling)")


def check_tasks(env_name: str, tasks: list[str]) -> list[str]:
    """``tasks`` (empty: all of the domain); an unknown one raises, listing the domain's tasks."""
    known = domain_tasks(env_name)
    if not known:
        raise ValueError(
            f"{env_name} has no relabelable tasks; zero-shot evaluation needs a multi-task domain"
        )
    unknown = [t for t in tasks if t not in known]
    if unknown:
        raise ValueError(
            f"task(s) {unknown} are not tasks of the {domain_of(env_name)} domain of {env_name}; "
            f"its tasks: {', '.join(known)}"
        )
    return list(tasks) or known


def relabel_rewards(env_name: str, task: str, physics: torch.Tensor) -> torch.Tensor:
    """Rewards ``[N]`` of ``task`` for physics states ``[N, P]`` (float32, on ``physics.device``)."""
    return torch.as_tensor(envs.relabel(env_name, physics, task)).float().to(physics.device).reshape(-1)


def check_model_fits(dataset: OfflineDataset, obs_key: str, obs_shape, action_dim: int) -> None:
    """The dataset must hold the model's observation with the model's shape and action size."""
    dataset.check_obs(obs_key, tuple(obs_shape))
    if dataset.meta.action_dim != action_dim:
        raise DatasetError(
            f"dataset {dataset.root} has actions of size {dataset.meta.action_dim}, the model {action_dim}"
        )


@torch.no_grad()
def infer_task_z(
    model, dataset: OfflineDataset, env_name: str, task: str, obs_key: str, n: int
) -> torch.Tensor:
    """``z`` ``[d]`` of ``task`` from ``n`` random relabeled transitions of ``dataset``."""
    batch = dataset.sample(min(n, len(dataset)))
    rewards = relabel_rewards(env_name, task, batch["next", "physics"])
    return model.infer_z_from_rewards(batch["next", "observation", obs_key], rewards, task=task)


@torch.no_grad()
def rollout(
    model, env, z: torch.Tensor, env_name: str, task: str, obs_key: str, max_steps: int
) -> torch.Tensor:
    """Returns ``[N]`` of one episode per copy of ``env`` with the mean policy ``π(·, z)``."""
    n = env.batch_size[0]
    td = env.reset()
    returns = torch.zeros(n, device=z.device)
    running = torch.ones(n, dtype=torch.bool, device=z.device)
    steps = 0
    while bool(running.any()) and (max_steps == 0 or steps < max_steps):
        td["action"] = model.act(td[obs_key].to(z.device), z)
        step, td = env.step_and_maybe_reset(td)
        reward = relabel_rewards(env_name, task, step["next", "physics"]).to(z.device)
        returns += reward * running
        running &= ~step["next", "done"].reshape(-1).to(z.device)
        steps += 1
    return returns


def zero_shot_eval(
    model, dataset: OfflineDataset, cfg: DictConfig, device: torch.device
) -> dict[str, list[float]]:
    """Per task: returns of ``cfg.eval.episodes`` episodes (``[]`` for a degenerate task). RNG-neutral."""
    saved = rng_state()
    tasks = check_tasks(cfg.env.name, list(cfg.eval.tasks))
    env = make_env(cfg.env, cfg.eval.episodes, cfg.seed + EVAL_SEED_OFFSET, device)
    results: dict[str, list[float]] = {}
    was_training = model.training
    model.eval()
    try:
        for task in tasks:
            try:
                z = infer_task_z(
                    model, dataset, cfg.env.name, task, cfg.agent.obs_key, cfg.eval.inference_samples
                )
            except DegenerateTaskError as err:
                print(
                    f"zero-shot {task}: degenerate task on this dataset, not evaluated: {err}",
                    file=sys.stderr,
                )
                results[task] = []
                continue
            env.set_seed(cfg.seed + EVAL_SEED_OFFSET)
            rets = rollout(
                model, env, z.to(device), cfg.env.name, task, cfg.agent.obs_key, cfg.eval.max_episode_steps
            )
            results[task] = rets.cpu().tolist()
    finally:
        model.train(was_training)
        set_rng_state(saved)
    return results


def summarize(results: dict[str, list[float]]) -> dict[str, tuple[float, float, int]]:
    """``task -> (mean, std, episodes)`` plus ``mean`` (over tasks with episodes) -> (mean, nan, tasks)."""
    out = {}
    for task, rets in results.items():
        t = torch.tensor(rets, dtype=torch.float64)
        out[task] = (
            (float(t.mean()), float(t.std(unbiased=False)), len(rets)) if rets else (math.nan, math.nan, 0)
        )
    means = [m for m, _, n in out.values() if n > 0]
    out["mean"] = (sum(means) / len(means) if means else math.nan, math.nan, len(means))
    return out


def report(
    run_dir: Path, env_name: str, step: int, results: dict[str, list[float]], logger: Logger | None
) -> None:
    """Print the table, append rows to ``zero_shot.csv``, log ``zero_shot/<domain>/<task>`` scalars."""
    domain, summary = domain_of(env_name), summarize(results)
    print(f"zero-shot returns on {env_name} after {step} updates:")
    print(f"  {'task':28s} {'return':>10s} {'std':>8s} {'episodes':>8s}")
    for task, (mean, std, n) in summary.items():
        label = f"{task} ({n} tasks)" if task == "mean" else task
        print(f"  {label:28s} {mean:10.2f} {std:8.2f} {n if task != 'mean' else '':>8}")
    path = run_dir / "zero_shot.csv"
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(CSV_HEADER)
        for task, (mean, std, n) in summary.items():
            writer.writerow([step, domain, task, repr(mean), repr(std), n])
    if logger is not None:
        logger.log({f"zero_shot/{domain}/{task}": mean for task, (mean, _, _) in summary.items()}, step)
        logger.flush()


def evaluate_run(cfg: DictConfig, run_dir: Path, checkpoint: Path | None = None) -> dict[str, list[float]]:
    """``jepa-agents eval-zero-shot``: evaluate the latest (or the given) checkpoint of a trained run."""
    from jepa_agents.zero_shot.agents import build_model

    device = resolve_device(cfg.device)
    configure_threads(cfg.num_threads, cfg.deterministic)
    path = checkpoint or latest_checkpoint(run_dir / "checkpoints")
    if path is None:
        raise FileNotFoundError(f"{run_dir / 'checkpoints'} holds no checkpoint; train the run first.")
    ckpt = load_checkpoint(path)
    model = build_model(cfg.agent, ckpt["obs_shape"], ckpt["action_dim"]).to(device)
    model.load_state_dict(ckpt["agent"]["model"])
    dataset = load_dataset(cfg.dataset, device)
    check_model_fits(dataset, cfg.agent.obs_key, ckpt["obs_shape"], ckpt["action_dim"])
    results = zero_shot_eval(model, dataset, cfg, device)
    logger = Logger(run_dir, tensorboard=cfg.logging.tensorboard, csv_file=cfg.logging.csv)
    try:
        report(run_dir, cfg.env.name, ckpt["step"], results, logger)
    finally:
        logger.close()
    return results
