"""Schema of the ``world_model`` config group."""

from __future__ import annotations

from dataclasses import dataclass, field

from jepa_agents.infra.precision import PRECISIONS

WORLD_MODELS = ("jepa", "seq_jepa", "none", "simulator")
TARGETS = ("online", "stopgrad", "ema")
PRED_LOSSES = ("mse", "cosine")
PREDICTORS = ("mlp", "residual")
EMBED_NORMS = ("batch", "none")


@dataclass
class WorldModelConfig:
    """Latent-predictive (JEPA) world model and its training loss (``model.loss``)."""

    name: str = "jepa"
    """World model: ``jepa`` (K-step action-conditioned latent predictor), ``seq_jepa`` (transformer
    aggregator over past views and actions, for partially observed tasks), ``none`` (no world model:
    the agent trains its encoder through its own losses only) or ``simulator`` (``agent=imagination`` on
    a ``torch/`` task: the task's own physics as the model, :mod:`jepa_agents.world_models.simulator`)."""

    latent_dim: int = 256
    """Embedding size ``D`` of the encoder and the predictor."""

    encoder: str = "auto"
    """Encoder kind, see ``jepa_agents.nn.encoders``: ``auto|small_cnn|nature|drq|impala|mlp``."""

    encoder_channels: list[int] = field(default_factory=list)
    """Conv channel counts for ``small_cnn`` (4) or ``impala`` (per stage); empty: the kind's default."""

    augment_pad: int = 4
    """Random-shift padding in pixels for image observations during world-model training (0: off)."""

    horizon: int = 5
    """Prediction horizon ``K``: the loss uses sequences of ``K + 1`` observations and ``K`` actions."""

    predictor: str = "residual"
    """Latent transition: ``mlp`` (``z' = f([z; a])``) or ``residual`` (``z' = z + f([z; a])``)."""

    predictor_hidden: list[int] = field(default_factory=lambda: [512, 512])
    """Hidden sizes of the predictor MLP (LayerNorm + ELU)."""

    regularizer: str = "sigreg"
    """Anti-collapse regularizer on the encoder outputs: ``sigreg|vicreg|none``."""

    reg_weight: float = 0.1
    """Weight ``λ`` of the regularizer: ``loss = pred + λ·reg + heads``. SIGReg's statistic is an
    N-sample test (its departure from the Gaussian value ≈1.06 grows linearly with the batch ``N`` it
    sees), so ``λ·N`` sets its strength against the element-mean prediction error: 0.1 at N = 64
    sequences gives λ·N = 6.4, LeWorldModel's 0.09 at N = 128 gives 11.5. Scale λ by 1/N when changing
    the batch to keep the balance."""

    num_slices: int = 512
    """SIGReg: random directions ``M`` per call (LeJEPA and LeWorldModel use 1,024; see
    docs/world_model.md for the cost)."""

    projector_hidden: list[int] = field(default_factory=list)
    """Hidden sizes of a LeJEPA-style projector ``g`` (Linear -> BatchNorm -> ReLU per hidden layer, then a
    linear output of size ``latent_dim``) between the embedding and the regularizer: ``R(g(z))`` instead
    of ``R(z)``, so the Gaussian prior shapes ``g(z)`` and the embedding the predictor and the agent use
    stays free of it. Empty: no projector, the regularizer sees ``z``."""

    embed_norm: str = "batch"
    """Normalization of the encoder output, what the predictor, the targets, the regularizer and the
    agent see: ``batch`` (BatchNorm without affine parameters: per-dim zero mean and unit variance over
    the training batch, running statistics when the model is in eval mode, as when acting) or ``none``
    (the raw linear output). At PyTorch's default init the raw pixel embedding has per-dim std ≈ 0.003,
    where the Epps-Pulley statistic is flat and SIGReg's gradient vanishes; see docs/world_model.md."""

    precision: str = "auto"
    """Image encoder compute precision: ``fp32``, ``bf16`` (autocast on CPU and CUDA; the embedding is
    returned in float32) or ``auto``: bf16 where the run's device computes it natively (CUDA with bf16,
    CPUs with AVX512-BF16 or AMX), else fp32 (emulated bf16 is 6x slower than fp32 on an AVX2 CPU).
    ``jepa-agents train`` resolves ``auto`` when the run starts, prints the choice and saves the resolved
    value in the run's ``config.yaml``. State encoders always run in float32."""

    regularize_predictions: bool = True
    """Also regularize the predicted embeddings: ``R = (R(z) + R(ẑ)) / 2``. Measured on the probe
    benchmark (docs/world_model.md, seed 1, 1,500 updates): SIGReg probe R² 0.535 -> 0.618 (VICReg 0.623
    -> 0.619), so predictions that stay spread out make a better encoder; costs one more regularizer
    call per update."""

    target: str = "online"
    """Prediction targets: ``online`` (encoder outputs with gradients; the LeJEPA default),
    ``stopgrad`` (detached encoder outputs) or ``ema`` (an EMA copy of the encoder, SPR/BYOL-style)."""

    ema_tau: float = 0.01
    """EMA target step: ``target <- (1 - τ)·target + τ·online`` per ``update_target()``."""

    pred_loss: str = "mse"
    """Prediction error: ``mse`` (squared error averaged over dims) or ``cosine`` (``1 - cos``)."""

    reward_weight: float = 0.0
    """Weight of the reward head loss (MSE of ``r(z_k, a_k)`` on predicted latents); 0: no head."""

    continue_weight: float = 0.0
    """Weight of the continuation head (binary cross-entropy of ``c(ẑ_{k+1})`` against ``1 - terminated_k``
    on predicted latents; what imagination discounts by); 0: no head."""
    value_weight: float = 0.0
    """Weight of the value head loss (MSE of ``v(z)`` against given value targets); 0: no head."""

    inverse_weight: float = 0.0
    """Weight of the inverse-dynamics head ``a_k ≈ g(z_k, z_{k+1})`` (MSE or cross-entropy); 0: no head."""

    head_hidden: list[int] = field(default_factory=lambda: [256])
    """Hidden sizes of the reward/continuation/value/inverse heads."""

    seq_layers: int = 2
    """seq-JEPA: transformer layers of the aggregator."""

    seq_heads: int = 4
    """seq-JEPA: attention heads (must divide ``latent_dim``)."""

    seq_context: int = 8
    """seq-JEPA: longest context (number of views) the aggregator sees; sizes its position table."""

    def __post_init__(self) -> None:
        choices = {
            "name": WORLD_MODELS,
            "target": TARGETS,
            "pred_loss": PRED_LOSSES,
            "predictor": PREDICTORS,
            "regularizer": ("sigreg", "vicreg", "none"),
            "embed_norm": EMBED_NORMS,
            "precision": PRECISIONS,
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"world_model.{key}={getattr(self, key)!r}; choose one of {allowed}")
        if self.latent_dim < 1 or self.horizon < 1 or self.num_slices < 1:
            raise ValueError("world_model.latent_dim, horizon and num_slices must be >= 1")
        if not 0.0 < self.ema_tau <= 1.0:
            raise ValueError(f"world_model.ema_tau must be in (0, 1], got {self.ema_tau}")
        weights = (
            self.reg_weight,
            self.reward_weight,
            self.continue_weight,
            self.value_weight,
            self.inverse_weight,
        )
        if min(weights) < 0:
            raise ValueError("world_model loss weights must be >= 0")
        if self.name == "seq_jepa" and self.latent_dim % self.seq_heads:
            raise ValueError(
                f"world_model.seq_heads={self.seq_heads} must divide latent_dim={self.latent_dim}"
            )
