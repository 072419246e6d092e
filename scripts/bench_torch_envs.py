"""Frames per second of the native-torch control tasks against dm_control rendering on the same machine.

Frames/s = agent steps x num_envs / wall time (action_repeat 1, so env frames = agent steps), with
64x64 rendering unless ``--image-size`` says otherwise, with every distraction at half strength
(``fps_distracted``; ``distracted_cost``: the extra time per frame), and without rendering (state only)
for reference. The dm_control baseline steps and renders ``cartpole/swingup`` at the same image size on one
process, in the same run.

    python scripts/bench_torch_envs.py --num-envs 1 64 1024 4096 --device cpu --steps 20 --out results.md
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from pathlib import Path

import torch

import envs
from jepa_agents.infra.argtypes import nonnegative_int, positive_int
from jepa_agents.infra.device import synchronize


def dm_control_fps(image_size: int, steps: int) -> float:
    """Frames/s of dm_control ``cartpole/swingup`` stepping and rendering ``image_size`` frames."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    import numpy as np
    from dm_control import suite

    env = suite.load("cartpole", "swingup", task_kwargs={"random": 0})
    env.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, size=(steps + 5, 1))
    for action in actions[:5]:
        env.step(action)
        env.physics.render(image_size, image_size, camera_id=0)
    start = time.perf_counter()
    for action in actions[5:]:
        env.step(action)
        env.physics.render(image_size, image_size, camera_id=0)
    return steps / (time.perf_counter() - start)


DISTRACTION = {"color": 0.5, "background": 0.5, "camera": 0.5}
"""The distracted column: all three kinds at half strength (``envs/torch_control/distraction.py``)."""


def torch_fps(
    task: str,
    num_envs: int,
    device: str,
    steps: int,
    from_pixels: bool,
    image_size: int,
    distraction: dict | None = None,
) -> float:
    """Frames/s of ``torch/<task>`` with ``num_envs`` copies (random actions, auto-reset included)."""
    env = envs.make(
        f"torch/{task}",
        num_envs=num_envs,
        seed=0,
        device=device,
        from_pixels=from_pixels,
        image_size=image_size,
        **({"distraction": distraction} if distraction else {}),
    )
    generator = torch.Generator(device=device).manual_seed(0)
    shape = (steps + 2, *env.action_spec.shape)
    actions = torch.rand(shape, generator=generator, device=device) * 2 - 1
    td = env.reset()
    for i in range(2):
        _, td = env.step_and_maybe_reset(td.set("action", actions[i]))
    synchronize(torch.device(device))
    start = time.perf_counter()
    for i in range(2, steps + 2):
        _, td = env.step_and_maybe_reset(td.set("action", actions[i]))
    synchronize(torch.device(device))
    return steps * num_envs / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=positive_int, nargs="+", default=[1, 64, 1024, 4096])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=positive_int, default=20, help="timed agent steps per configuration")
    parser.add_argument("--tasks", nargs="+", default=["cartpole_swingup"], help="torch task names")
    parser.add_argument("--image-size", type=positive_int, default=64)
    parser.add_argument(
        "--dmc-steps", type=nonnegative_int, default=200, help="timed dm_control steps (0 skips it)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the table as .md or .csv")
    parser.add_argument(
        "--threads", type=positive_int, default=1, help="torch intra-op threads (1: per-core numbers)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    dmc = dm_control_fps(args.image_size, args.dmc_steps) if args.dmc_steps > 0 else float("nan")
    rows = []
    for task in args.tasks:
        for n in args.num_envs:
            pixels = torch_fps(task, n, args.device, args.steps, True, args.image_size)
            distracted = torch_fps(task, n, args.device, args.steps, True, args.image_size, DISTRACTION)
            state = torch_fps(task, n, args.device, args.steps, False, args.image_size)
            rows.append(
                {
                    "task": task,
                    "num_envs": n,
                    "device": args.device,
                    "fps_pixels": round(pixels),
                    "fps_distracted": round(distracted),
                    "distracted_cost": f"{pixels / distracted - 1:+.0%}",
                    "fps_state_only": round(state),
                    "speedup_vs_dm_control": round(pixels / dmc, 1),
                }
            )
            print(rows[-1], flush=True)
    header = (
        f"dm_control cartpole/swingup + {args.image_size}x{args.image_size} rendering: {dmc:.1f} frames/s "
        f"(one process). torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}."
    )
    print(header)
    if args.out is None:
        return
    if args.out.suffix == ".csv":
        with args.out.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        lines = [header, "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in rows]
        args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
