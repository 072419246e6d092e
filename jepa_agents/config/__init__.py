"""Typed configuration: dataclass schemas per group, Hydra composition, strict validation."""

from jepa_agents.config.load import ConfigError, compose, config_dir, expand_sweeps
from jepa_agents.config.schema import Config

__all__ = ["Config", "ConfigError", "compose", "config_dir", "expand_sweeps"]
