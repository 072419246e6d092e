"""Schema of the PPO learner (``agent=ppo``): on-policy, for massively vectorized environments."""

from __future__ import annotations

from dataclasses import dataclass, field

from jepa_agents.config.checks import check_ranges

ACTION_SQUASHES = ("clip", "tanh")


@dataclass
class PPOConfig:
    """PPO (Schulman et al. 2017) on the JEPA encoder, trained by ``jepa_agents.train.on_policy``.

    Every iteration collects ``rollout_steps`` agent steps on each of the ``env.num_envs`` copies
    (``T x N`` transitions), computes GAE advantages, then runs ``epochs`` passes of ``minibatches``
    clipped-surrogate updates over them. The encoder is shared by the policy and the value head and is
    also trained by ``wm_weight`` times the world-model loss (``model.loss``) on
    sub-sequences of ``world_model.horizon + 1`` steps of the rollout that stay inside one episode.
    ``train.seed_env_steps`` and the replay settings do not apply to this learner.
    """

    name: str = "ppo"
    """Learner name (its key in ``jepa_agents.agents.LEARNERS``)."""
    rollout_steps: int = 32
    """Agent steps ``T`` collected on every copy per iteration (a rollout is ``T x num_envs`` steps)."""
    epochs: int = 4
    """Passes over each rollout."""
    minibatches: int = 4
    """Minibatches per pass; each has ``T·N / minibatches`` transitions (one gradient step each)."""
    clip_ratio: float = 0.2
    """``ε`` of the clipped surrogate ``min(ρA, clip(ρ, 1-ε, 1+ε)A)``, ``ρ = π(a|s) / π_old(a|s)``."""
    value_clip: float = 0.0
    """Clip the value change to ``±value_clip`` around the collection-time value (PPO2 style); 0: off."""
    gamma: float = 0.99
    """Discount ``γ`` per agent step."""
    gae_lambda: float = 0.95
    """``λ`` of generalized advantage estimation ``A_t = Σ_l (γλ)^l δ_{t+l}``."""
    lr: float = 3e-4
    """Adam learning rate of every parameter (encoder, world model, policy, value head)."""
    adam_eps: float = 1e-5
    """Adam ``ε``."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus ``-c_H·H[π]`` in the loss; 0: no bonus (entropy still logged)."""
    value_coef: float = 0.5
    """Weight ``c_V`` of the value loss ``½(V - R)²``."""
    max_grad_norm: float = 0.5
    """Clip the global gradient norm of every step to this value; 0: no clipping."""
    target_kl: float = 0.0
    """Stop the epochs of an iteration early once the approximate KL of a minibatch exceeds this; 0: off."""
    normalize_advantages: bool = True
    """Standardize advantages per minibatch (zero mean, unit variance)."""
    normalize_obs: bool = True
    """Standardize state observations by running mean/variance (clipped to ±10); must be ``false`` for
    images (the encoder scales pixels itself)."""
    normalize_rewards: bool = True
    """Divide rewards by the running standard deviation of the discounted return (Engstrom et al. 2020)."""
    policy_hidden: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden sizes of the policy MLP on the latent ``z``."""
    value_hidden: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden sizes of the value MLP on the latent ``z``."""
    activation: str = "tanh"
    """Activation of the policy and value MLPs: ``relu|elu|gelu|silu|mish|tanh``."""
    action_squash: str = "clip"
    """Continuous actions: the Gaussian sample ``u`` is sent as ``clip(u, -1, 1)`` or ``tanh(u)``; the
    log-probability is that of ``u`` (the squashing Jacobian cancels in the ratio)."""
    init_log_std: float = 0.0
    """Initial log standard deviation of the (state-independent) Gaussian policy."""
    wm_weight: float = 1.0
    """Weight of the world-model loss on the shared encoder; 0: off. Each gradient step adds it on
    ``wm_batch_size`` sequences of ``world_model.horizon + 1`` steps sampled from the rollout."""
    wm_batch_size: int = 256
    """Sequences per gradient step for the world-model loss."""

    def __post_init__(self) -> None:
        checks = {
            "rollout_steps": self.rollout_steps >= 1,
            "epochs": self.epochs >= 1,
            "minibatches": self.minibatches >= 1,
            "clip_ratio": self.clip_ratio > 0,
            "value_clip": self.value_clip >= 0,
            "gamma": 0.0 <= self.gamma <= 1.0,
            "gae_lambda": 0.0 <= self.gae_lambda <= 1.0,
            "lr": self.lr > 0,
            "adam_eps": self.adam_eps > 0,
            "entropy_coef": self.entropy_coef >= 0,
            "value_coef": self.value_coef > 0,
            "max_grad_norm": self.max_grad_norm >= 0,
            "target_kl": self.target_kl >= 0,
            "wm_weight": self.wm_weight >= 0,
            "wm_batch_size": self.wm_batch_size >= 1,
        }
        check_ranges("agent", checks, self)
        if self.action_squash not in ACTION_SQUASHES:
            raise ValueError(f"agent.action_squash={self.action_squash!r}; choose one of {ACTION_SQUASHES}")
