"""Which frame size does zero-shot RL from pixels need on the torch-native maze? (issue #32)

For each frame size and conv trunk it measures, on one CPU thread:

* **what a frame says about the position**: the point mass is the only moving object, so the frame minus
  the empty maze shows it; the intensity-weighted centroid of that difference, mapped to the arena by a
  least-squares affine fit, locates the mass with an RMS error (arena units; the goal radius is 0.1 and
  the mass's 0.05) over uniform states; ``visible`` is the share of states where the mass changes any
  pixel;
* **what a frame costs**: bytes per stored transition (``frame_stack`` RGB frames, observation and next
  observation are separate rows of the memory-mapped dataset: one frame stack each), and the seconds of
  one TD-JEPA update (batch ``--batch``, the ``td_jepa_ortho`` preset, random shift on) from uint8 frames.

    python scripts/zero_shot_pixel_resolution.py --out docs/results/zero_shot_pixel_resolution.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from envs.torch_control import point_mass_maze as maze
from envs.torch_control import render
from jepa_agents.config.load import compose
from jepa_agents.zero_shot.agents import make_zero_shot_agent
from jepa_agents.zero_shot.config import ZERO_SHOT


def position_error(size: int, n: int, seed: int) -> dict[str, float]:
    """RMS error of the centroid estimate of the mass's position at frame ``size`` (module doc)."""
    gen = torch.Generator().manual_seed(seed)
    physics = maze.uniform_physics(gen, n, torch.device("cpu"))  # [n, 6], free positions at rest
    scene = maze.Scene("reward_free", size, torch.device("cpu"))
    frames = scene(physics).float()  # [n, 3, S, S]
    empty = render.to_uint8(scene.background.clone()).float()  # [1, 3, S, S]
    diff = (frames - empty).abs().sum(1)  # [n, S, S]
    mass = diff.sum((1, 2))  # [n]
    visible = mass > 0
    grid = torch.arange(size, dtype=torch.float32)
    cy = (diff.sum(2) * grid).sum(1) / mass.clamp_min(1e-6)  # row centroid [n]
    cx = (diff.sum(1) * grid).sum(1) / mass.clamp_min(1e-6)  # column centroid [n]
    feats = torch.stack((cx, cy, torch.ones_like(cx)), -1)[visible].double()  # [m, 3]
    target = physics[visible, :2].double()  # [m, 2]
    fit = torch.linalg.lstsq(feats, target).solution  # [3, 2]
    err = (feats @ fit - target).norm(dim=-1)  # [m]
    return {"visible": float(visible.float().mean()), "rms_error": float(err.square().mean().sqrt()),
            "p95_error": float(err.quantile(0.95))}  # fmt: skip


def update_seconds(size: int, cnn: str, stack: int, batch: int, repeats: int) -> float:
    """Median seconds of one TD-JEPA (orthonormality) update from uint8 frames ``[batch, 3·stack, S, S]``."""
    overrides = ["dataset=unused", "zs_agent=td_jepa_ortho", "agent.obs_key=pixels", f"agent.cnn={cnn}",
                 f"agent.batch_size={batch}", "agent.augment_pad=1"]  # fmt: skip
    cfg = compose(overrides, ZERO_SHOT)
    shape = (3 * stack, size, size)
    agent = make_zero_shot_agent(cfg.agent, shape, maze.ACTION_DIM, torch.device("cpu"))
    obs = torch.randint(0, 256, (batch, *shape), dtype=torch.uint8)
    nxt = torch.randint(0, 256, (batch, *shape), dtype=torch.uint8)
    action = torch.rand(batch, maze.ACTION_DIM) * 2 - 1
    discount = torch.full((batch, 1), 0.99)

    def update() -> None:
        agent.step(agent.augment(obs), action, agent.augment(nxt), discount)

    update()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        update()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 24, 32, 48, 64])
    parser.add_argument("--cnns", nargs="+", default=["small_cnn", "drq", "minatar"])
    parser.add_argument("--stack", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--states", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for size in args.sizes:
        row = {"size": size, **position_error(size, args.states, seed=0)}
        row["bytes_per_transition"] = 2 * 3 * args.stack * size * size
        for cnn in args.cnns:
            try:
                row[f"update_s_{cnn}"] = update_seconds(size, cnn, args.stack, args.batch, args.repeats)
            except ValueError as err:  # the trunk does not fit this size
                row[f"update_s_{cnn}"] = None
                print(f"size {size}, {cnn}: {err}")
        print(json.dumps(row), flush=True)
        rows.append(row)
    result = {
        "rows": rows, "batch": args.batch, "frame_stack": args.stack, "threads": 1,
        "cpu": torch.backends.cpu.get_cpu_capability(), "machine": platform.processor() or platform.machine(),
        "goal_radius": maze.GOAL_RADIUS, "mass_radius": maze.RADIUS,
    }  # fmt: skip
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
