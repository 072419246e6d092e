"""One run's life, shared by every job that trains: online off-policy and on-policy learning and
offline zero-shot training.

:class:`Lifecycle` owns what does not depend on the learner: resuming from the latest checkpoint of the
run directory (or starting at step 0 in it), the scalar logger (which drops what a killed run logged
after its checkpoint), the progress bar, the step budget, the checkpoint schedule, the final checkpoint,
the stop after too many non-finite updates, and the run's training time: seconds spent in :meth:`run`
summed over every session of the run (kept in each checkpoint as ``train_seconds``, logged as
``perf/train_s`` with the losses and at the end), so a run resumed days later reports the time it trained,
not the time between its first and last log line. A job says what a checkpoint holds (:meth:`state` /
:meth:`load_state`) and what it does until the budget is spent (:meth:`_train`, which calls
:meth:`_after_iteration` after each iteration).
"""

from __future__ import annotations

import abc
import math
import time
from pathlib import Path

from tqdm import tqdm

from jepa_agents.infra import distributed
from jepa_agents.infra.checkpoint import (
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    load_shard,
    save_checkpoint,
    save_shard,
)
from jepa_agents.infra.logger import Logger, NullLogger
from jepa_agents.infra.schedule import crossed


class TrainingError(RuntimeError):
    """Training stopped (for instance after too many non-finite losses); checkpoints are intact."""


class Lifecycle(abc.ABC):
    """Resume, logging, progress, schedules and the NaN stop of one run (module docstring).

    Args:
        run_dir: the run directory (exists; ``checkpoints/`` is written inside it).
        config_hash: the config's hash, stored in and checked against every checkpoint.
        total: the step budget (env steps online, updates offline).
        checkpoint_every: steps between checkpoints (``<= 0``: only the final one).
        keep_checkpoints: how many checkpoints stay on disk.
        logging: the ``logging`` config section (``tensorboard``, ``csv``, ``progress_bar``).
        desc, unit: the progress bar's label and unit.
    """

    rank_keys: tuple[str, ...] = ()
    """Keys of :meth:`state` that each rank of a data-parallel run owns (its data, environments, RNG
    streams): ranks other than 0 save them in their shard and take them from it on resume."""

    def __init__(
        self,
        run_dir: Path,
        *,
        config_hash: str,
        total: int,
        checkpoint_every: int,
        keep_checkpoints: int,
        logging,
        desc: str,
        unit: str,
    ):
        self.run_dir = Path(run_dir)
        self.config_hash = config_hash
        self.total = int(total)
        self.checkpoint_every = int(checkpoint_every)
        self.keep_checkpoints = int(keep_checkpoints)
        self._logging, self._desc, self._unit = logging, desc, unit
        self.logger: Logger | NullLogger | None = None
        self.ctx = distributed.context()
        self._seconds_before = 0.0  # training time of the earlier sessions (NaN: a checkpoint without it)
        self._session_start: float | None = None

    # --- what a job provides -------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def step(self) -> int:
        """The counter the budget and every schedule are counted in."""

    @abc.abstractmethod
    def state(self) -> dict:
        """Everything a checkpoint holds to continue this run."""

    @abc.abstractmethod
    def load_state(self, ckpt: dict) -> None:
        """Restore :meth:`state` from a loaded checkpoint."""

    @abc.abstractmethod
    def _train(self, bar: tqdm) -> None:
        """Iterate until ``self.step >= self.total``, calling :meth:`_after_iteration` after each one."""

    def _before_training(self) -> None:
        """Hook: runs once before :meth:`_train` (e.g. an evaluation at step 0)."""
        return None

    def _finish(self) -> None:
        """Hook: after the budget is spent; the default writes the final checkpoint."""
        self.save()

    def _on_schedule(self, before: int, bar: tqdm) -> None:
        """Hook: runs after each iteration, before the checkpoint schedule (e.g. evaluation)."""
        return None

    # --- the lifecycle -------------------------------------------------------------------------------
    def open(self, resume: bool) -> None:
        """Restore the latest checkpoint when ``resume`` (step 0 when the run has none yet), then open the
        logger, which on resume drops what was logged after the restored step."""
        resume_step = self._restore() if resume else None
        if not self.ctx.is_main:  # rank 0 writes the run's scalars
            self.logger = NullLogger()
            return
        self.logger = Logger(
            self.run_dir,
            tensorboard=self._logging.tensorboard,
            csv_file=self._logging.csv,
            resume_step=resume_step,
        )

    def _restore(self) -> int:
        path = latest_checkpoint(self.run_dir / "checkpoints")
        if path is None:  # killed before its first checkpoint: start from scratch in the same directory
            print(f"resuming {self.run_dir}: no checkpoint yet, starting from step 0", flush=True)
            return 0
        ckpt = load_checkpoint(path, self.config_hash)
        distributed.check_world_size(ckpt.get("world_size"), path)
        if self.ctx.is_main:
            print(f"resuming {self.run_dir} from checkpoint at step {ckpt['step']} ({path.name})", flush=True)
        else:
            ckpt.update({k: v for k, v in load_shard(path, self.ctx.rank).items() if k in self.rank_keys})
        self.load_state(ckpt)
        self._seconds_before = float(ckpt.get("train_seconds", math.nan))  # NaN: written before the counter
        return int(ckpt["step"])

    def train_seconds(self) -> float:
        """Seconds spent in :meth:`run` by every session of this run so far (NaN when an earlier session's
        checkpoint predates the counter)."""
        now = time.perf_counter()
        return self._seconds_before + (now - self._session_start if self._session_start is not None else 0.0)

    def save(self) -> Path:
        """An atomic checkpoint of :meth:`state` at the current step; in a data-parallel run every other
        rank first writes its :attr:`rank_keys` shard, then rank 0 the main file."""
        directory = self.run_dir / "checkpoints"
        state = {**self.state(), "train_seconds": self.train_seconds()}
        if self.ctx.world_size == 1:
            return save_checkpoint(directory, self.step, state, self.config_hash, self.keep_checkpoints)
        if not self.ctx.is_main:
            save_shard(directory, self.step, self.ctx.rank, {k: state[k] for k in self.rank_keys})
        distributed.barrier()
        if self.ctx.is_main:
            state = {**state, "world_size": self.ctx.world_size}
            save_checkpoint(directory, self.step, state, self.config_hash, self.keep_checkpoints)
        distributed.barrier()
        return checkpoint_path(directory, self.step)

    def run(self) -> Path:
        """Train to the budget, then :meth:`_finish`; the logger and the bar are closed in any case."""
        if self.logger is None:
            raise RuntimeError("call open(resume) before run()")
        bar = tqdm(
            total=self.total,
            initial=min(self.step, self.total),
            unit=self._unit,
            dynamic_ncols=True,
            disable=not self._logging.progress_bar or not self.ctx.is_main,
            desc=self._desc,
        )
        self._session_start = time.perf_counter()
        try:
            self._before_training()
            self._train(bar)
            self._finish()
            self._log_train_seconds()
        finally:
            bar.close()
            self.logger.close()
        return self.run_dir

    def _after_iteration(self, before: int, bar: tqdm) -> None:
        """After an iteration that moved the counter from ``before``: the job's scheduled work, then a
        checkpoint when its schedule was crossed (the last step is left to :meth:`_finish`)."""
        self._on_schedule(before, bar)
        if crossed(before, self.step, self._logging.every):
            self._log_train_seconds()
        if crossed(before, self.step, self.checkpoint_every) and self.step < self.total:
            self.logger.flush()
            self.save()
        bar.update(min(self.step, self.total) - min(before, self.total))

    def _log_train_seconds(self) -> None:
        seconds = self.train_seconds()
        if seconds == seconds:  # not NaN
            self.logger.log({"perf/train_s": seconds}, self.step)

    def stopped(self, err: FloatingPointError) -> TrainingError:
        """The error that ends a run after too many non-finite losses (checkpoints untouched)."""
        return TrainingError(
            f"{err} Training stopped at step {self.step}; the last good checkpoint in "
            f"{self.run_dir / 'checkpoints'} is intact."
        )
