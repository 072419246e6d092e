"""Zero-shot evaluation: for each task of the domain, infer ``z`` from relabeled dataset transitions and
roll out ``π_z`` with no further training.

Per task ``k`` (built-in ``eval.tasks``, a reward of one's own ``eval.reward=<module>:<function>`` or
``reward_fn=``, a goal ``eval.goal=[x, y]``, the goal rows ``<task>@goal``; see
:mod:`jepa_agents.zero_shot.tasks`): draw
``eval.inference_samples`` transitions from the dataset, relabel their rewards ``r_i = r_k(physics(s'_i))``,
``z_k = model.infer_z_from_rewards(s', r)`` (a goal: ``z_k = model.infer_z_from_goal(g)``); run
``eval.episodes`` episodes of the mean policy ``π(·, z_k)`` in parallel copies, scoring every step with the
same reward of its next physics state. Results: a table on stdout, rows in
``<run_dir>/zero_shot.csv`` (``step,domain,task,return_mean,return_std,episodes``), with
``eval.results_csv`` per-seed rows in a CSV shared by runs (:mod:`.results`), and TensorBoard / scalars
tags ``zero_shot/<domain>/<task>`` and ``zero_shot/<domain>/mean``. A task whose rewards are degenerate on
the sampled data (NaN, constant) is reported as such (NaN row, message on stderr) and left out of the mean.
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from omegaconf import DictConfig

from jepa_agents.data.offline import DatasetError, OfflineDataset, load_dataset
from jepa_agents.infra.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from jepa_agents.infra.device import configure_threads, resolve_device
from jepa_agents.infra.logger import Logger
from jepa_agents.infra.rng import rng_state, set_rng_state
from jepa_agents.train.online import make_env
from jepa_agents.zero_shot.results import method_label, write_results
from jepa_agents.zero_shot.tasks import (
    GOAL_SUFFIX,
    MIN_REWARDED,
    EvalTask,
    builtin_goal_task,
    builtin_task,
    custom_reward_task,
    goal_task,
    load_reward_fn,
    rewarded_fraction,
)
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


def eval_tasks(
    cfg: DictConfig, obs_shape, reward_fn: Callable | None = None, goal: Sequence[float] | None = None
) -> list[EvalTask]:
    """The rows of an evaluation: ``eval.tasks`` (all of the domain when empty and no custom row is
    asked for), then ``eval.reward``, ``reward_fn``, ``eval.goal`` and ``goal``."""
    custom = []
    if cfg.eval.get("reward"):
        spec = str(cfg.eval.reward)
        custom.append(custom_reward_task(load_reward_fn(spec), f"reward:{spec}"))
    if reward_fn is not None:
        custom.append(custom_reward_task(reward_fn, f"reward:{getattr(reward_fn, '__name__', 'custom')}"))
    for g in (list(cfg.eval.get("goal") or []), list(goal or [])):
        if g:
            custom.append(goal_task(cfg.env.name, g, cfg.agent.obs_key, obs_shape))
    names = list(cfg.eval.tasks)
    builtin = [] if custom and not names else check_tasks(cfg.env.name, names)
    goals = [builtin_goal_task(cfg.env.name, t, cfg.agent.obs_key, obs_shape) for t in builtin]
    goal_rows = [g for g in goals if g is not None] if cfg.eval.get("goal_rows") else []
    return [builtin_task(cfg.env.name, t) for t in builtin] + goal_rows + custom


def check_custom_rewards(cfg: DictConfig, dataset: OfflineDataset) -> None:
    """Call every custom reward row (``eval.reward``) on relabeled dataset transitions once, so that a
    function that fails or returns the wrong shape or non-finite values is one :class:`TaskSpecError`
    before anything is trained or written. RNG-neutral."""
    obs_shape = tuple(dataset.meta.obs_spec[cfg.agent.obs_key]["shape"])
    custom = [t for t in eval_tasks(cfg, obs_shape) if t.name.startswith("reward:")]
    if not custom:
        return
    saved = rng_state()
    try:
        physics = dataset.sample(min(cfg.eval.inference_samples, len(dataset)))["next", "physics"]
        for task in custom:
            task.reward(physics)
    finally:
        set_rng_state(saved)


def check_model_fits(dataset: OfflineDataset, obs_key: str, obs_shape, action_dim: int) -> None:
    """The dataset must hold the model's observation with the model's shape and action size."""
    dataset.check_obs(obs_key, tuple(obs_shape))
    if dataset.meta.action_dim != action_dim:
        raise DatasetError(
            f"dataset {dataset.root} has actions of size {dataset.meta.action_dim}, the model {action_dim}"
        )


@torch.no_grad()
def infer_task_z(
    model, dataset: OfflineDataset, task: EvalTask, obs_key: str, n: int, rule: str = "own"
) -> torch.Tensor:
    """``z`` ``[d]`` of ``task``: from its goal observation, or from ``n`` random relabeled transitions
    (``rule``: ``eval.z_inference``)."""
    if task.goal_obs is not None:
        device = next(model.parameters()).device
        return model.infer_z_from_goal(task.goal_obs.unsqueeze(0).to(device))[0]
    batch = dataset.sample(min(n, len(dataset)))
    rewards = task.reward(batch["next", "physics"])
    next_obs = batch["next", "observation", obs_key]
    return model.infer_z_from_rewards(next_obs, rewards, task=task.name, rule=rule)


@torch.no_grad()
def rollout(model, env, z: torch.Tensor, task: EvalTask, obs_key: str, max_steps: int) -> torch.Tensor:
    """Returns ``[N]`` of one episode per copy of ``env`` with the mean policy ``π(·, z)``."""
    return run_policy(lambda obs: model.act(obs.to(z.device), z), env, task, obs_key, max_steps, z.device)


@torch.no_grad()
def run_policy(act, env, task: EvalTask, obs_key: str, max_steps: int, device: torch.device) -> torch.Tensor:
    """Returns ``[N]``: ``task``'s reward summed over one episode per copy, actions ``act(obs [N, ...])``."""
    n = env.batch_size[0]
    td = env.reset()
    returns = torch.zeros(n, device=device)
    running = torch.ones(n, dtype=torch.bool, device=device)
    steps = 0
    while bool(running.any()) and (max_steps == 0 or steps < max_steps):
        td["action"] = act(td[obs_key])
        step, td = env.step_and_maybe_reset(td)
        returns += task.reward(step["next", "physics"]).to(device) * running
        running &= ~step["next", "done"].reshape(-1).to(device)
        steps += 1
    return returns


@torch.no_grad()
def baselines(
    dataset: OfflineDataset, cfg: DictConfig, device: torch.device, tasks: Sequence[EvalTask] | None = None
) -> dict[str, dict[str, float]]:
    """What a zero-shot return is to be read against, per row: ``zero_action`` and ``random`` (uniform
    actions) mean returns on the same evaluation episodes, and ``rewarded``, the fraction of
    ``eval.inference_samples`` relabeled dataset transitions with a reward of at least 0.1 (under 1 %:
    the data hardly shows the task, and no method can be judged on it). RNG-neutral."""
    if tasks is None:
        tasks = eval_tasks(cfg, tuple(dataset.meta.obs_spec[cfg.agent.obs_key]["shape"]))
    tasks = [t for t in tasks if not t.name.endswith(GOAL_SUFFIX)]  # the same baselines as the task
    saved = rng_state()
    env = make_env(cfg.env, cfg.eval.episodes, cfg.seed + EVAL_SEED_OFFSET, device)
    a = env.action_spec.shape[-1]
    policies = {
        "zero_action": lambda obs: torch.zeros(obs.shape[0], a, device=env.device),
        "random": lambda obs: torch.rand(obs.shape[0], a, device=env.device) * 2 - 1,
    }
    out = {}
    try:
        torch.manual_seed(cfg.seed + EVAL_SEED_OFFSET)
        batch = dataset.sample(min(cfg.eval.inference_samples, len(dataset)))
        for task in tasks:
            row = {"rewarded": rewarded_fraction(task.reward(batch["next", "physics"]))}
            for name, act in policies.items():
                env.set_seed(cfg.seed + EVAL_SEED_OFFSET)
                returns = run_policy(act, env, task, cfg.agent.obs_key, cfg.eval.max_episode_steps, device)
                row[name] = float(returns.mean())
            out[task.name] = row
    finally:
        env.close()  # DMC worker processes end here, not at interpreter exit
        set_rng_state(saved)
    return out


def zero_shot_eval(
    model,
    dataset: OfflineDataset,
    cfg: DictConfig,
    device: torch.device,
    reward_fn: Callable | None = None,
    goal: Sequence[float] | None = None,
) -> dict[str, list[float]]:
    """Per row (:func:`eval_tasks`): returns of ``cfg.eval.episodes`` episodes (``[]`` for a degenerate
    task). RNG-neutral. ``reward_fn`` (physics ``[N, P]`` -> ``[N]``) and ``goal`` add rows from Python."""
    obs_shape = tuple(dataset.meta.obs_spec[cfg.agent.obs_key]["shape"])
    tasks = eval_tasks(cfg, obs_shape, reward_fn, goal)
    saved = rng_state()
    env = make_env(cfg.env, cfg.eval.episodes, cfg.seed + EVAL_SEED_OFFSET, device)
    results: dict[str, list[float]] = {}
    was_training = model.training
    model.eval()
    try:
        for task in tasks:
            try:
                z = infer_task_z(
                    model, dataset, task, cfg.agent.obs_key, cfg.eval.inference_samples, cfg.eval.z_inference
                )
            except DegenerateTaskError as err:
                print(
                    f"zero-shot {task.name}: degenerate task on this dataset, not evaluated: {err}",
                    file=sys.stderr,
                )
                results[task.name] = []
                continue
            env.set_seed(cfg.seed + EVAL_SEED_OFFSET)
            rets = rollout(model, env, z.to(device), task, cfg.agent.obs_key, cfg.eval.max_episode_steps)
            results[task.name] = rets.cpu().tolist()
    finally:
        env.close()
        model.train(was_training)
        set_rng_state(saved)
    return results


def summarize(results: dict[str, list[float]]) -> dict[str, tuple[float, float, int]]:
    """``task -> (mean, std, episodes)`` plus ``mean`` -> (mean, nan, tasks): over the tasks with episodes,
    the ``@goal`` diagnostic rows left out."""
    out = {}
    for task, rets in results.items():
        t = torch.tensor(rets, dtype=torch.float64)
        out[task] = (
            (float(t.mean()), float(t.std(unbiased=False)), len(rets)) if rets else (math.nan, math.nan, 0)
        )
    means = [m for task, (m, _, n) in out.items() if n > 0 and not task.endswith(GOAL_SUFFIX)]
    out["mean"] = (sum(means) / len(means) if means else math.nan, math.nan, len(means))
    return out


def report(
    run_dir: Path,
    env_name: str,
    step: int,
    results: dict[str, list[float]],
    logger: Logger | None,
    context: dict[str, dict[str, float]] | None = None,
    name: str = "zero_shot",
) -> None:
    """Print the table, append rows to ``<name>.csv``, log ``<name>/<domain>/<task>`` scalars (``name``:
    :func:`output_name`). With ``context`` (:func:`baselines`) the table also shows the zero-action and
    random returns and the data's rewarded fraction per task, and flags tasks the data hardly shows
    (``!``: under 1 %)."""
    domain, summary = domain_of(env_name), summarize(results)
    print(f"zero-shot returns on {env_name} after {step} updates ({name}):")
    extra = f" {'zero act':>9s} {'random':>8s} {'data rew%':>9s}" if context else ""
    print(f"  {'task':28s} {'return':>10s} {'std':>8s} {'episodes':>8s}{extra}")
    for task, (mean, std, n) in summary.items():
        label = f"{task} ({n} tasks)" if task == "mean" else task
        row = f"  {label:28s} {mean:10.2f} {std:8.2f} {n if task != 'mean' else '':>8}"
        if context and task in context:
            c = context[task]
            flag = "  ! under 1 %: not evaluable on this data" if c["rewarded"] < MIN_REWARDED else ""
            row += f" {c['zero_action']:9.2f} {c['random']:8.2f} {100 * c['rewarded']:9.2f}{flag}"
        print(row)
    path = run_dir / f"{name}.csv"
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(CSV_HEADER)
        for task, (mean, std, n) in summary.items():
            writer.writerow([step, domain, task, repr(mean), repr(std), n])
    if logger is not None:
        logger.log({f"{name}/{domain}/{task}": mean for task, (mean, _, _) in summary.items()}, step)
        logger.flush()


def output_name(cfg: DictConfig) -> str:
    """Where an evaluation's rows go in the run directory: ``zero_shot`` (``zero_shot.csv``, scalars
    ``zero_shot/...``), or ``zero_shot_mean_z`` for TD-JEPA evaluated with ``eval.z_inference=mean``."""
    mean_z = cfg.agent.name == "td_jepa" and cfg.eval.z_inference == "mean"
    return "zero_shot_mean_z" if mean_z else "zero_shot"


def save_results(
    cfg: DictConfig, step: int, results: dict[str, list[float]], context: dict[str, dict[str, float]] | None
) -> None:
    """With ``eval.results_csv`` set: this evaluation's per-task means as rows of that shared CSV (domain
    ``<domain>`` from states, ``<domain>_pixels<size>`` from frames), and with
    ``context`` (:func:`baselines`) the zero-action and random returns as methods ``zero_action`` and
    ``random`` of the same seed (each with its ``mean`` row)."""
    if not cfg.eval.results_csv:
        return
    domain = domain_of(cfg.env.name)
    if cfg.agent.obs_key == "pixels":  # e.g. point_mass_maze_pixels16: learned from 16x16 frames
        domain += f"_pixels{cfg.env.image_size}"
    rows = {
        method_label(cfg.agent, cfg.eval.z_inference): {
            task: mean for task, (mean, _, _) in summarize(results).items()
        }
    }
    for name in ("zero_action", "random") if context else ():
        per_task = {task: c[name] for task, c in context.items()}
        rows[name] = per_task | {"mean": sum(per_task.values()) / len(per_task)}
    for method, returns in rows.items():
        write_results(cfg.eval.results_csv, domain, method, cfg.seed, step, returns)


def load_trained_model(
    cfg: DictConfig, run_dir: Path, checkpoint: Path | None = None, device: torch.device | str = "cpu"
) -> tuple[torch.nn.Module, dict]:
    """The model of a ``train-zero-shot`` run at its latest (or the given) checkpoint, and that checkpoint;
    a run without one raises :class:`CheckpointError` saying what to do."""
    from jepa_agents.zero_shot.agents import build_model

    path = checkpoint or latest_checkpoint(Path(run_dir) / "checkpoints")
    if path is None:
        raise CheckpointError(
            f"{run_dir} is a train-zero-shot run without a checkpoint yet: train it first (or resume it with "
            f"`jepa-agents train-zero-shot resume={run_dir}`)."
        )
    ckpt = load_checkpoint(path)
    model = build_model(cfg.agent, ckpt["obs_shape"], ckpt["action_dim"]).to(device)
    model.load_state_dict(ckpt["agent"]["model"])
    return model, ckpt


def evaluate_run(cfg: DictConfig, run_dir: Path, checkpoint: Path | None = None) -> dict[str, list[float]]:
    """``jepa-agents eval-zero-shot``: evaluate the latest (or the given) checkpoint of a trained run."""
    device = resolve_device(cfg.device)
    configure_threads(cfg.num_threads, cfg.deterministic)
    model, ckpt = load_trained_model(cfg, run_dir, checkpoint, device)
    dataset = load_dataset(cfg.dataset, device)
    check_model_fits(dataset, cfg.agent.obs_key, ckpt["obs_shape"], ckpt["action_dim"])
    check_custom_rewards(cfg, dataset)
    results = zero_shot_eval(model, dataset, cfg, device)
    context = baselines(dataset, cfg, device)
    logger = Logger(run_dir, tensorboard=cfg.logging.tensorboard, csv_file=cfg.logging.csv)
    try:
        report(run_dir, cfg.env.name, ckpt["step"], results, logger, context, output_name(cfg))
        save_results(cfg, ckpt["step"], results, context)
    finally:
        logger.close()
    return results
