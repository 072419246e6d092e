"""Schemas of the ``collect`` and ``zero_shot`` roots (``configs/collect.yaml``, ``configs/zero_shot.yaml``).

Presets: ``configs/zs_explorer/`` (``explorer``), ``configs/zs_agent/`` (``agent``: TD-JEPA with SIGReg or
orthonormality, FB; ``*_paper`` are the paper sizes) and ``configs/zs_train/`` (``train``: ``cpu`` or
``paper``). Every field has a docstring; a key that is not a field is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf

from jepa_agents.config.checks import check_ranges
from jepa_agents.config.load import RootSchema
from jepa_agents.config.schema import LoggingConfig, RunConfig

REGULARIZERS = ("orthonormality", "sigreg", "none")
NETWORKS = ("flat", "two_stream")
"""Layouts of the zero-shot predictors and policy (:mod:`jepa_agents.zero_shot.two_stream`)."""


@dataclass
class ZeroShotEnvConfig:
    """The domain: where data is collected and zero-shot policies are evaluated."""

    name: str = "torch/point_mass_maze"
    """Registry name ``<family>/<task>``; its family must support ``relabel`` (``torch/point_mass_maze``,
    ``dmc/walker_walk``, ``dmc/cheetah_run``, ``dmc/quadruped_walk``,
    ``dmc/point_mass_maze_reach_top_left``)."""
    from_pixels: bool = False
    """Also render ``pixels`` (stored in the dataset next to ``state``)."""
    image_size: int = 64
    """Height and width of rendered frames."""
    action_repeat: int = 1
    """Simulator steps per agent step; 1 makes relabeled rewards equal the online ones."""
    options: dict[str, Any] = field(default_factory=dict)
    """Extra family options for ``envs.make`` (``frame_stack``, ``episode_length``, ...)."""


@dataclass
class ExplorerConfig:
    """How reward-free data is collected: uniform random actions or RND (random network distillation)
    with a TD3 learner maximizing the intrinsic reward ``|f(s') - f̄(s')|²`` (``f̄`` a frozen random MLP)."""

    name: str = "rnd"
    """``random`` or ``rnd``."""
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden sizes of the actor, critics and RND networks."""
    rnd_dim: int = 64
    """Output size of the RND target and predictor."""
    lr: float = 3e-4
    """Adam learning rate of actor, critics and RND predictor."""
    batch_size: int = 256
    """Transitions per update."""
    discount: float = 0.99
    """Discount of the intrinsic return."""
    tau: float = 0.01
    """Polyak step of the target critics and actor."""
    action_noise: float = 0.2
    """Std of the Gaussian exploration noise on the actor's actions."""
    updates_per_step: int = 1
    """Gradient updates per vectorized env step (each step adds ``num_envs`` transitions)."""
    warmup_transitions: int = 5_000
    """Uniform random actions (and no updates) for the first transitions."""
    replay_capacity: int = 1_000_000
    """Transitions the explorer's replay keeps (in memory)."""

    def __post_init__(self) -> None:
        if self.name not in ("random", "rnd"):
            raise ValueError(f"explorer.name={self.name!r}; choose random or rnd")
        checks = {
            "rnd_dim": self.rnd_dim >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "discount": 0 <= self.discount < 1,
            "tau": 0 < self.tau <= 1,
            "action_noise": self.action_noise >= 0,
            "updates_per_step": self.updates_per_step >= 0,
            "warmup_transitions": self.warmup_transitions >= 0,
            "replay_capacity": self.replay_capacity >= 1,
        }
        check_ranges("explorer", checks, self)


@dataclass
class CollectConfig:
    """Root of ``jepa-agents collect``: write a reward-free dataset."""

    env: ZeroShotEnvConfig = field(default_factory=ZeroShotEnvConfig)
    """The domain to explore."""
    explorer: ExplorerConfig = field(default_factory=ExplorerConfig)
    """The exploration policy (group ``zs_explorer``)."""
    dataset: str = ""
    """Output directory; empty: ``datasets/<env>/<explorer>_seed<seed>``."""
    num_transitions: int = 100_000
    """Stop once the dataset holds this many transitions (counting those already there with ``append``)."""
    num_envs: int = 8
    """Parallel environment copies."""
    start: str = "reset"
    """Where episodes start: ``reset`` (the task's own distribution; the maze: the bottom-left room) or
    ``uniform`` (torch-native maze and cart-pole: broad start states over the whole state space, so the
    data covers every task; see ``envs.torch_control``)."""
    append: bool = False
    """Continue an existing dataset: episodes keep their numbers, the explorer resumes from its checkpoint."""
    checkpoint_every: int = 20_000
    """Save the explorer (networks, optimizers, replay, RNG) every so many transitions."""
    seed: int = 0
    """Seed of the environments and of the explorer."""
    device: str = "auto"
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    num_threads: int = 0
    """``torch.set_num_threads`` value; 0 keeps torch's default."""
    progress_bar: bool = True
    """Show a progress bar on stderr."""

    def __post_init__(self) -> None:
        checks = {
            "num_transitions": self.num_transitions >= 1,
            "num_envs": self.num_envs >= 1,
            "checkpoint_every": self.checkpoint_every >= 1,
            "start": self.start in ("reset", "uniform"),
        }
        check_ranges("collect", checks, self)


@dataclass
class ZeroShotAgentConfig:
    """A zero-shot learner: TD-JEPA (``name: td_jepa``) or forward-backward (``name: fb``)."""

    name: str = "td_jepa"
    """``td_jepa`` or ``fb``."""
    obs_key: str = "state"
    """Observation the model reads: ``state`` or ``pixels`` (the dataset must hold it)."""
    z_dim: int = 50
    """Task-space size ``d`` (ψ for TD-JEPA, ``B`` for FB); ``z`` lives on the sphere of radius ``√d``."""
    phi_dim: int = 50
    """Size of the state encoder ``φ`` (TD-JEPA) / of the forward-side encoder ``e`` (FB)."""
    encoder_hidden: list[int] = field(default_factory=lambda: [128, 128])
    """Hidden sizes of the encoders' MLP heads (LayerNorm + ReLU)."""
    phi_encoder_hidden: list[int] | None = None
    """Hidden sizes of the policy-side encoder (TD-JEPA's ``φ``, FB's ``e``); ``[]`` makes it linear (the
    reference's DMC setting); null: ``encoder_hidden``."""
    encoder_norm: bool = True
    """TD-JEPA: project ``φ`` and ψ onto the sphere of radius ``√dim`` (as the paper, and the SIGReg preset:
    unnormalized embeddings put the maximum of a goal's reward ``ψ(s)ᵀz`` beyond the goal, docs/zero_shot.md).
    FB always normalizes ``B``."""
    cnn: str = "small_cnn"
    """Conv trunk for pixels (``jepa_agents.nn.make_encoder`` kinds)."""
    cnn_dim: int = 256
    """Output size of the conv trunk."""
    augment_pad: int = 2
    """Pixels: every training observation and next observation is shifted by an independent random
    offset in ``[-augment_pad, augment_pad]²`` (DrQ's random shift; the TD-JEPA reference: 2 at 64x64);
    0 turns it off. Evaluation and inference see the frames unshifted. Ignored for states."""
    predictor_hidden: list[int] = field(default_factory=lambda: [128, 128])
    """Hidden sizes of each predictor ``T_φ``, ``T_ψ`` / forward map ``F`` member."""
    num_predictors: int = 2
    """Ensemble members per predictor (targets and Q average over them)."""
    actor_hidden: list[int] = field(default_factory=lambda: [128, 128])
    """Hidden sizes of the policy ``π(φ(s), z)``."""
    actor_std: float = 0.2
    """Std of the policy's Gaussian noise in TD targets and the actor loss."""
    actor_clip: float = 0.3
    """Clip of that noise."""
    actor_pessimism: float = 0.0
    """The actor maximizes ``mean_k Q_k - actor_pessimism · (mean gap between ensemble members)``: 0 the
    ensemble mean (td_jepa_public, both methods), 0.5 the minimum of two members (metamotivo's FB)."""
    network: str = "flat"
    """Layout of the predictors and the policy: ``flat`` (one MLP on ``[x, a, z]``, resp. ``[x, z]``; the
    layout of runs made before this setting) or ``two_stream`` (the reference code's: ``[x, a]`` and
    ``[x, z]`` embedded apart, then joined; :mod:`jepa_agents.zero_shot.two_stream`)."""
    regularizer: str = "orthonormality"
    """Anti-collapse term on the encoders (TD-JEPA: on φ and ψ; FB: on ``B``, orthonormality only):
    ``orthonormality`` (the paper's), ``sigreg`` (SIGReg) or ``none``."""
    reg_coef: float = 1.0
    """Weight of the regularizer (per encoder)."""
    sigreg_slices: int = 64
    """Random directions of SIGReg per call."""
    lr: float = 3e-4
    """Adam learning rate of encoders and predictors."""
    lr_actor: float = 3e-4
    """Adam learning rate of the policy."""
    tau_encoder: float = 0.01
    """Polyak step of the target encoders (ψ⁻, φ⁻; FB: ``B⁻``)."""
    tau_predictor: float = 0.01
    """Polyak step of the target predictors (FB: ``F⁻`` and ``e⁻``)."""
    discount: float = 0.98
    """Discount ``γ`` of the successor features / measures."""
    batch_size: int = 256
    """Transitions per update."""
    train_goal_ratio: float = 0.5
    """Fraction of training ``z`` taken from embedded dataset states instead of the uniform sphere."""

    def __post_init__(self) -> None:
        if self.name not in ("td_jepa", "fb"):
            raise ValueError(f"agent.name={self.name!r}; choose td_jepa or fb")
        if self.regularizer not in REGULARIZERS:
            raise ValueError(f"agent.regularizer={self.regularizer!r}; choose one of {REGULARIZERS}")
        if self.network not in NETWORKS:
            raise ValueError(f"agent.network={self.network!r}; choose one of {NETWORKS}")
        if self.name == "fb" and self.regularizer == "sigreg":
            raise ValueError(
                "agent.regularizer=sigreg is for TD-JEPA; FB keeps B on the sphere (orthonormality)"
            )
        checks = {
            "obs_key": self.obs_key in ("state", "pixels"),
            "z_dim": self.z_dim >= 1,
            "phi_dim": self.phi_dim >= 1,
            "num_predictors": self.num_predictors >= 1,
            "actor_std": self.actor_std >= 0,
            "actor_pessimism": self.actor_pessimism >= 0,
            "reg_coef": self.reg_coef >= 0,
            "lr": self.lr > 0,
            "lr_actor": self.lr_actor > 0,
            "tau_encoder": 0 < self.tau_encoder <= 1,
            "tau_predictor": 0 < self.tau_predictor <= 1,
            "discount": 0 <= self.discount < 1,
            "batch_size": self.batch_size >= 2,
            "train_goal_ratio": 0 <= self.train_goal_ratio <= 1,
            "sigreg_slices": self.sigreg_slices >= 1,
            "augment_pad": self.augment_pad >= 0,
        }
        check_ranges("agent", checks, self)


@dataclass
class ZeroShotTrainConfig:
    """Offline training schedule; steps count gradient updates (the x-axis of the curves)."""

    num_updates: int = 10_000
    """Gradient updates in total."""
    log_every: int = 500
    """Log training metrics every so many updates."""
    eval_every: int = 0
    """Run the zero-shot evaluation every so many updates; 0: only at the end (``eval.final``)."""
    checkpoint_every: int = 5_000
    """Write a checkpoint every so many updates (and at the end)."""
    keep_checkpoints: int = 2
    """How many most recent checkpoints to keep."""
    min_free_disk_mb: int = 200
    """Refuse to start when the run directory's disk has less free space than this."""
    sf_check_every: int = 2_000
    """Every so many updates, log the Monte-Carlo check of the successor features (``sf/ratio``: predicted
    over rolled-out value of the model's own policy, 1 when the critic has propagated the return; see
    :mod:`jepa_agents.zero_shot.successor_check`); 0: never."""
    sf_check_episodes: int = 16
    """Episodes (parallel copies, one task vector each) of that check."""
    dataset_device: str = "auto"
    """Where the dataset lives while training: ``auto`` (the training device) or ``cpu``."""

    def __post_init__(self) -> None:
        checks = {
            "num_updates": self.num_updates >= 1,
            "log_every": self.log_every >= 1,
            "eval_every": self.eval_every >= 0,
            "checkpoint_every": self.checkpoint_every >= 1,
            "sf_check_every": self.sf_check_every >= 0,
            "sf_check_episodes": self.sf_check_episodes >= 2,
        }
        check_ranges("train", checks, self)


@dataclass
class ZeroShotEvalConfig:
    """Zero-shot evaluation: per task, infer ``z`` from relabeled dataset transitions, roll out ``π_z``."""

    tasks: list[str] = field(default_factory=list)
    """Tasks to evaluate; empty: every task of the domain (``zero_shot.evaluate.domain_tasks``)."""
    episodes: int = 10
    """Episodes per task (run in parallel copies)."""
    inference_samples: int = 10_000
    """Dataset transitions relabeled to infer ``z`` per task."""
    max_episode_steps: int = 0
    """Cut episodes after so many agent steps; 0: the environment's own time limit."""
    final: bool = True
    """Evaluate at the end of training."""
    reward: str = ""
    """A reward of one's own, ``<module>:<function>``: a function from physics states ``[N, P]`` (float32)
    to rewards ``[N]``; relabeled on the dataset to infer ``z`` and scoring the rollouts, row
    ``reward:<module>:<function>``. With ``tasks`` empty only the custom rows are evaluated."""
    goal: list[float] = field(default_factory=list)
    """A goal position ``[x, y]`` (``torch/point_mass_maze``): ``z`` from the goal observation (the mass at
    rest there), scored with the goal-reaching reward around it; row ``goal(x,y)``."""

    z_inference: str = "own"
    """How ``z`` is inferred from rewards: ``own`` (the method's: TD-JEPA least squares of ``r`` on
    ``ψ(s')`` as the paper, FB ``mean_i r_i B(s'_i)``) or ``mean`` (``mean_i r_i ψ(s'_i)`` for TD-JEPA too;
    on the maze, 5 seeds, it raised TD-JEPA's mean over tasks from 136 to 494, docs/zero_shot.md). Rows
    of a TD-JEPA run evaluated with ``mean`` are labelled ``<method>+mean_z`` in ``eval.results_csv``."""
    goal_rows: bool = True
    """On goal domains (``torch/point_mass_maze``) also evaluate every built-in task with ``z`` inferred from
    its goal observation (row ``<task>@goal``, left out of the mean): a diagnostic of reward inference."""
    results_csv: str = ""
    """Also write this evaluation's per-task mean returns into this CSV shared by runs, one row per task
    with the columns ``domain,method,task,seed,updates,return`` (a re-evaluation replaces its rows; see
    :mod:`jepa_agents.zero_shot.results`); empty: only the run's own ``zero_shot.csv``."""

    def __post_init__(self) -> None:
        checks = {
            "episodes": self.episodes >= 1,
            "inference_samples": self.inference_samples >= 2,
            "max_episode_steps": self.max_episode_steps >= 0,
            "z_inference": self.z_inference in ("own", "mean"),
        }
        check_ranges("eval", checks, self)


@dataclass
class ZeroShotConfig(RunConfig):
    """Root of ``jepa-agents train-zero-shot`` / ``eval-zero-shot``."""

    env: ZeroShotEnvConfig = field(default_factory=ZeroShotEnvConfig)
    """The domain (must be the dataset's environment); evaluation episodes run in it."""
    dataset: str = ""
    """Dataset directory written by ``jepa-agents collect``."""
    agent: ZeroShotAgentConfig = field(default_factory=ZeroShotAgentConfig)
    """The learner (group ``zs_agent``)."""
    train: ZeroShotTrainConfig = field(default_factory=ZeroShotTrainConfig)
    """The schedule (group ``zs_train``)."""
    eval: ZeroShotEvalConfig = field(default_factory=ZeroShotEvalConfig)
    """Zero-shot evaluation."""
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    """Logging (``every`` is unused here: ``train.log_every`` counts updates)."""


def collect_schema(raw) -> Any:
    """Typed schema of the ``collect`` root."""
    return OmegaConf.structured(CollectConfig)


def zero_shot_schema(raw) -> Any:
    """Typed schema of the ``zero_shot`` root."""
    return OmegaConf.structured(ZeroShotConfig)


COLLECT = RootSchema("collect", collect_schema)
ZERO_SHOT = RootSchema("zero_shot", zero_shot_schema)
