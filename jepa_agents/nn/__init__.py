"""Network building blocks: MLPs, observation encoders, image augmentation."""

from jepa_agents.nn.augment import RandomShift
from jepa_agents.nn.encoders import ENCODER_KINDS, make_encoder
from jepa_agents.nn.mlp import MLP
from jepa_agents.nn.norm import EmbeddingNorm

__all__ = ["ENCODER_KINDS", "MLP", "EmbeddingNorm", "RandomShift", "make_encoder"]
