"""MinAtar (Young & Tian 2019) written in torch: five Atari-like games on a 10x10 grid, N copies stepping
in one call on any device, equal step for step to the reference package ``minatar`` 1.0.15 given the
same random draws (``tests/test_minatar.py``).

``envs.make("minatar/<game>", num_envs, seed, device, **options)``; games (``NAMES``): ``asterix``,
``breakout``, ``freeway``, ``seaquest``, ``space_invaders``. Options (the reference's
defaults): ``sticky_action_prob`` (0.1), ``difficulty_ramping`` (True), ``max_episode_steps`` (0: none,
as the reference). Observation ``pixels`` uint8 ``[N, C, 10, 10]``, actions ``0..5``. See
``docs/minatar.md``.
"""

from __future__ import annotations

import importlib

import torch

NAMES: tuple[str, ...] = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")


def default_action_repeat(task: str) -> int:
    """MinAtar has no frame skip: one agent step is one game step."""
    return 1


# what the training configs pass to every family, and the only value each may take here
_FIXED = {"from_pixels": True, "image_size": 10, "frame_stack": 1, "action_repeat": 1}


def make(task: str, num_envs: int, seed: int, device: torch.device, **options):
    """``num_envs`` copies of game ``task`` (see the module docstring for ``options``)."""
    from envs.minatar.env import MinAtarEnv

    for key, value in _FIXED.items():
        given = options.pop(key, value)
        if given is not None and given != value:
            raise ValueError(
                f"minatar/{task} is observed as its 10x10 object channels, one frame per step: env.{key} "
                f"must be {value}, got {given} (the preset env=minatar/{task} sets it)"
            )
    known = {"sticky_action_prob", "difficulty_ramping", "max_episode_steps"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"minatar/{task} takes the options {sorted(known)}, not {unknown}")
    game = importlib.import_module(f"envs.minatar.{task}")
    return MinAtarEnv(game, num_envs, seed, device, **options)
