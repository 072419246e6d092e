"""Latent-predictive (JEPA) world models: ``make_world_model(cfg, obs_shape, action_dim, discrete)``."""

from __future__ import annotations

from collections.abc import Sequence

from jepa_agents.world_models.base import EncoderStack, LatentWorldModel
from jepa_agents.world_models.config import WorldModelConfig
from jepa_agents.world_models.jepa import JEPAWorldModel
from jepa_agents.world_models.seq_jepa import SeqJEPAWorldModel

__all__ = [
    "EncoderStack",
    "JEPAWorldModel",
    "LatentWorldModel",
    "SeqJEPAWorldModel",
    "WorldModelConfig",
    "make_world_model",
]


def make_world_model(
    cfg: WorldModelConfig, obs_shape: Sequence[int], action_dim: int, discrete: bool
) -> LatentWorldModel | None:
    """The model named by ``cfg.name`` (``jepa``, ``seq_jepa``), or ``None`` for ``none``."""
    if cfg.name == "none":
        return None
    if cfg.name == "simulator":
        raise ValueError(
            "world_model=simulator is the true simulator of a torch/ task and only agent=imagination "
            "imagines with it; use world_model=jepa (or none) with this learner"
        )
    cls = JEPAWorldModel if cfg.name == "jepa" else SeqJEPAWorldModel
    return cls(cfg, obs_shape, action_dim, discrete)
