"""Dataclass schemas of the config groups ``env``, ``train``, ``eval``, ``logging`` and the root.

The ``world_model`` group is validated against :class:`jepa_agents.world_models.config.WorldModelConfig`
and the ``agent`` group against ``AGENT_CONFIGS[agent.name]`` (one schema per learner); see
:mod:`jepa_agents.config.load`. Every field has a docstring; a key that is not a field is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envs.torch_control.distraction import DistractionSpec
from jepa_agents.infra.compile import COMPILE_MODES


@dataclass
class DistractionConfig:
    """Distractions of the torch-native pixel tasks (``envs/torch_control/distraction.py``): strengths in
    [0, 1], 0 = off; the task (physics, state, reward) is unchanged."""

    color: float = 0.0
    """Per-episode colour shift of the bodies and of the backdrop (up to ±0.5·s of full scale)."""
    background: float = 0.0
    """Weight of a moving procedural texture, its own per copy, blended over the sky and floor."""
    camera: float = 0.0
    """Per-episode change of view: roll up to 15°·s, shift up to 15 %·s of the frame, zoom ±15 %·s."""
    eval_heldout: bool = False
    """Evaluate on held-out backgrounds (a disjoint texture family) instead of the training ones."""

    def __post_init__(self) -> None:
        try:
            distraction_spec(self)  # the env's own range check, when the config is composed
        except ValueError as err:
            raise ValueError(f"env.{err}") from None


def distraction_spec(cfg: Any, evaluation: bool = False) -> DistractionSpec:
    """The env option of an ``env.distraction`` section (a :class:`DistractionConfig` or its DictConfig);
    ``evaluation``: held-out backgrounds when ``eval_heldout``."""
    return DistractionSpec(
        color=cfg.color,
        background=cfg.background,
        camera=cfg.camera,
        heldout=bool(evaluation and cfg.eval_heldout),
    )


@dataclass
class EnvConfig:
    """Which environment to train on, and how to observe it."""

    name: str = "torch/cartpole_swingup"
    """Registry name ``<family>/<task>`` (``jepa-agents envs`` lists them)."""
    num_envs: int = 1
    """Parallel copies used for data collection."""
    num_eval_envs: int = 1
    """Parallel copies used for evaluation episodes (separate from the training copies)."""
    from_pixels: bool = True
    """Observe rendered pixels (``pixels`` key) instead of the proprioceptive ``state``."""
    image_size: int = 64
    """Height and width of rendered frames."""
    frame_stack: int = 3
    """Consecutive frames stacked along channels."""
    action_repeat: int | None = None
    """Simulator steps per agent step (the action is repeated); unset: the task's default, filled in
    when the config is composed (DMC as in the PlaNet/DrQ benchmark: cartpole 8; cheetah, reacher,
    ball_in_cup 4; others 2; torch cartpole 8, others 2; Atari the protocol's frameskip 4)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Extra family-specific options forwarded to ``envs.make`` (unknown ones are errors there)."""
    distraction: DistractionConfig = field(default_factory=DistractionConfig)
    """Distractions in the frames (torch-native tasks from pixels only), for representation ablations."""

    def __post_init__(self) -> None:
        for key in ("num_envs", "num_eval_envs", "image_size", "frame_stack"):
            if getattr(self, key) < 1:
                raise ValueError(f"env.{key} must be >= 1, got {getattr(self, key)}")
        torch_pixels = self.name.startswith("torch/") and self.from_pixels
        if distraction_spec(self.distraction).active and not torch_pixels:
            raise ValueError(
                f"env.distraction is implemented for the torch-native tasks from pixels, not {self.name} "
                f"(from_pixels={self.from_pixels}); set its strengths to 0 or choose a torch/ task"
            )
        if self.action_repeat is not None and self.action_repeat < 1:
            raise ValueError(f"env.action_repeat must be >= 1, got {self.action_repeat}")


EVAL_POLICIES = ("auto", "mode", "sample", "epsilon")
"""``eval.policy`` choices (see :class:`EvalConfig`)."""

REPLAY_DEVICES = ("auto", "cpu", "memmap")
"""``train.replay_device`` choices (see :class:`TrainConfig`)."""


def _check_ranges(group: str, cfg: Any, **minimum: int) -> None:
    """``ValueError`` naming the first ``<group>.<key>`` below its ``minimum``."""
    for key, low in minimum.items():
        if getattr(cfg, key) < low:
            raise ValueError(f"{group}.{key} must be >= {low}, got {getattr(cfg, key)}")


@dataclass
class TrainConfig:
    """The training schedule. All step counts are environment steps (agent steps x action repeat,
    summed over parallel copies), the x-axis of every learning curve."""

    total_env_steps: int = 40_000
    """Stop after this many environment steps."""
    seed_env_steps: int = 4_000
    """Act uniformly at random (and do not update) for the first steps."""
    replay_capacity: int = 100_000
    """Transitions kept in the replay buffer."""
    replay_device: str = "auto"
    """Where replay storage lives: ``auto`` (the training device), ``cpu`` or ``memmap``."""
    checkpoint_every: int = 10_000
    """Write a checkpoint every so many environment steps (and at the end)."""
    keep_checkpoints: int = 2
    """How many most recent checkpoints to keep on disk."""
    max_consecutive_nan: int = 10
    """Stop training with an error after this many consecutive updates with a non-finite loss."""
    min_free_disk_mb: int = 200
    """Refuse to start when the run directory's disk has less free space than this."""

    def __post_init__(self) -> None:
        if self.replay_device not in REPLAY_DEVICES:
            raise ValueError(f"train.replay_device={self.replay_device!r}; choose one of {REPLAY_DEVICES}")
        _check_ranges(
            "train",
            self,
            total_env_steps=1,
            seed_env_steps=0,
            replay_capacity=1,
            keep_checkpoints=1,
            max_consecutive_nan=1,
            min_free_disk_mb=0,
        )


@dataclass
class EvalConfig:
    """Evaluation episodes with the deterministic policy on separate environment copies."""

    every: int = 5_000
    """Evaluate every so many environment steps (and at the end); 0 disables periodic evaluation."""
    at_start: bool = True
    """Also evaluate before training starts (step 0: the untrained policy, ``eval/return``) and log a
    uniformly random policy's return on the same episodes (``eval/random_return``), the two baselines a
    learning curve is read against."""
    episodes: int = 4
    """Episodes per evaluation (played on ``env.num_eval_envs`` parallel copies)."""
    policy: str = "auto"
    """How the evaluated agent acts: ``mode`` (the policy's most likely action), ``sample`` (a sample of
    the policy), ``epsilon`` (the mode, but a uniformly random action with probability ``epsilon``:
    DER's Atari-100k protocol with 0.001) or ``auto``: ``mode`` for continuous actions, ``sample`` for
    discrete ones (an untrained policy that never presses FIRE cannot stall a Breakout evaluation
    for 108k frames)."""
    epsilon: float = 0.001
    """The random-action probability of ``policy=epsilon``."""
    video: bool = True
    """Save a GIF of the first evaluation episode's first copy into ``videos/`` (pixel envs only)."""
    video_every: int = 20_000
    """Save the video at most once per so many environment steps (the final evaluation always)."""

    def __post_init__(self) -> None:
        _check_ranges("eval", self, every=0, episodes=1, video_every=0)
        if self.policy not in EVAL_POLICIES:
            raise ValueError(f"eval.policy={self.policy!r}; choose one of {', '.join(EVAL_POLICIES)}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"eval.epsilon={self.epsilon} must be in [0, 1]")


@dataclass
class LoggingConfig:
    """Where scalars go."""

    tensorboard: bool = True
    """Write TensorBoard event files into the run directory."""
    csv: bool = True
    """Write the same scalars to ``scalars.csv`` (long format: step,tag,value,wall_time)."""
    every: int = 1_000
    """Log training losses every so many environment steps."""
    progress_bar: bool = True
    """Show a progress bar (env steps, updates/s, last eval return) on stderr."""

    def __post_init__(self) -> None:
        _check_ranges("logging", self, every=1)


@dataclass
class DistributedConfig:
    """Data-parallel training under ``torchrun`` (``jepa_agents.infra.distributed``); a plain launch is a
    single process whatever these say."""

    enabled: bool = True
    """Train data-parallel when launched by ``torchrun``; false refuses such a launch (one clear error
    instead of W independent copies writing one run directory)."""
    backend: str = "auto"
    """``auto`` (``nccl`` on CUDA, ``gloo`` on CPUs), ``gloo`` or ``nccl``."""
    timeout_s: float = 600.0
    """Seconds a collective waits for the other ranks: a rank that died or hangs stops the rest with an
    error after at most this long (torchrun also stops every worker when one exits with an error)."""

    def __post_init__(self) -> None:
        if self.backend not in ("auto", "gloo", "nccl"):
            raise ValueError(f"distributed.backend={self.backend!r}; choose auto, gloo or nccl")
        if self.timeout_s <= 0:
            raise ValueError(f"distributed.timeout_s={self.timeout_s} must be > 0")


@dataclass
class RunConfig:
    """Settings of every run root (online training, offline zero-shot training)."""

    seed: int = 0
    """Seed of every random number generator (torch, numpy, python, environments)."""
    device: str = "auto"
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    num_threads: int = 0
    """``torch.set_num_threads`` value; 0 keeps torch's default."""
    deterministic: bool = False
    """Use deterministic torch algorithms (bit-identical resume on the CPU)."""
    compile: str = "auto"
    """How each gradient step runs: ``none`` (eager), ``compile`` (``torch.compile``), ``cudagraph`` (CUDA:
    compiled and captured as one CUDA graph) or ``auto`` (``cudagraph`` on CUDA, ``none`` on the CPU, where
    compiling is not faster); resolved at start, printed and saved (:mod:`jepa_agents.infra.compile`)."""
    run_dir: str = ""
    """Run directory; empty: ``runs/<env>/<agent>/<date>_seed<seed>``."""
    resume: str = ""
    """Resume a run: ``true`` (the directory given by ``run_dir``) or the path of a run directory."""
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    """Data-parallel settings under ``torchrun`` (not part of the config hash: a run may be resumed with
    another timeout or backend, but not with another number of ranks)."""

    def __post_init__(self) -> None:
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"compile={self.compile!r}; choose one of {', '.join(COMPILE_MODES)}")


@dataclass
class Config(RunConfig):
    """Root of ``jepa-agents train``."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment (group ``env``)."""
    world_model: Any = None
    """The world model (group ``world_model``; schema ``WorldModelConfig``)."""
    agent: Any = None
    """The learner (group ``agent``; schema chosen by ``agent.name``)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The training schedule (group ``train``)."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation (group ``eval``)."""
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    """Logging (group ``logging``)."""
