"""Save a PNG grid of frames of every torch task (``docs/torch_envs_frames.png``), dm_control beside them.

Each row is one task: the first column is dm_control rendering the same physics state as the second
(tasks with a dm_control twin; MuJoCo shadows and reflections are not reproduced), the rest are torch
frames along a random-action rollout. Run: ``MUJOCO_GL=egl python -m envs.torch_control.gallery [PNG]``.
With ``--distractions``: one row per distraction setting, one column per task
(``docs/figures/distractions.png``).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import envs

# torch task -> (dm_control domain, task, function copying our physics [P] into dm_control's)
_TWINS = {
    "cartpole_balance": ("cartpole", "balance"),
    "cartpole_swingup": ("cartpole", "swingup"),
    "pendulum_swingup": ("pendulum", "swingup"),
    "reacher": ("reacher", "easy"),
}


def _dm_frame(name: str, physics: np.ndarray, size: int) -> np.ndarray:
    """dm_control's fixed-camera frame ``[H, W, 3]`` of torch physics state ``physics [P]``."""
    from dm_control import suite

    domain, task = _TWINS[name]
    env = suite.load(domain, task, task_kwargs={"random": 0})
    env.reset()
    nq = env.physics.model.nq
    with env.physics.reset_context():
        env.physics.data.qpos[:] = physics[:nq]
        if domain == "reacher":
            env.physics.named.model.geom_pos["target", :2] = physics[6:8]
    return env.physics.render(size, size, camera_id=0)


def frames(
    name: str, steps: tuple[int, ...], size: int, seed: int = 0, **options
) -> tuple[list[np.ndarray], np.ndarray]:
    """Torch frames ``[H, W, 3]`` of task ``name`` at the given step counts, and the first physics state."""
    env = envs.make(f"torch/{name}", num_envs=1, seed=seed, image_size=size, **options)
    td = env.reset()
    first = td["physics"][0].numpy()
    generator = torch.Generator().manual_seed(seed)
    out, action = [], torch.zeros(1, env.action_spec.shape[-1])
    for step in range(max(steps) + 1):
        if step in steps:
            out.append(td["pixels"][0, -3:].permute(1, 2, 0).numpy())
        if step % 10 == 0:  # piecewise-constant random actions move the bodies visibly
            action = torch.rand(1, env.action_spec.shape[-1], generator=generator) * 2 - 1
        td = env.step(td.set("action", action))["next"]
    return out, first


DISTRACTIONS = {
    "none": {},
    "color 1": {"color": 1.0},
    "background 1": {"background": 1.0},
    "camera 1": {"camera": 1.0},
    "all 0.5": {"color": 0.5, "background": 0.5, "camera": 0.5},
    "background 1, held out": {"background": 1.0, "heldout": True},
}
"""Rows of the ``--distractions`` figure: label -> the ``distraction`` option."""


def distraction_grid(out: str, size: int) -> None:
    """One row per :data:`DISTRACTIONS` setting, one column per task, at step 20 of the same rollout."""
    import matplotlib.pyplot as plt

    names = [n.split("/", 1)[1] for n in envs.list_envs("torch")]
    fig, axes = plt.subplots(len(DISTRACTIONS), len(names), figsize=(2 * len(names), 2.1 * len(DISTRACTIONS)))
    for row, (label, spec) in zip(axes, DISTRACTIONS.items()):
        for ax, name in zip(row, names):
            image = frames(name, (20,), size, seed=1, **({"distraction": spec} if spec else {}))[0][0]
            ax.imshow(image)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(label, fontsize=8)
    for ax, name in zip(axes[0], names):
        ax.set_title(name, fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=None)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--distractions", action="store_true", help="the distraction grid instead")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if args.distractions:
        distraction_grid(args.out or "docs/figures/distractions.png", args.image_size)
        return
    args.out = args.out or "docs/torch_envs_frames.png"

    steps = (0, 20, 40, 60, 80)
    names = envs.list_envs("torch")
    fig, axes = plt.subplots(len(names), len(steps) + 1, figsize=(2 * (len(steps) + 1), 2.1 * len(names)))
    for row, full in zip(axes, names):
        name = full.split("/", 1)[1]
        images, first = frames(name, steps, args.image_size)
        row[0].imshow(_dm_frame(name, first, args.image_size) if name in _TWINS else np.zeros_like(images[0]))
        row[0].set_title("dm_control" if name in _TWINS else "(no dm twin)", fontsize=8)
        row[0].set_ylabel(name, fontsize=8)
        for ax, image, step in zip(row[1:], images, steps):
            ax.imshow(image)
            ax.set_title(f"torch, step {step}", fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
