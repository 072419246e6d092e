"""Steps per second of the torch MinAtar games against the reference package, in one run.

For every game: the reference (``minatar`` 1.0.15, one game stepped in Python, sticky actions 0.1 and
ramping as defaults) and ours at N = 1 ... 16k copies in one batch (``envs.make("minatar/<game>", N)``),
both with uniformly random actions, automatic resets and the observation read every step; steps/s
counts game steps of all copies. Each
point runs for about ``--seconds`` after a warm-up. Example (one thread, as the README quotes it)::

    jepa-agents bench minatar -- --threads 1
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

import envs
from envs.minatar import NAMES
from jepa_agents.infra.argtypes import positive_int
from jepa_agents.infra.device import resolve_device, synchronize


def reference_rate(game: str, seconds: float) -> float:
    from minatar import Environment

    env = Environment(game)
    env.seed(0)
    rng = np.random.default_rng(0)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for a in rng.integers(0, 6, size=256):
            _, done = env.act(int(a))
            if done:
                env.reset()
            env.state()  # the observation an agent reads every step
        steps += 256
    return steps / (time.perf_counter() - t0)


def torch_rate(game: str, n: int, seconds: float, device: torch.device) -> float:
    env = envs.make(f"minatar/{game}", n, 0, device)
    td = env.reset()
    for _ in range(3):  # warm-up
        td["action"] = env.action_spec.rand()
        _, td = env.step_and_maybe_reset(td)
    synchronize(device)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        td["action"] = env.action_spec.rand()
        _, td = env.step_and_maybe_reset(td)
        steps += n
        synchronize(device)
    return steps / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per point")
    parser.add_argument("--copies", type=positive_int, nargs="+", default=[1, 16, 256, 4096, 16384])
    parser.add_argument("--games", nargs="+", default=list(NAMES), choices=NAMES)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    out = {"date": time.strftime("%Y-%m-%d"), "device": str(device), "threads": args.threads, "games": {}}
    for game in args.games:
        row = {"reference": reference_rate(game, args.seconds)}
        for n in args.copies:
            row[str(n)] = torch_rate(game, n, args.seconds, device)
        out["games"][game] = row
        best = max(v for k, v in row.items() if k != "reference")
        print(
            f"{game:>15}: reference {row['reference']:,.0f} steps/s; ours "
            + ", ".join(f"N={n} {row[str(n)]:,.0f}" for n in args.copies)
            + f" (best {best / row['reference']:.1f}x the reference)",
            flush=True,
        )
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
