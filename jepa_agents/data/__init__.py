"""Data stores: the sequence replay buffer of off-policy learners (``make_replay``) and offline datasets."""

from jepa_agents.data.replay import Replay, make_replay, nstep_returns

__all__ = ["Replay", "make_replay", "nstep_returns"]
