"""Schema of the imagination learner's ``agent`` config section (``agent=imagination``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from jepa_agents.config.checks import check_ranges


@dataclass
class ImaginationConfig:
    """Actor-critic in imagination on the JEPA world model (``jepa_agents.agents.imagination``).

    The world model (``world_model=imagination``: JEPA + SIGReg with reward and continuation heads) learns
    from replay; actor and critic learn from ``imagine_horizon``-step latent rollouts started from every
    replayed latent. Random actions at the start, the replay size and the NaN limit are ``train.*``.
    """

    name: str = "imagination"
    """Learner name (its key in ``jepa_agents.agents.LEARNERS``)."""
    batch_size: int = 32
    """Replay slices of ``K + 1`` steps per update (``K`` the world model's horizon); imagination starts
    from all ``batch_size·(K+1)`` of their latents."""
    imagine_horizon: int = 15
    """Imagined steps ``H`` per start latent (DreamerV3: 15)."""
    gamma: float = 0.99
    """Discount ``γ`` per agent step."""
    lam: float = 0.95
    """``λ`` of the λ-returns (DreamerV3: 0.95)."""
    actor_grad: str = "reinforce"
    """Continuous actions: ``reinforce`` (score-function gradients with the critic as baseline, no gradient
    through the world model; DreamerV3's estimator for both action kinds) or ``backprop`` (the λ-returns
    differentiated through the world model, Dreamer v1). On the true cart-pole simulator backprop stalled
    at 240 where REINFORCE kept climbing (docs/imagination.md). Discrete actions always use ``reinforce``."""
    entropy_coef: float = 3e-4
    """Entropy bonus ``η`` of the actor loss, on returns normalized by their range (DreamerV3: 3e-4)."""
    return_decay: float = 0.99
    """EMA decay of the return range ``S = Per95(R) - Per5(R)`` (returns are divided by ``max(1, S)``)."""
    critic: str = "twohot"
    """The critic's output: ``twohot`` (DreamerV3: a categorical over symlog-spaced bins trained by
    cross-entropy on two-hot targets, :mod:`jepa_agents.agents.twohot`; it learns large returns as fast
    as small ones) or ``mse`` (a scalar regressed by squared error on the raw returns)."""
    critic_bins: int = 255
    """Bins of the ``twohot`` critic, evenly spaced in symlog space over ``[-20, 20]`` (DreamerV3: 255)."""
    slow_critic_reg: float = 1.0
    """``twohot`` critic: weight of the cross-entropy towards the slow critic's value (DreamerV3's
    ``slowreg``: 1)."""
    slow_bootstrap: bool = False
    """Bootstrap the λ-returns with the slow critic ``V̄`` instead of the critic ``V`` (DreamerV3: no,
    ``slowtar: False``; the ``mse`` critic's runs before 2026-12-07 did)."""
    critic_tau: float = 0.02
    """Polyak step of the slow critic ``V̄`` (DreamerV3's rate 0.02)."""
    lr_model: float = 3e-4
    """Adam learning rate of the world model (encoder, predictor, heads)."""
    lr_actor: float = 1e-4
    """Adam learning rate of the actor."""
    lr_critic: float = 1e-4
    """Adam learning rate of the critic."""
    actor_hidden: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden sizes of the actor MLP on ``z`` (ReLU)."""
    critic_hidden: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden sizes of the critic MLP on ``z`` (ReLU)."""
    actor_dist: str = "tanh_normal"
    """Continuous actions: ``bounded_normal`` (DreamerV3's ``N(tanh(m), σ²)`` with samples clipped to
    ``[-1, 1]``, :mod:`jepa_agents.agents.bounded_normal`; σ starts near its largest value) or
    ``tanh_normal`` (SAC's tanh-squashed Gaussian, whose log-std starts midway). On the true cart-pole
    simulator the bounded normal reached 158 at 15k frames where the tanh-Gaussian reached 274-328 by
    10k (docs/imagination.md)."""
    log_std_min: float = -2.3
    """Continuous actions: smallest log-std of the policy (DreamerV3's ``minstd`` 0.1)."""
    log_std_max: float = 0.0
    """Continuous actions: largest log-std (DreamerV3's ``maxstd`` 1)."""
    utd: float = 0.5
    """Update-to-data ratio: gradient updates per transition collected (one agent step of one copy)."""
    update_every: int = 1
    """Run the due updates every so many ``update`` calls (vectorized env steps)."""
    grad_clip: float = 100.0
    """Clip each optimizer's gradient norm to this value (DreamerV3 clips too); 0: no clipping."""

    def __post_init__(self) -> None:
        checks = {
            "batch_size": self.batch_size >= 1,
            "imagine_horizon": self.imagine_horizon >= 1,
            "actor_grad": self.actor_grad in ("backprop", "reinforce"),
            "actor_dist": self.actor_dist in ("bounded_normal", "tanh_normal"),
            "gamma": 0 < self.gamma <= 1,
            "lam": 0 <= self.lam <= 1,
            "entropy_coef": self.entropy_coef >= 0,
            "return_decay": 0 <= self.return_decay < 1,
            "critic": self.critic in ("twohot", "mse"),
            "critic_bins": self.critic_bins >= 2,
            "slow_critic_reg": self.slow_critic_reg >= 0,
            "critic_tau": 0 < self.critic_tau <= 1,
            "lr_model": self.lr_model > 0,
            "lr_actor": self.lr_actor > 0,
            "lr_critic": self.lr_critic > 0,
            "log_std_min": self.log_std_min < self.log_std_max,
            "utd": self.utd > 0,
            "update_every": self.update_every >= 1,
            "grad_clip": self.grad_clip >= 0,
        }
        check_ranges("agent", checks, self)
