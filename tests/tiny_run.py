"""The smallest `jepa-agents train` run the tests use (SAC+JEPA from states on cart-pole balance, tiny
networks, one thread): ``tiny(*overrides)`` with overrides replacing entries of the same key."""

from __future__ import annotations

TINY = [
    "env=torch/cartpole_balance",
    "env.from_pixels=false",
    "train.total_env_steps=400",
    "train.seed_env_steps=200",
    "train.checkpoint_every=400",
    "eval.every=0",
    "eval.episodes=1",
    "eval.video=false",
    "logging.progress_bar=false",
    "logging.tensorboard=false",
    "agent.batch_size=8",
    "agent.actor_hidden=[16]",
    "agent.critic_hidden=[16]",
    "agent.feature_dim=8",
    "world_model.latent_dim=8",
    "world_model.predictor_hidden=[16]",
    "world_model.num_slices=8",
    "device=cpu",
    "num_threads=1",
]


def tiny(*overrides: str) -> list[str]:
    """:data:`TINY` with ``overrides`` (``key=value``) replacing the entries of the same keys."""
    keys = {o.split("=", 1)[0] for o in overrides}
    return [o for o in TINY if o.split("=", 1)[0] not in keys] + list(overrides)
