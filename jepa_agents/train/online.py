"""Online training: the parts of a run that acts in an environment, and the trainer they are handed to.

:func:`build_parts` builds the env, the evaluation env, the learner and its transition store from a
validated config; :class:`OnlineTrainer` receives them and adds to :class:`Lifecycle` what every online
schedule shares: evaluation (with a random-policy baseline at step 0), episode bookkeeping and the
checkpoint contents. Every schedule is counted in environment steps (agent steps x action repeat, summed
over copies). A checkpoint holds the agent (networks and optimizers), the transition store, every RNG
state, the environment state (for envs that expose ``get_env_state``/``set_env_state``), the current
observation and the counters, so that a resumed run continues the same run; on the CPU with
``deterministic=true`` its logged scalars are identical to an uninterrupted run's. The schedules
themselves (off-policy, on-policy) live in :mod:`.off_policy` and :mod:`.on_policy`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from omegaconf import DictConfig

import envs
from jepa_agents.config.schema import distraction_spec
from jepa_agents.infra import distributed
from jepa_agents.infra.rng import rng_state, seed_everything, set_rng_state
from jepa_agents.infra.schedule import crossed
from jepa_agents.train.evaluate import EvalPolicy, RandomPolicy, evaluate, save_gif
from jepa_agents.train.lifecycle import Lifecycle

EVAL_SEED_OFFSET = 1_000_003


@dataclasses.dataclass
class Counters:
    env_steps: int = 0
    agent_steps: int = 0
    episodes: int = 0
    evals: int = 0


@dataclasses.dataclass
class OnlineParts:
    """What an online trainer is handed: training and evaluation envs, the learner and its data."""

    env: object
    eval_env: object | None
    """None on ranks other than 0 of a data-parallel run (rank 0 evaluates)."""
    agent: object
    data: object
    """A replay buffer (off-policy) or a rollout buffer (on-policy): ``add``, ``state_dict``, ..."""


def make_env(
    env_cfg: DictConfig, num_envs: int, seed: int, device: torch.device, evaluation: bool = False, **extra
):
    """Build the environment of a config's ``env`` section with ``num_envs`` copies (``frame_stack``
    is passed only by sections that have it; the zero-shot ones keep the family's default); ``extra``
    options are added to ``env.options`` (e.g. ``start="uniform"`` for data collection). Distractions
    (``env.distraction``) are passed when active; ``evaluation`` draws held-out backgrounds when
    ``env.distraction.eval_heldout``."""
    stack = {"frame_stack": env_cfg.frame_stack} if "frame_stack" in env_cfg else {}
    if "distraction" in env_cfg and (spec := distraction_spec(env_cfg.distraction, evaluation)).active:
        extra = {**extra, "distraction": spec}
    return envs.make(
        env_cfg.name,
        num_envs=num_envs,
        seed=seed,
        device=device,
        from_pixels=env_cfg.from_pixels,
        image_size=env_cfg.image_size,
        action_repeat=env_cfg.action_repeat,
        **stack,
        **{**env_cfg.options, **extra},
    )


def build_parts(cfg: DictConfig, device: torch.device, make_data) -> OnlineParts:
    """Seed every RNG from ``cfg.seed``, then build the envs, the learner (``agents.make_agent``) and its
    data store (``make_data(cfg, env, agent, device)``), in that order (resume relies on it).

    Data-parallel (``torchrun``): each rank steps its own ``env.num_envs`` copies seeded from
    :func:`~jepa_agents.infra.distributed.rank_seed`, holds its own replay, starts from rank 0's networks
    and reseeds its RNG streams by rank; only rank 0 has the evaluation envs."""
    from jepa_agents.agents import make_agent

    ctx = distributed.context()
    seed_everything(cfg.seed)
    env = make_env(cfg.env, cfg.env.num_envs, distributed.rank_seed(cfg.seed), device)
    eval_env = (
        make_env(cfg.env, cfg.env.num_eval_envs, cfg.seed + EVAL_SEED_OFFSET, device, evaluation=True)
        if ctx.is_main
        else None
    )
    agent = make_agent(cfg, env, device)
    data = make_data(cfg, env, agent, device)
    if ctx.world_size > 1:
        distributed.broadcast_module(agent.nets)  # the same networks on every rank
        seed_everything(distributed.rank_seed(cfg.seed))  # each rank's own exploration and batches
    return OnlineParts(env, eval_env, agent, data)


class OnlineTrainer(Lifecycle):
    """Evaluation, episode bookkeeping and checkpoint contents of an online run (module docstring).
    Subclasses implement :meth:`_train`, the collect/update schedule of a learner family.

    Data-parallel: the counters count the frames of every rank; each rank keeps its replay, envs,
    observations and RNG streams in its checkpoint shard; rank 0 evaluates, logs and plots."""

    rank_keys = ("replay", "rng", "env", "obs", "running_return")

    def __init__(self, cfg: DictConfig, run_dir: Path, device: torch.device, parts: OnlineParts, hash_: str):
        super().__init__(
            run_dir,
            config_hash=hash_,
            total=cfg.train.total_env_steps,
            checkpoint_every=cfg.train.checkpoint_every,
            keep_checkpoints=cfg.train.keep_checkpoints,
            logging=cfg.logging,
            desc=cfg.env.name,
            unit="step",
        )
        self.cfg, self.device = cfg, device
        self.env, self.eval_env, self.agent, self.data = parts.env, parts.eval_env, parts.agent, parts.data
        self.action_repeat = getattr(self.env, "action_repeat", cfg.env.action_repeat)
        self.counters = Counters()
        self.td = None
        self.running_return = torch.zeros(self.env.batch_size[0], device=device)
        self.last_eval = float("nan")
        self.first_eval = float("nan")  # the untrained policy's return (eval.at_start), this session
        self.random_return = float("nan")

    @property
    def step(self) -> int:
        return self.counters.env_steps

    def close_envs(self) -> None:
        """End the environments' worker processes (DMC), here rather than at interpreter exit."""
        for env in (self.env, self.eval_env):
            if env is not None:
                env.close()

    # --- checkpoints -------------------------------------------------------------------------------
    def state(self) -> dict:
        get_env_state = getattr(self.env, "get_env_state", None)
        return {
            "agent": self.agent.state_dict(),
            "replay": self.data.state_dict(),
            "rng": rng_state(),
            "env": get_env_state() if get_env_state else None,
            "obs": self.td.cpu() if self.td is not None else None,
            "running_return": self.running_return.cpu(),
            "counters": dataclasses.asdict(self.counters),
            "last_eval": self.last_eval,
        }

    def load_state(self, ckpt: dict) -> None:
        self.agent.load_state_dict(ckpt["agent"])
        self.data.load_state_dict(ckpt["replay"])
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

    # --- evaluation ----------------------------------------------------------------------------------
    def _evaluate(self, final: bool = False) -> dict[str, float]:
        """Evaluation episodes of the current policy (rank 0; ``{}`` on the others)."""
        if self.eval_env is None:
            return {}
        c, ev = self.counters, self.cfg.eval
        record = (
            ev.video
            and self.cfg.env.from_pixels
            and (final or crossed(c.env_steps - 1, c.env_steps, ev.video_every) or c.evals == 0)
        )
        # Evaluation must not consume the training RNG streams (resume equality, fair comparisons).
        saved = rng_state()
        metrics, frames = evaluate(
            EvalPolicy(self.agent, self.eval_env.action_spec, ev.policy, ev.epsilon),
            self.eval_env,
            ev.episodes,
            seed=self.cfg.seed + EVAL_SEED_OFFSET + c.evals,
            record=record,
            progress=bool(self.cfg.logging.progress_bar),
        )
        set_rng_state(saved)
        if frames:
            save_gif(frames, self.run_dir / "videos" / f"eval_{c.env_steps:012d}.gif")
        c.evals += 1
        self.last_eval = metrics["eval/return"]
        return metrics

    def _random_baseline(self) -> dict[str, float]:
        """``eval/random_return``: a uniformly random policy on the first evaluation's episodes."""
        if self.eval_env is None:
            return {}
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

    # --- lifecycle hooks -----------------------------------------------------------------------------
    def _before_training(self) -> None:
        if self.td is None:
            self.td = self.env.reset()
        if self.cfg.eval.at_start and self.counters.env_steps == 0 and self.counters.evals == 0:
            self.logger.log({**self._evaluate(), **self._random_baseline()}, 0)
            self.first_eval = self.last_eval

    def _on_schedule(self, before: int, bar) -> None:
        """Evaluate when ``eval.every`` was crossed (the last step is left to :meth:`_finish`);
        ``curve.png`` is redrawn after every evaluation."""
        if crossed(before, self.step, self.cfg.eval.every) and self.step < self.total:
            self.logger.log(self._evaluate(), self.step)
            self.logger.flush()
            self._plot()
            bar.set_postfix(eval=f"{self.last_eval:.1f}")

    def _finish(self) -> None:
        """Final evaluation, checkpoint and learning curve."""
        self.logger.log(self._evaluate(final=True), self.counters.env_steps)
        self.logger.flush()
        self.save()
        self._plot()

    def _plot(self) -> None:
        if not self.ctx.is_main:
            return
        from jepa_agents.analysis.curves import plot_run_curve

        plot_run_curve(self.run_dir, self.run_dir / "curve.png")

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
