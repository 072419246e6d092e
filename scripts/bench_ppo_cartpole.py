"""PPO on ``torch/cartpole_swingup`` from states with many copies on the CPU: env-steps/s and the wall time
until the evaluation return first reaches a target.

Trains ``agent=ppo env=torch/cartpole_swingup_ppo train=ppo`` in this process (extra Hydra overrides are
passed through), then reads the run's ``scalars.csv``: throughput is env steps (frames) per second of
the whole run (collection + updates, evaluation excluded as far as the logged rates go), and the time
to target is the wall time of the first ``eval/return >= --target`` since the run started.

    python scripts/bench_ppo_cartpole.py --num-threads 1 --env-steps 12000000 [overrides ...]
"""

from __future__ import annotations

import argparse
import csv
import platform
import time
from pathlib import Path

from jepa_agents.infra.argtypes import positive_int


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def summarize(run_dir: Path, start: float, target: float) -> dict[str, float | None]:
    """Best and first-at-target evaluation, and the mean logged env-steps/s of a finished run."""
    evals, rates = [], []
    with (run_dir / "scalars.csv").open() as f:
        for row in csv.DictReader(f):
            if row["tag"] == "eval/return":
                evals.append((int(row["step"]), float(row["value"]), float(row["wall_time"]) - start))
            elif row["tag"] == "perf/env_steps_per_s":
                rates.append(float(row["value"]))
    hit = next(((s, v, t) for s, v, t in evals if v >= target), None)
    best = max(evals, key=lambda e: e[1])
    return {
        "env_steps": evals[-1][0],
        "wall_s": evals[-1][2],
        "env_steps_per_s": sum(rates) / len(rates),
        "best_return": best[1],
        "best_step": best[0],
        "target_step": hit[0] if hit else None,
        "target_wall_s": hit[2] if hit else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=positive_int, default=1024)
    parser.add_argument("--num-threads", type=positive_int, default=1)
    parser.add_argument("--env-steps", type=positive_int, default=12_000_000, help="training budget (frames)")
    parser.add_argument("--eval-every", type=positive_int, default=500_000)
    parser.add_argument("--target", type=float, default=800.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", default="runs/bench_ppo_cartpole")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args()

    from jepa_agents.train.config import compose
    from jepa_agents.train.run import train

    overrides = [
        "agent=ppo",
        "env=torch/cartpole_swingup_ppo",
        "train=ppo",
        f"env.num_envs={args.num_envs}",
        f"train.total_env_steps={args.env_steps}",
        f"eval.every={args.eval_every}",
        "eval.episodes=8",
        "eval.video=false",
        "device=cpu",
        f"num_threads={args.num_threads}",
        f"seed={args.seed}",
        f"run_dir={args.run_dir}",
        *args.overrides,
    ]
    start = time.time()
    run_dir = train(compose(overrides))
    result = summarize(run_dir, start, args.target)
    print(f"overrides: {' '.join(overrides)}")
    print(f"cpu: {cpu_model()} (torch threads: {args.num_threads})")
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
