"""``AsyncPool``: DMC copies in worker processes through gymnasium's ``AsyncVectorEnv``.

Each copy is one :class:`DMCCopy` (a ``gymnasium.Env`` around a one-copy
:class:`~envs.dmc_tasks.runner.DMCBatch`, rendering included) in its own ``spawn`` process; observations
come back through gymnasium's shared memory. ``AsyncVectorEnv`` runs with autoreset disabled, so a copy
is reset only when :class:`~envs.dmc.DMCEnv` asks (``reset_mask``) and no transition crosses an episode.
``max_concurrency`` (the ``num_workers`` option of ``envs.make``) bounds how many copies step at once,
which helps when there are more copies than cores.

The pool has ``DMCBatch``'s interface (``info``, ``reset(mask)``, ``step(actions)``, ``seed``, ``close``)
and adds what a library pool does not say by itself: every call waits at most ``timeout_s``, and a copy
whose process died, or that does not answer in time, raises ``RuntimeError`` naming the env, the copy
and its seed -- never a hang. An error raised inside a copy (a missing GL backend included) is re-raised
in the parent by gymnasium with its type and message.
"""

from __future__ import annotations

import multiprocessing as mp
import re
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode

from envs.dmc_tasks.runner import DMCBatch


class DMCCopy(gym.Env):
    """One copy of task ``name`` with task seed ``seed`` as a ``gymnasium.Env``.

    Observation: a dict of ``state`` float32 ``[S]``, ``physics`` float32 ``[P]`` and, with
    ``from_pixels``, ``pixels`` uint8 ``[3, H, W]`` (the newest frame); action float64 ``[A]``; reward =
    the sum over the action repeat; ``terminated`` / ``truncated`` as :class:`DMCBatch`. ``reset(seed=s)``
    re-seeds the task RNG before resetting; ``reset()`` does not.
    """

    def __init__(self, name: str, seed: int, **kwargs):
        self._batch = DMCBatch(name, [int(seed)], **kwargs)
        self.batch_info = self._batch.info()
        info = self.batch_info
        spaces = {
            "state": gym.spaces.Box(-np.inf, np.inf, (info["state_dim"],), np.float32),
            "physics": gym.spaces.Box(-np.inf, np.inf, (info["physics_dim"],), np.float32),
        }
        if kwargs["from_pixels"]:
            size = kwargs["image_size"]
            spaces["pixels"] = gym.spaces.Box(0, 255, (3, size, size), np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)
        low, high = info["action_low"].astype(np.float64), info["action_high"].astype(np.float64)
        self.action_space = gym.spaces.Box(low, high, dtype=np.float64)

    @property
    def task_seed(self) -> None:
        return None

    @task_seed.setter
    def task_seed(self, seed: int) -> None:
        """Re-seed the task RNG; used from the next reset on (``AsyncVectorEnv.set_attr``)."""
        self._batch.seed(np.array([int(seed)]))

    @staticmethod
    def _row(out: dict) -> dict:
        return {key: out[key][0] for key in ("state", "physics", "pixels") if key in out}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.task_seed = seed
        return self._row(self._batch.reset(np.ones(1, bool))), {}

    def step(self, action: np.ndarray):
        out = self._batch.step(np.asarray(action, np.float64)[None])
        reward, terminated, truncated = out["reward"][0], out["terminated"][0], out["truncated"][0]
        return self._row(out), float(reward), bool(terminated), bool(truncated), {}

    def close(self) -> None:
        self._batch.close()


def unguarded_main_script() -> str | None:
    """The path of the running ``__main__`` script when its source has no ``if __name__ == "__main__":``
    guard (``spawn`` re-imports it in every worker, which would start workers again), else ``None``."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path or mp.parent_process() is not None:
        return None
    try:
        source = Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    return None if re.search(r"__name__\s*==\s*['\"]__main__['\"]", source) else str(path)


class AsyncPool:
    """``len(seeds)`` copies of ``name``, one process each, at most ``max_concurrency`` stepping at once."""

    def __init__(self, name: str, seeds: list[int], max_concurrency: int, timeout_s: float = 300.0, **kwargs):
        script = unguarded_main_script()
        if script is not None:
            raise RuntimeError(
                f"dmc/{name}: {script} builds a multi-process DMC env at import time; worker processes "
                "(spawn) re-import it. Put the code that calls envs.make under `if __name__ == "
                '"__main__":`, or pass num_workers=0 to step every copy in this process.'
            )
        self.name = name
        self.seeds = [int(s) for s in seeds]
        self.timeout_s = float(timeout_s)
        fns = [_Factory(name, s, kwargs) for s in self.seeds]
        concurrency = None if max_concurrency >= len(seeds) else int(max_concurrency)
        self._vec = AsyncVectorEnv(
            fns, shared_memory=True, copy=True, context="spawn", autoreset_mode=AutoresetMode.DISABLED,
            max_concurrency=concurrency,
        )  # fmt: skip
        try:
            self._info = self._guard(lambda: self._vec.get_attr("batch_info"))[0]
        except BaseException:
            self.close()
            raise

    @property
    def processes(self) -> list:
        """The worker processes, copy ``i`` in ``processes[i]``."""
        return self._vec.processes

    def info(self) -> dict:
        return self._info

    def _describe_failure(self, closed_pipe: bool) -> str:
        deadline = time.monotonic() + (2.0 if closed_pipe else 0.0)
        while True:  # a worker that closed its pipe is dying: give its process a moment to be reaped
            dead = [i for i, p in enumerate(self._vec.processes) if not p.is_alive()]
            if dead or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if dead:
            who = ", ".join(
                f"worker {i} (copy {i}, seed {self.seeds[i]}) died with exit code "
                f"{self._vec.processes[i].exitcode}"
                for i in dead
            )
            return f"dmc/{self.name}: {who}"
        return f"dmc/{self.name}: a worker (seeds {self.seeds}) did not answer within {self.timeout_s:.0f} s"

    def _guard(self, call):
        try:
            return call()
        except (mp.TimeoutError, EOFError, BrokenPipeError, ConnectionError) as err:
            closed = not isinstance(err, mp.TimeoutError)
            raise RuntimeError(f"{self._describe_failure(closed)} ({type(err).__name__})") from None

    def reset(self, mask: np.ndarray) -> dict:
        mask = np.asarray(mask, bool)

        def call():
            self._vec.reset_async(options={"reset_mask": mask})
            return self._vec.reset_wait(timeout=self.timeout_s)[0]

        obs = self._guard(call)
        return {key: value[mask] for key, value in obs.items()}

    def seed(self, seeds: np.ndarray) -> None:
        self._guard(lambda: self._vec.set_attr("task_seed", [int(s) for s in seeds]))

    def step(self, actions: np.ndarray) -> dict:
        def call():
            self._vec.step_async(np.asarray(actions, np.float64))
            return self._vec.step_wait(timeout=self.timeout_s)

        obs, reward, terminated, truncated, _ = self._guard(call)
        return {**obs, "reward": reward.astype(np.float32), "terminated": terminated, "truncated": truncated}

    def close(self) -> None:
        if self._vec is not None and not self._vec.closed:
            self._vec.close(terminate=True)
        self._vec = None


class _Factory:
    """A picklable ``() -> DMCCopy`` for ``AsyncVectorEnv`` (spawned workers unpickle it)."""

    def __init__(self, name: str, seed: int, kwargs: dict):
        self.name, self.seed, self.kwargs = name, seed, kwargs

    def __call__(self) -> DMCCopy:
        return DMCCopy(self.name, self.seed, **self.kwargs)
