"""Schemas of the SAC learners' ``agent`` config sections (``LEARNERS[name].config`` in
:mod:`jepa_agents.agents`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from jepa_agents.config.checks import check_ranges


@dataclass
class _SACCommon:
    """Settings shared by the SAC learners.

    The encoder is the world model's; it is trained by the critic loss plus ``wm_weight`` times the
    world-model loss. Random actions at the start, the replay size and the NaN limit are ``train.*``
    settings; image augmentation is ``world_model.augment_pad``.
    """

    name: str
    """Learner name (its key in ``jepa_agents.agents.LEARNERS``)."""
    lr_actor: float = 3e-4
    """Adam learning rate of the actor."""
    lr_critic: float = 3e-4
    """Adam learning rate of the twin critics (and their trunk)."""
    lr_encoder: float = 3e-4
    """Adam learning rate of the world model (encoder, predictor, heads)."""
    lr_temperature: float = 3e-4
    """Adam learning rate of ``log α``."""
    batch_size: int = 256
    """Slices per gradient update, each of ``K + n_step`` consecutive steps (``K`` transitions, each with
    its full n-step return; ``K`` is the world model's horizon, 1 without a world model)."""
    gamma: float = 0.99
    """Discount ``γ`` per agent step."""
    n_step: int = 3
    """Rewards in the TD target ``Σ_{j<n} γ^j r_{t+j} + γ^n V(o_{t+n})`` (fewer at slice/episode ends)."""
    tau: float = 0.01
    """Polyak step of the target critics: ``θ̄ <- (1 - τ)·θ̄ + τ·θ`` after every update."""
    utd: float = 1.0
    """Update-to-data ratio: gradient updates per transition collected (one agent step of one copy)."""
    update_every: int = 1
    """Run the due updates every so many ``update`` calls (vectorized env steps); ``utd`` stays the ratio."""
    actor_update_every: int = 1
    """Update the actor and the temperature every so many gradient updates (the critic every update)."""
    init_temperature: float = 0.1
    """Initial entropy temperature ``α``."""
    target_entropy: float | None = None
    """Target policy entropy ``H̄`` of the temperature loss; ``None``: the learner's default."""
    learn_temperature: bool = True
    """Adapt ``α`` towards ``target_entropy``; ``False`` keeps ``init_temperature``."""
    feature_dim: int = 50
    """Feature dim of the actor's and the critic's trunk ``tanh(LayerNorm(Linear(z)))``; 0: act on ``z``."""
    actor_hidden: list[int] = field(default_factory=lambda: [512, 512])
    """Hidden sizes of the actor MLP (ReLU)."""
    critic_hidden: list[int] = field(default_factory=lambda: [512, 512])
    """Hidden sizes of each critic MLP (ReLU)."""
    wm_weight: float = 1.0
    """Weight of the world-model loss (K-step latent prediction + λ·SIGReg) in the encoder's loss; 0: off."""
    grad_clip: float = 0.0
    """Clip the global gradient norm of every update to this value; 0: no clipping."""

    def __post_init__(self) -> None:
        checks = {
            "batch_size": self.batch_size >= 1,
            "n_step": self.n_step >= 1,
            "gamma": 0.0 <= self.gamma <= 1.0,
            "tau": 0.0 < self.tau <= 1.0,
            "utd": self.utd > 0,
            "update_every": self.update_every >= 1,
            "actor_update_every": self.actor_update_every >= 1,
            "init_temperature": self.init_temperature > 0,
            "feature_dim": self.feature_dim >= 0,
            "wm_weight": self.wm_weight >= 0,
            "grad_clip": self.grad_clip >= 0,
        }
        check_ranges("agent", checks, self)


@dataclass
class SACConfig(_SACCommon):
    """SAC on the JEPA latent for continuous actions in ``[-1, 1]^A`` (tanh-Gaussian actor, DrQ-v2 style).

    ``target_entropy=None`` means ``H̄ = -A``.
    """

    name: str = "sac"
    """Learner name (its key in ``jepa_agents.agents.LEARNERS``)."""
    log_std_min: float = -5.0
    """Lower bound of the actor's pre-tanh log standard deviation."""
    log_std_max: float = 2.0
    """Upper bound of the actor's pre-tanh log standard deviation."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.log_std_min < self.log_std_max:
            raise ValueError(f"agent.log_std_min={self.log_std_min} must be < log_std_max={self.log_std_max}")


@dataclass
class DiscreteSACConfig(_SACCommon):
    """Discrete SAC (Christodoulou 2019) on the JEPA latent, for Atari-100k.

    ``target_entropy=None`` means ``H̄ = target_entropy_scale·log A``.
    """

    name: str = "discrete_sac"
    """Learner name (its key in ``jepa_agents.agents.LEARNERS``)."""
    batch_size: int = 64
    """Slices per gradient update, each of ``K + n_step`` consecutive steps (``K`` transitions, each with
    its full n-step return; ``K`` is the world model's horizon, 1 without a world model)."""
    n_step: int = 10
    """Rewards summed in the TD target (fewer at slice/episode ends or at a terminal step)."""
    init_temperature: float = 0.01
    """Initial entropy temperature ``α``."""
    target_entropy_scale: float = 0.5
    """Target entropy ``H̄ = scale·log A`` when ``target_entropy`` is ``None`` (``A`` actions)."""
    feature_dim: int = 0
    """Feature dim of the actor's and the critic's trunk; 0: act on ``z``."""
    clip_reward: bool = True
    """Clip rewards to ``[-1, 1]`` in the TD targets (Atari convention; scores are logged unclipped)."""
    life_loss_terminal: bool = True
    """Cut the bootstrap at a lost life (``life_loss`` key) as if the episode had terminated."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.target_entropy_scale <= 1.0:
            raise ValueError(f"agent.target_entropy_scale={self.target_entropy_scale} must be in (0, 1]")
