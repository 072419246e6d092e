"""The off-policy training loop shared by the learners: collect -> update -> evaluate -> checkpoint.

Every schedule is counted in environment steps (agent steps x action repeat, summed over copies).
A checkpoint holds the agent (networks and optimizers), the replay buffer, every RNG state, the
environment state (for envs that expose ``get_env_state``/``set_env_state``), the current observation
and the counters, so that a resumed run continues the same run; on the CPU with ``deterministic=true``
its logged scalars are identical to an uninterrupted run's.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import torch
from omegaconf import DictConfig
from tqdm import tqdm

import envs
from jepa_agents.config.load import config_hash
from jepa_agents.train.checkpoint import checkpoint_step, latest_checkpoint, load_checkpoint, save_checkpoint
from jepa_agents.train.device import configure_threads, resolve_device
from jepa_agents.train.evaluate import RandomPolicy, evaluate, save_gif
from jepa_agents.train.logger import Logger
from jepa_agents.train.rng import rng_state, seed_everything, set_rng_state
from jepa_agents.train.run_dir import prepare_run_dir

EVAL_SEED_OFFSET = 1_000_003
ON_POLICY_AGENTS = ("ppo",)


class TrainingError(RuntimeError):
    """Training stopped (for instance after too many non-finite losses); checkpoints are intact."""


class RunStartError(RuntimeError):
    """The run could not start (environment or learner construction failed, or the run to resume is
    already complete); nothing was left behind or changed."""


@dataclasses.dataclass
class Counters:
    env_steps: int = 0
    agent_steps: int = 0
    episodes: int = 0
    evals: int = 0


def make_env(env_cfg: DictConfig, num_envs: int, seed: int, device: torch.device):
    """Build the environment of a config's ``env`` section with ``num_envs`` copies (``frame_stack``
    is passed only by sections that have it; the zero-shot ones keep the family's default)."""
    stack = {"frame_stack": env_cfg.frame_stack} if "frame_stack" in env_cfg else {}
    return envs.make(
        env_cfg.name,
        num_envs=num_envs,
        seed=seed,
        device=device,
        from_pixels=env_cfg.from_pixels,
        image_size=env_cfg.image_size,
        action_repeat=env_cfg.action_repeat,
        **stack,
        **env_cfg.options,
    )


def _crossed(before: int, after: int, every: int) -> bool:
    return every > 0 and before // every != after // every


class Trainer:
    """Owns the env, eval env, agent, replay and logger of one run: checkpoints, evaluation, episode
    bookkeeping. Subclasses implement :meth:`run` (the collect/update schedule of a learner family)."""

    def __init__(self, cfg: DictConfig, run_dir: Path, device: torch.device):
        from jepa_agents.agents import make_agent

        self.cfg, self.run_dir, self.device = cfg, run_dir, device
        self.hash = config_hash(cfg)
        seed_everything(cfg.seed)
        self.env = make_env(cfg.env, cfg.env.num_envs, cfg.seed, device)
        self.eval_env = make_env(cfg.env, cfg.env.num_eval_envs, cfg.seed + EVAL_SEED_OFFSET, device)
        self.action_repeat = getattr(self.env, "action_repeat", cfg.env.action_repeat)
        self.agent = make_agent(cfg, self.env, device)
        self.replay = self._make_replay()
        self.counters = Counters()
        self.td = None
        self.running_return = torch.zeros(self.env.batch_size[0], device=device)
        self.last_eval = float("nan")
        self.first_eval = float("nan")  # the untrained policy's return (eval.at_start), this session
        self.random_return = float("nan")
        resume_step = self._restore() if cfg.resume else None
        self.logger = Logger(
            run_dir, tensorboard=cfg.logging.tensorboard, csv_file=cfg.logging.csv, resume_step=resume_step
        )

    def _make_replay(self):
        """The transition store the agent learns from (a replay buffer; a rollout buffer on-policy)."""
        from jepa_agents.data.replay import make_replay

        return make_replay(self.cfg, self.env, self.device)

    # --- checkpoints -------------------------------------------------------------------------------
    def _state(self) -> dict:
        get_env_state = getattr(self.env, "get_env_state", None)
        return {
            "agent": self.agent.state_dict(),
            "replay": self.replay.state_dict(),
            "rng": rng_state(),
            "env": get_env_state() if get_env_state else None,
            "obs": self.td.cpu() if self.td is not None else None,
            "running_return": self.running_return.cpu(),
            "counters": dataclasses.asdict(self.counters),
            "last_eval": self.last_eval,
        }

    def save(self) -> Path:
        return save_checkpoint(
            self.run_dir / "checkpoints",
            self.counters.env_steps,
            self._state(),
            self.hash,
            self.cfg.train.keep_checkpoints,
        )

    def _restore(self) -> int | None:
        path = latest_checkpoint(self.run_dir / "checkpoints")
        if path is None:  # killed before its first checkpoint: start from scratch in the same directory
            print(f"resuming {self.run_dir}: no checkpoint yet, starting from step 0", flush=True)
            return 0
        ckpt = load_checkpoint(path, self.hash)
        print(f"resuming {self.run_dir} from checkpoint at step {ckpt['step']} ({path.name})", flush=True)
        self.agent.load_state_dict(ckpt["agent"])
        self.replay.load_state_dict(ckpt["replay"])
        self.counters = Counters(**ckpt["counters"])
        self.last_eval = ckpt["last_eval"]
        self.running_return = ckpt["running_return"].to(self.device)
        set_env_state = getattr(self.env, "set_env_state", None)
        if ckpt["env"] is not None and set_env_state is not None:
            set_env_state(ckpt["env"])
            self.td = ckpt["obs"].to(self.device)
        else:  # env state not restorable: restart episodes from a seed derived from the step
            self.env.set_seed(self.cfg.seed + self.counters.env_steps)
            self.td = None
            self.running_return.zero_()
        set_rng_state(ckpt["rng"])
        return self.counters.env_steps

    # --- the loop ----------------------------------------------------------------------------------
    def _evaluate(self, final: bool = False) -> dict[str, float]:
        c, ev = self.counters, self.cfg.eval
        record = (
            ev.video
            and self.cfg.env.from_pixels
            and (final or _crossed(c.env_steps - 1, c.env_steps, ev.video_every) or c.evals == 0)
        )
        # Evaluation must not consume the training RNG streams (resume equality, fair comparisons).
        saved = rng_state()
        metrics, frames = evaluate(
            self.agent,
            self.eval_env,
            ev.episodes,
            seed=self.cfg.seed + EVAL_SEED_OFFSET + c.evals,
            record=record,
        )
        set_rng_state(saved)
        if frames:
            save_gif(frames, self.run_dir / "videos" / f"eval_{c.env_steps:012d}.gif")
        c.evals += 1
        self.last_eval = metrics["eval/return"]
        return metrics

    def run(self) -> Path:
        """Train to ``train.total_env_steps``, then evaluate, checkpoint and plot the curve."""
        if self.td is None:
            self.td = self.env.reset()
        bar = self._progress_bar()
        try:
            if self.cfg.eval.at_start and self.counters.env_steps == 0 and self.counters.evals == 0:
                self.logger.log({**self._evaluate(), **self._random_baseline()}, 0)
                self.first_eval = self.last_eval
            self._train(bar)
            self._finish()
        finally:
            bar.close()
            self.logger.close()
        self._plot()
        return self.run_dir

    def _random_baseline(self) -> dict[str, float]:
        """``eval/random_return``: a uniformly random policy on the first evaluation's episodes."""
        saved = rng_state()
        metrics, _ = evaluate(
            RandomPolicy(self.eval_env.action_spec),
            self.eval_env,
            self.cfg.eval.episodes,
            seed=self.cfg.seed + EVAL_SEED_OFFSET,
        )
        set_rng_state(saved)
        self.random_return = metrics["eval/return"]
        return {"eval/random_return": self.random_return}

    def _train(self, bar: tqdm) -> None:
        """The collect/update schedule of a learner family, until the step budget is spent."""
        raise NotImplementedError

    def _stopped(self, err: FloatingPointError) -> TrainingError:
        """The error that ends a run after too many non-finite losses (checkpoints untouched)."""
        return TrainingError(
            f"{err} Training stopped at env step {self.counters.env_steps}; the last good checkpoint in "
            f"{self.run_dir / 'checkpoints'} is intact."
        )

    def _track_episodes(self, step_td) -> dict[str, float]:
        reward = step_td["next", "reward"].reshape(-1)
        done = step_td["next", "done"].reshape(-1)
        self.running_return += reward
        if not done.any():
            return {}
        finished = self.running_return[done]
        self.counters.episodes += int(done.sum())
        self.running_return[done] = 0.0
        return {"train/episode_return": float(finished.mean()), "train/episodes": self.counters.episodes}

    def _progress_bar(self) -> tqdm:
        """Env steps of the run (resumed runs start where they stopped); hidden by logging.progress_bar."""
        return tqdm(
            total=self.cfg.train.total_env_steps,
            initial=self.counters.env_steps,
            unit="step",
            dynamic_ncols=True,
            disable=not self.cfg.logging.progress_bar,
            desc=self.cfg.env.name,
        )

    def _evaluate_and_checkpoint(self, before: int, bar: tqdm) -> None:
        """After an iteration that moved the env-step counter from ``before``: evaluate and checkpoint
        when their schedules were crossed (the last step is left to :meth:`_finish`)."""
        c, cfg = self.counters, self.cfg
        total = cfg.train.total_env_steps
        if _crossed(before, c.env_steps, cfg.eval.every) and c.env_steps < total:
            self.logger.log(self._evaluate(), c.env_steps)
            self.logger.flush()
            self._plot()  # curve.png is current after every evaluation
            bar.set_postfix(eval=f"{self.last_eval:.1f}")
        if _crossed(before, c.env_steps, cfg.train.checkpoint_every) and c.env_steps < total:
            self.logger.flush()
            self.save()
        bar.update(c.env_steps - before)

    def _finish(self) -> None:
        """Final evaluation and checkpoint."""
        self.logger.log(self._evaluate(final=True), self.counters.env_steps)
        self.logger.flush()
        self.save()

    def _plot(self) -> None:
        from jepa_agents.analysis.curves import plot_run_curve

        plot_run_curve(self.run_dir, self.run_dir / "curve.png")


class OffPolicyTrainer(Trainer):
    """Off-policy schedule: one env step of every copy, then ``agent.update(replay)`` (the agent does
    its own number of gradient steps per call, its update-to-data ratio)."""

    def _train(self, bar: tqdm) -> None:
        cfg, c = self.cfg, self.counters
        total, n = cfg.train.total_env_steps, self.env.batch_size[0]
        steps_per_iter = n * self.action_repeat
        t_last, steps_last, updates_last, updates = time.perf_counter(), c.env_steps, 0, 0
        train_metrics: dict[str, float] = {}
        while c.env_steps < total:
            before = c.env_steps
            with torch.no_grad():
                if c.env_steps < cfg.train.seed_env_steps:
                    self.td["action"] = self.env.action_spec.rand()
                else:
                    self.td["action"] = self.agent.act(self.td, eval_mode=False)
            step_td, self.td = self.env.step_and_maybe_reset(self.td)
            self.replay.add(step_td)
            c.env_steps += steps_per_iter
            c.agent_steps += n
            episode_metrics = self._track_episodes(step_td)
            if c.env_steps > cfg.train.seed_env_steps:
                if updates == 0:  # the rates count from the first update, not over the seed phase
                    t_last, steps_last = time.perf_counter(), before
                try:
                    train_metrics = self.agent.update(self.replay, c.env_steps)
                except FloatingPointError as err:
                    raise self._stopped(err) from None
                updates += 1
            if episode_metrics:
                self.logger.log(episode_metrics, c.env_steps)
            if _crossed(before, c.env_steps, cfg.logging.every) and train_metrics:
                now = time.perf_counter()
                perf = {
                    "perf/env_steps_per_s": (c.env_steps - steps_last) / (now - t_last),
                    "perf/updates_per_s": (updates - updates_last) / (now - t_last),
                }
                self.logger.log({**train_metrics, **perf}, c.env_steps)
                t_last, steps_last, updates_last = now, c.env_steps, updates
                bar.set_postfix(upd_s=f"{perf['perf/updates_per_s']:.1f}", eval=f"{self.last_eval:.1f}")
            self._evaluate_and_checkpoint(before, bar)


def _refuse_complete_run(cfg: DictConfig) -> None:
    """A resumed run whose latest checkpoint is at ``train.total_env_steps`` is complete: say so before
    anything is opened for writing (its scores, checkpoints, GIFs and curve stay as they are)."""
    path = latest_checkpoint(Path(cfg.run_dir) / "checkpoints")
    if path is None:
        return
    step = checkpoint_step(path)
    if step >= cfg.train.total_env_steps:
        raise RunStartError(
            f"{cfg.run_dir} is complete ({step} of train.total_env_steps={cfg.train.total_env_steps} env "
            "steps, final checkpoint and evaluation written); nothing to resume. To train for longer, "
            "start a new run with a larger train.total_env_steps."
        )


def _build_trainer(cfg: DictConfig, run_dir: Path, device: torch.device) -> Trainer:
    if cfg.agent.name in ON_POLICY_AGENTS:
        from jepa_agents.train.on_policy import OnPolicyTrainer

        return OnPolicyTrainer(cfg, run_dir, device)
    return OffPolicyTrainer(cfg, run_dir, device)


def train(cfg: DictConfig) -> Path:
    """Entry point of ``jepa-agents train`` for one (validated, read-only) config.

    A new run whose environment or learner cannot be built leaves no run directory behind; expected
    construction errors (``ValueError``s: unknown options, a learner that does not fit the env, ...)
    become one :class:`RunStartError` line.
    """
    device = resolve_device(cfg.device)
    configure_threads(cfg.num_threads, cfg.deterministic)
    if cfg.resume:
        _refuse_complete_run(cfg)
    fresh = not cfg.resume and not Path(cfg.run_dir).exists()
    run_dir = prepare_run_dir(cfg)
    print(f"run directory: {run_dir}", flush=True)
    start = time.perf_counter()
    try:
        trainer = _build_trainer(cfg, run_dir, device)
    except BaseException as err:
        if fresh:
            shutil.rmtree(run_dir, ignore_errors=True)
        if isinstance(err, ValueError):
            what = f"{cfg.env.name}, agent={cfg.agent.name}"
            raise RunStartError(f"could not start the run ({what}): {err}") from None
        raise
    trainer.run()
    _print_summary(trainer, time.perf_counter() - start)
    return run_dir


def _print_summary(trainer: Trainer, wall_s: float) -> None:
    """What a run ends with on stdout: wall time, first and final evaluation, the random baseline."""
    c = trainer.counters
    line = f"finished {c.env_steps} env steps in {wall_s / 60:.1f} min ({wall_s:.0f} s)"
    if trainer.first_eval == trainer.first_eval:  # not NaN: this session evaluated at step 0
        line += f"; eval return {trainer.first_eval:.1f} untrained -> {trainer.last_eval:.1f} final"
        line += f"; uniformly random policy {trainer.random_return:.1f}"
    else:
        line += f"; final eval return {trainer.last_eval:.1f}"
    print(line)
    print(f"learning curve: {trainer.run_dir / 'curve.png'}")
