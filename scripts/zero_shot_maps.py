"""Where each maze goal's implicit reward peaks and how much the critic tells actions apart, for a
train-zero-shot run on ``torch/point_mass_maze`` from states (:mod:`jepa_agents.zero_shot.goal_maps`)::

    python scripts/zero_shot_maps.py /work/runs/zs_maze/td_jepa_ortho_s0

A peak far from its goal (unnormalized embeddings), an action gap of a few thousandths (an actor that
follows noise) or a push near 1 at the goal (a saturated, bang-bang policy) explains a poor goal row
of the evaluation table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import envs
from envs.torch_control.point_mass_maze import GOALS
from jepa_agents.config.errors import ConfigError
from jepa_agents.infra.checkpoint import CheckpointError
from jepa_agents.zero_shot.cli import load_run_config
from jepa_agents.zero_shot.evaluate import load_trained_model
from jepa_agents.zero_shot.goal_maps import goal_maps, settle_points


def maps(run: Path, points: int) -> tuple[int, dict[str, dict[str, float]]]:
    """The latest checkpoint's step, its :func:`goal_maps` over the maze's built-in goals and where its
    policy settles for each (:func:`settle_points`, 8 episodes of 300 steps from the task's start)."""
    cfg = load_run_config(run)
    if cfg.env.name != "torch/point_mass_maze" or cfg.agent.obs_key != "state":
        raise ValueError(
            f"{run} is a {cfg.env.name} run on {cfg.agent.obs_key}; the maps need the maze from states"
        )
    model, ckpt = load_trained_model(cfg, run)
    out = goal_maps(model.eval(), GOALS, points)
    env = envs.make(cfg.env.name, num_envs=8, seed=cfg.seed, device="cpu", from_pixels=False)
    try:
        for name, row in settle_points(model, env, GOALS).items():
            out[name] |= row
    finally:
        env.close()
    return ckpt["step"], out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a train-zero-shot run directory (maze, states)")
    parser.add_argument("--points", type=int, default=39, help="grid points per axis")
    args = parser.parse_args(argv)
    if args.points < 2:
        parser.error("need --points >= 2")
    torch.set_num_threads(1)
    try:
        step, out = maps(args.run, args.points)
    except (ValueError, ConfigError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"{args.run} after {step} updates: implicit reward peak, critic action gap, policy's push at the goal"
    )
    head = f"  {'goal':20s} {'goal at':>14s} {'peak at':>14s} {'peak error':>10s} {'action gap':>10s}"
    print(f"{head} {'push':>6s} {'settles at':>14s} {'off by':>6s}")
    for name, row in out.items():
        goal = "({:.2f}, {:.2f})".format(*GOALS[name])
        peak = f"({row['peak_x']:.2f}, {row['peak_y']:.2f})"
        end = f"({row['settle_x']:.2f}, {row['settle_y']:.2f})"
        print(
            f"  {name:20s} {goal:>14s} {peak:>14s} {row['peak_error']:10.3f} {row['action_gap']:10.4f} "
            f"{row['push_at_goal']:6.2f} {end:>14s} {row['settle_error']:6.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
