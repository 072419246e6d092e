"""Losses: pure functions returning ``(loss, metrics)``."""

from jepa_agents.losses.world_model import jepa_loss

__all__ = ["jepa_loss"]
