"""Throughput of the simulator-backed envs: agent steps/s and frames/s, one table, one run.

Atari (``pong``, Atari-100k settings: frameskip 4, 84x84 gray, 4-stack, max-pool, 30 no-ops):
our torchrl ``atari/pong`` (``step_and_maybe_reset``, actions from ``action_spec.rand()``) vs raw
``ale_py.vector_env.AtariVectorEnv`` with the same settings (numpy actions) vs gymnasium
``AsyncVectorEnv`` of ``ALE/Pong-v5`` with the same preprocessing in numpy (one process per copy).
Raw and wrapper runs alternate ``--repeats`` times (pairs); rates are the median over repeats, and the
wrapper overhead is the median over pairs of ``t_wrapper / t_raw - 1`` (target <= 5 %).

DMC (``--dmc-backends``, on by default): ``walker_walk`` from 64x64 pixels, frame stack 3, action repeat 2,
N copies, uniform random actions, the same number of agent steps per backend after the same warm-up
(not timed), every backend in the same run:

* ours: ``envs.make("dmc/walker_walk", num_envs=N, num_workers=W)`` (``W=0``: in-process; ``W>0``: the
  gymnasium ``AsyncVectorEnv`` pool of ``envs/dmc_tasks/pool.py``, one process per copy, at most ``W``
  stepping at once);
* bare gymnasium ``AsyncVectorEnv`` (``shared_memory=True``, ``context="spawn"``) of N single-copy
  :class:`DMCGym` envs (``dm_control.suite.load`` + ``physics.render`` + action repeat + frame stack),
  what our pool costs over the library alone;
* torchrl ``ParallelEnv(N, ...)`` (spawn) of our env nested with ``num_envs=1, num_workers=0``.

All backends are built and warmed up first, then timed in rounds (``--dmc-repeats``), one backend after
the other, the median round of each kept, so that load from other processes hits all of them alike
(idle workers block on their pipes). frames/s = agent steps/s x action repeat (one render per agent step).

    python scripts/bench_envs.py               # Atari and DMC, ~3-4 min on 2 cores
    python scripts/bench_envs.py --skip-atari  # DMC only, ~3 min
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from jepa_agents.infra.argtypes import nonnegative_int, positive_int

os.environ.setdefault("MUJOCO_GL", "egl")  # before any dm_control import; inherited by spawned workers

DMC_TASK = ("walker", "walk")
DMC_IMAGE, DMC_STACK, DMC_REPEAT, DMC_CAMERA = 64, 3, 2, 0


def _rate(fn, steps: int) -> float:
    start = time.perf_counter()
    fn(steps)
    return steps / (time.perf_counter() - start)


def atari_pair(n: int, steps: int, repeats: int) -> tuple[list[float], list[float]]:
    """Batch steps/s of raw ``AtariVectorEnv`` and of our ``atari/pong``, timed in alternation
    (``repeats`` pairs of ``steps`` steps) in this process. The raw env is the ``AtariVectorEnv`` inside a
    second ``envs.make("atari/pong")`` (so both run with the same settings), stepped directly with
    numpy actions; the wrapper is stepped through torchrl (``step_and_maybe_reset``) with actions drawn
    by ``action_spec.rand()``."""
    import envs

    ours = envs.make("atari/pong", num_envs=n, seed=0)
    raw = envs.make("atari/pong", num_envs=n, seed=0)._vec  # same construction, stepped without the wrapper
    raw.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, ours.num_actions, (steps, n)).astype(np.int32)
    state = {"td": ours.reset()}

    def run_raw(k):
        for i in range(k):
            raw.step(actions[i])

    def run_ours(k):
        td = state["td"]
        for _ in range(k):
            td["action"] = ours.action_spec.rand()
            _, td = ours.step_and_maybe_reset(td)
        state["td"] = td

    run_raw(steps // 10), run_ours(steps // 10)  # warm-up
    raws, wrappeds = [], []
    for _ in range(repeats):
        raws.append(_rate(run_raw, steps))
        wrappeds.append(_rate(run_ours, steps))
    ours.close()
    raw.close()
    return raws, wrappeds


def _gym_preprocessed_pong():
    """``ALE/Pong-v5`` with the Atari-100k preprocessing done in numpy (gymnasium's ``AtariPreprocessing``
    needs OpenCV, not installed here): 30 no-op starts, frameskip 4 with max over the last two frames,
    nearest-neighbour resize to 84x84 grayscale, 4-frame stack."""
    import ale_py
    import gymnasium as gym
    from gymnasium.wrappers import FrameStackObservation

    gym.register_envs(ale_py)
    rows, cols = np.linspace(0, 209, 84).astype(int), np.linspace(0, 159, 84).astype(int)

    class Preprocess(gym.Wrapper):
        def __init__(self, env):
            super().__init__(env)
            self.observation_space = gym.spaces.Box(0, 255, (84, 84), np.uint8)

        def reset(self, **kwargs):
            obs, info = self.env.reset(**kwargs)
            for _ in range(self.np_random.integers(1, 31)):
                obs, _, terminated, truncated, info = self.env.step(0)
            return obs[rows][:, cols], info

        def step(self, action):
            total, frames = 0.0, []
            for _ in range(4):
                obs, reward, terminated, truncated, info = self.env.step(action)
                total += reward
                frames = [*frames[-1:], obs]
                if terminated or truncated:
                    break
            return np.max(frames, axis=0)[rows][:, cols], total, terminated, truncated, info

    env = gym.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.0, obs_type="grayscale")
    return FrameStackObservation(Preprocess(env), 4)


def bench_atari_async(n: int, steps: int) -> float:
    import gymnasium as gym

    env = gym.vector.AsyncVectorEnv(
        [_gym_preprocessed_pong] * n, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def run(k):
        for _ in range(k):
            env.step(rng.integers(0, 6, n))

    rate = _rate(run, steps)
    env.close()
    return rate


def _time(step: Callable[[], None], steps: int) -> float:
    """Calls of ``step`` per second over ``steps`` calls."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def _torchrl_stepper(env) -> tuple[Callable[[], None], Callable[[], None]]:
    """``(step, close)``: one ``step_and_maybe_reset`` with ``action_spec.rand()`` actions per call."""
    state = {"td": env.reset()}

    def step():
        td = state["td"]
        td["action"] = env.action_spec.rand()
        _, state["td"] = env.step_and_maybe_reset(td)

    return step, env.close


def _ours(n: int, seed: int, workers: int):
    import envs

    return envs.make(
        "dmc/walker_walk", num_envs=n, seed=seed, num_workers=workers, image_size=DMC_IMAGE,
        frame_stack=DMC_STACK, action_repeat=DMC_REPEAT,
    )  # fmt: skip


def build_dmc_ours(n: int, workers: int):
    return _torchrl_stepper(_ours(n, 0, workers))


try:
    import gymnasium as _gym

    class DMCGym(_gym.Env):
        """One dm_control copy as a minimal ``gymnasium.Env``: uint8 ``[3 * K, H, W]`` pixels (oldest frame
        first, the reset frame fills the stack), action repeat summing rewards, dm_control's 1000-step
        time limit as ``truncated``."""

        def __init__(self, seed: int):
            from dm_control import suite

            self._env = suite.load(*DMC_TASK, task_kwargs={"random": seed})
            spec = self._env.action_spec()
            low, high = spec.minimum.astype(np.float32), spec.maximum.astype(np.float32)
            self.action_space = _gym.spaces.Box(low, high, spec.shape, np.float32)
            shape = (3 * DMC_STACK, DMC_IMAGE, DMC_IMAGE)
            self.observation_space = _gym.spaces.Box(0, 255, shape, np.uint8)
            self._frames = np.zeros(shape, np.uint8)

        def _render(self) -> np.ndarray:
            frame = self._env.physics.render(DMC_IMAGE, DMC_IMAGE, camera_id=DMC_CAMERA)
            return frame.transpose(2, 0, 1)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self._env.reset()
            self._frames[:] = np.tile(self._render(), (DMC_STACK, 1, 1))
            return self._frames.copy(), {}

        def step(self, action):
            reward, terminated, truncated = 0.0, False, False
            for _ in range(DMC_REPEAT):
                timestep = self._env.step(action)
                reward += timestep.reward or 0.0
                if timestep.last():
                    terminated = timestep.discount == 0
                    truncated = not terminated
                    break
            self._frames[:-3] = self._frames[3:]
            self._frames[-3:] = self._render()
            return self._frames.copy(), reward, terminated, truncated, {}

        def close(self):
            self._env.close()

except ImportError:  # gymnasium missing: the AsyncVectorEnv row is skipped
    DMCGym = None


def build_dmc_async(n: int):
    import gymnasium as gym

    env = gym.vector.AsyncVectorEnv(
        [functools.partial(DMCGym, i) for i in range(n)], shared_memory=True, context="spawn"
    )
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    low, high = env.single_action_space.low, env.single_action_space.high

    def step():
        env.step(rng.uniform(low, high, (n, *low.shape)).astype(np.float32))

    return step, env.close


def build_dmc_parallel(n: int):
    from torchrl.envs import ParallelEnv

    makers = [functools.partial(_ours, 1, i, 0) for i in range(n)]  # nested: 1 copy, in-process
    return _torchrl_stepper(ParallelEnv(n, makers, mp_start_method="spawn"))


def dmc_backends(workers: list[int], alternatives: bool) -> list[tuple[str, Callable]]:
    """``(label, build(n) -> (step, close))`` for every DMC backend to time."""
    out = []
    for w in workers:
        label = "ours, in-process" if w == 0 else f"ours (AsyncVectorEnv pool, {w} stepping at once)"
        out.append((label, functools.partial(build_dmc_ours, workers=w)))
    if alternatives:
        if DMCGym is not None:
            out.append(("gymnasium AsyncVectorEnv, 1 process per copy", build_dmc_async))
        out.append(("torchrl ParallelEnv of ours, 1 process per copy", build_dmc_parallel))
    return out


def bench_dmc(n: int, steps: int, warmup: int, repeats: int, workers: list[int], alternatives: bool):
    """Median batch steps/s of each backend: all are built (and warmed up, untimed) first, then timed
    ``repeats`` rounds one after the other, so that load from other processes hits all of them alike."""
    built = []
    try:
        for label, build in dmc_backends(workers, alternatives):
            step, close = build(n)
            built.append((label, step, close))
            for _ in range(warmup):
                step()
        rates: dict[str, list[float]] = {label: [] for label, _, _ in built}
        for _ in range(repeats):
            for label, step, _ in built:
                rates[label].append(_time(step, steps))
        return {label: statistics.median(values) for label, values in rates.items()}
    finally:
        for _, _, close in built:
            close()


def main(argv=None) -> list[tuple]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--atari-envs", type=positive_int, default=8)
    parser.add_argument("--atari-steps", type=positive_int, default=1000, help="agent steps per timed run")
    parser.add_argument(
        "--repeats", type=positive_int, default=5, help="alternating raw/wrapper rounds (median)"
    )
    parser.add_argument("--skip-atari", action="store_true", help="time the DMC backends only")
    parser.add_argument("--dmc-envs", type=positive_int, default=4)
    parser.add_argument(
        "--dmc-steps", type=nonnegative_int, default=100, help="timed agent (batch) steps per run"
    )
    parser.add_argument(
        "--dmc-warmup", type=nonnegative_int, default=5, help="untimed agent steps before each run"
    )
    parser.add_argument(
        "--dmc-repeats", type=positive_int, default=3, help="rounds over all DMC backends (median)"
    )
    parser.add_argument("--dmc-workers", type=nonnegative_int, nargs="+", default=[0, 2, 4])
    parser.add_argument(
        "--dmc-backends",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time gymnasium AsyncVectorEnv and torchrl ParallelEnv (one process per copy)",
    )
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    rows = []
    overhead = 0.0
    if not args.skip_atari:
        n = args.atari_envs
        raws, wrappeds = atari_pair(n, args.atari_steps, args.repeats)
        raw, wrapped = statistics.median(raws), statistics.median(wrappeds)
        overhead = statistics.median(r / w - 1 for r, w in zip(raws, wrappeds))
        rows += [
            ("atari/pong", "raw AtariVectorEnv", n, raw, 4),
            ("atari/pong", "ours (torchrl EnvBase)", n, wrapped, 4),
            ("ALE/Pong-v5", "gymnasium AsyncVectorEnv", n, bench_atari_async(n, args.atari_steps // 2), 4),
        ]
    n = args.dmc_envs
    best = bench_dmc(
        n, args.dmc_steps, args.dmc_warmup, args.dmc_repeats, args.dmc_workers, args.dmc_backends
    )
    rows += [("dmc/walker_walk 64px", label, n, rate, DMC_REPEAT) for label, rate in best.items()]
    print("| env | implementation | N | agent steps/s | frames/s |")
    print("|---|---|---:|---:|---:|")
    for env, impl, count, rate, repeat in rows:
        print(f"| {env} | {impl} | {count} | {rate * count:,.0f} | {rate * count * repeat:,.0f} |")
    if not args.skip_atari:
        pairs = f"median of {args.repeats} pairs"
        print(f"\nwrapper overhead over raw AtariVectorEnv ({pairs}): {100 * overhead:+.1f} %")
    if best:
        top = max(best, key=best.get)
        print(f"fastest DMC backend: {top}")
        for label, rate in best.items():
            print(f"  {label}: {100 * (rate / best[top] - 1):+.1f} % vs fastest")
    return rows


if __name__ == "__main__":
    main()
