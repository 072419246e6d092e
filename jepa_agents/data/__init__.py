"""Data stores: the sequence replay buffer of off-policy learners, the rollout buffer of on-policy ones,
n-step returns, and offline datasets."""

from jepa_agents.data.nstep import nstep_returns
from jepa_agents.data.replay import Replay
from jepa_agents.data.rollout import RolloutBuffer

__all__ = ["Replay", "RolloutBuffer", "nstep_returns"]
