"""Config composition (Hydra) and validation against typed schemas; the run-level schema sections."""

from jepa_agents.config.errors import ConfigError
from jepa_agents.config.load import RootSchema, compose, config_dir, expand_sweeps, validate
from jepa_agents.config.schema import Config

__all__ = ["Config", "ConfigError", "RootSchema", "compose", "config_dir", "expand_sweeps", "validate"]
