"""Throughput of the simulator-backed envs: agent steps/s and frames/s, one table, one run.

Atari (``pong``, Atari-100k settings: frameskip 4, 84x84 gray, 4-stack, max-pool, 30 no-ops):
our torchrl ``atari/pong`` (``step_and_maybe_reset``, actions from ``action_spec.rand()``) vs raw
``ale_py.vector_env.AtariVectorEnv`` with the same settings (numpy actions) vs gymnasium
``AsyncVectorEnv`` of ``ALE/Pong-v5`` with the same preprocessing in numpy (one process per copy).
Raw and wrapper runs alternate ``--repeats`` times; the best of each is kept, and the wrapper overhead
is ``t_wrapper / t_raw - 1`` (target <= 5 %). DMC: ``dmc/walker_walk`` from 64x64 pixels with 0
(in-process), 1, 2 and 4 worker processes. frames/s = agent steps/s x action repeat.

    python scripts/bench_envs.py            # ~2-4 min on 2 cores
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _rate(fn, steps: int) -> float:
    start = time.perf_counter()
    fn(steps)
    return steps / (time.perf_counter() - start)


def bench_atari_raw(n: int, steps: int, repeats: int) -> float:
    from ale_py.vector_env import AtariVectorEnv

    env = AtariVectorEnv(
        "pong", n, autoreset_mode="SameStep", reward_clipping=False, use_fire_reset=False, noop_max=30
    )
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def run(k):
        for _ in range(k):
            env.step(rng.integers(0, 6, n).astype(np.int32))

    return max(_rate(run, steps) for _ in range(repeats))


def bench_atari_wrapper(n: int, steps: int, repeats: int) -> float:
    import envs

    env = envs.make("atari/pong", num_envs=n, seed=0)
    state = {"td": env.reset()}

    def run(k):
        td = state["td"]
        for _ in range(k):
            td["action"] = env.action_spec.rand()
            _, td = env.step_and_maybe_reset(td)
        state["td"] = td

    rate = max(_rate(run, steps) for _ in range(repeats))
    env.close()
    return rate


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


def bench_dmc(n: int, steps: int, workers: int) -> float:
    import envs

    env = envs.make("dmc/walker_walk", num_envs=n, seed=0, num_workers=workers)
    td = env.reset()

    def run(k):
        nonlocal td
        for _ in range(k):
            td["action"] = env.action_spec.rand()
            _, td = env.step_and_maybe_reset(td)

    run(2)  # warm-up (first renders)
    rate = _rate(run, steps)
    env.close()
    return rate


def main(argv=None) -> list[tuple]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--atari-envs", type=int, default=8)
    parser.add_argument("--atari-steps", type=int, default=1000, help="agent steps per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="alternating raw/wrapper runs (best kept)")
    parser.add_argument("--dmc-envs", type=int, default=4)
    parser.add_argument("--dmc-steps", type=int, default=60)
    parser.add_argument("--dmc-workers", type=int, nargs="+", default=[0, 1, 2, 4])
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    n = args.atari_envs
    raw = wrapped = 0.0
    for _ in range(args.repeats):  # alternate so that load from other processes hits both alike
        raw = max(raw, bench_atari_raw(n, args.atari_steps, 1))
        wrapped = max(wrapped, bench_atari_wrapper(n, args.atari_steps, 1))
    rows = [
        ("atari/pong", "raw AtariVectorEnv", n, raw, 4),
        ("atari/pong", "ours (torchrl EnvBase)", n, wrapped, 4),
        ("ALE/Pong-v5", "gymnasium AsyncVectorEnv", n, bench_atari_async(n, args.atari_steps // 2), 4),
    ]
    for workers in args.dmc_workers:
        label = "in-process" if workers == 0 else f"{workers} worker process{'es' * (workers > 1)}"
        rows.append(
            (
                "dmc/walker_walk 64px",
                label,
                args.dmc_envs,
                bench_dmc(args.dmc_envs, args.dmc_steps, workers),
                2,
            )
        )
    print("| env | implementation | N | agent steps/s | frames/s |")
    print("|---|---|---:|---:|---:|")
    for env, impl, count, rate, repeat in rows:
        print(f"| {env} | {impl} | {count} | {rate * count:,.0f} | {rate * count * repeat:,.0f} |")
    print(f"\nwrapper overhead over raw AtariVectorEnv: {100 * (raw / wrapped - 1):+.1f} %")
    return rows


if __name__ == "__main__":
    main()
