"""What a learner reads off the environment: its action space and the observation it sees."""

from __future__ import annotations

import torch
from omegaconf import DictConfig


def action_space(cfg: DictConfig, env, learner: str) -> tuple[bool, int]:
    """``(discrete, A)``: the number of actions, or the size of a continuous action bounded in ``[-1, 1]``
    (anything else raises ``ValueError`` naming ``learner``)."""
    spec = env.action_spec
    if not spec.dtype.is_floating_point:
        return True, int(spec.space.n)
    low, high = spec.space.low, spec.space.high
    if not (torch.all(low == -1) and torch.all(high == 1)):
        raise ValueError(
            f"{cfg.env.name}: agent={learner} needs actions bounded in [-1, 1], got [{low}, {high}]"
        )
    return False, int(spec.shape[-1])


def observation_key(cfg: DictConfig, env) -> str:
    """``pixels`` when ``env.from_pixels`` else ``state``; the env must provide it."""
    obs_key = "pixels" if cfg.env.from_pixels else "state"
    if obs_key not in env.observation_spec.keys():
        raise ValueError(
            f"{cfg.env.name} has no {obs_key!r} observation (env.from_pixels={cfg.env.from_pixels}); "
            f"it has {sorted(env.observation_spec.keys())}"
        )
    return obs_key
