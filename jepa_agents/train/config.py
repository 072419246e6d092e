"""The ``train`` root config: its typed schema (the ``agent`` section chosen by ``agent.name`` from
:data:`jepa_agents.agents.LEARNERS`), and ``compose`` / ``validate`` for it."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from jepa_agents.agents import LEARNERS
from jepa_agents.config import load
from jepa_agents.config.errors import ConfigError
from jepa_agents.config.schema import Config
from jepa_agents.world_models.config import WorldModelConfig


def train_schema(raw: DictConfig) -> DictConfig:
    """Typed schema of a ``train`` config: run settings, world model, and the learner's own section."""
    agent_name = OmegaConf.select(raw, "agent.name")
    if agent_name not in LEARNERS:
        raise ConfigError(
            f"Unknown agent.name {agent_name!r}; valid: {', '.join(sorted(LEARNERS))} "
            f"(presets: agent=<{'|'.join(load.group_choices('agent'))}>)"
        )
    schema = OmegaConf.structured(Config)
    schema.world_model = OmegaConf.structured(WorldModelConfig)
    schema.agent = OmegaConf.structured(LEARNERS[agent_name].config)
    return schema


TRAIN = load.RootSchema("train", train_schema)


def compose(overrides: list[str] | None = None) -> DictConfig:
    """``configs/train.yaml`` with Hydra ``overrides``, validated (read-only)."""
    return load.compose(overrides, TRAIN)


def validate(raw: DictConfig) -> DictConfig:
    """A raw ``train`` config (e.g. a saved ``config.yaml``) merged into its schema."""
    return load.validate(raw, TRAIN)
