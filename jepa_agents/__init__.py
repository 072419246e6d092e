"""jepa_agents: reinforcement learning with latent-predictive (JEPA) world models kept from collapse by
SIGReg. See the README for the command-line entry points (``jepa-agents --help``)."""

__version__ = "0.1.0"
