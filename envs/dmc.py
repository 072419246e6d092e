"""DeepMind Control from pixels and state as one batched torchrl env: ``dmc/<domain>_<task>``.

Names: every stock suite task (``dmc/walker_walk``, ``dmc/cartpole_swingup``, ``dmc/humanoid_CMU_run``)
plus the zero-shot task set of :mod:`envs.dmc_tasks` (``dmc/walker_flip``, ``dmc/cheetah_run_backward``,
``dmc/quadruped_jump``, ``dmc/point_mass_maze_reach_top_left``, ...).

Keys (batch ``[N]``): ``pixels`` uint8 ``[N, 3 * frame_stack, H, W]`` (oldest frame first; at reset the
first frame fills the stack, as DrQ), only with ``from_pixels``; ``state`` float32 ``[N, S]`` (observation
dict flattened); ``physics`` float32 ``[N, P]`` = ``[qpos, qvel, act, ctrl]`` (enough for :func:`relabel`);
``reward`` float32 ``[N, 1]`` = sum of the task reward over the ``action_repeat`` control steps;
``truncated`` after ``episode_length // action_repeat`` agent steps (1000 control steps by default);
``terminated`` only when a task ends an episode with discount 0; ``episode_return`` / ``episode_length``.
Actions: float32 ``[N, A]`` in the task's bounds (``[-1, 1]`` for every suite task).

Options (defaults as DrQ / URLB): ``from_pixels=True``, ``image_size=64``, ``camera`` (quadruped 2,
others 0), ``action_repeat`` (cartpole 8; cheetah, reacher, ball_in_cup 4; others 2), ``frame_stack=3``,
``episode_length=1000`` (control steps), ``num_workers`` (0 = every copy in this process; otherwise one
gymnasium ``AsyncVectorEnv`` process per copy, at most ``num_workers`` stepping at once; default
``num_envs``, no limit, the fastest measured: ``scripts/bench_envs.py``), ``worker_timeout_s=300``.
Rendering uses ``MUJOCO_GL=egl`` unless set.
Done copies must be reset (``env.reset(td)`` with ``_reset``, or ``step_and_maybe_reset``) before stepping.
"""

from __future__ import annotations

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Composite, Unbounded
from torchrl.envs import EnvBase

from envs import dmc_tasks
from envs.wrappers import EpisodeStats, check_action, done_spec, episode_specs, to_device

NAMES: tuple[str, ...] = dmc_tasks.ALL_TASKS

ACTION_REPEAT: dict[str, int] = {"cartpole": 8, "cheetah": 4, "reacher": 4, "ball_in_cup": 4}
DEFAULT_ACTION_REPEAT = 2
CAMERA: dict[str, int] = {"quadruped": 2}


def default_action_repeat(task: str) -> int:
    """The PlaNet/DrQ benchmark's action repeat of ``task``'s domain (cartpole 8; cheetah, reacher,
    ball_in_cup 4; others 2)."""
    return ACTION_REPEAT.get(dmc_tasks.split_name(task)[0], DEFAULT_ACTION_REPEAT)


OPTIONS: tuple[str, ...] = (
    "from_pixels", "image_size", "camera", "action_repeat", "frame_stack", "episode_length", "num_workers",
    "worker_timeout_s",
)  # fmt: skip


def make(task: str, num_envs: int, seed: int, device: torch.device, **options) -> DMCEnv:
    """``num_envs`` copies of ``task``; copy ``i`` is seeded with ``seed + i``. Options: :data:`OPTIONS`."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"dmc/{task}: unknown option(s) {unknown}; known options: {list(OPTIONS)}")
    return _make(task, num_envs, seed, device, **options)


def _make(
    task: str,
    num_envs: int,
    seed: int,
    device: torch.device,
    *,
    from_pixels: bool = True,
    image_size: int = 64,
    camera: int | None = None,
    action_repeat: int | None = None,
    frame_stack: int = 3,
    episode_length: int = 1000,
    num_workers: int | None = None,
    worker_timeout_s: float = 300.0,
) -> DMCEnv:
    domain, _ = dmc_tasks.split_name(task)
    action_repeat = default_action_repeat(task) if action_repeat is None else action_repeat
    camera = CAMERA.get(domain, 0) if camera is None else camera
    if num_workers is None:
        num_workers = 0 if num_envs == 1 else num_envs
    checks = {
        "image_size": (image_size, 1), "action_repeat": (action_repeat, 1), "frame_stack": (frame_stack, 1),
        "episode_length": (episode_length, 1), "num_workers": (num_workers, 0), "camera": (camera, 0),
    }  # fmt: skip
    for key, (value, low) in checks.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"dmc/{task}: {key} must be an integer >= {low}, got {value!r}")
    if num_workers > num_envs:
        raise ValueError(f"dmc/{task}: num_workers ({num_workers}) must be <= num_envs ({num_envs})")
    if episode_length < action_repeat:
        raise ValueError(f"dmc/{task}: episode_length ({episode_length}) < action_repeat ({action_repeat})")
    return DMCEnv(
        task, num_envs, seed, device, from_pixels=bool(from_pixels), image_size=image_size, camera=camera,
        action_repeat=action_repeat, frame_stack=frame_stack, episode_length=episode_length,
        num_workers=num_workers, worker_timeout_s=worker_timeout_s,
    )  # fmt: skip


def relabel(task: str, physics: torch.Tensor) -> torch.Tensor:
    """Rewards ``[...]`` (float32, on ``physics.device``) of ``task`` for physics states ``[..., P]``.

    ``task`` must be in the zero-shot set (:data:`envs.dmc_tasks.TASK_SET`); states may come from any task
    of the same domain (e.g. ``walker_walk`` data relabeled for ``walker_flip``).
    """
    rewards = dmc_tasks.relabel(task, torch.as_tensor(physics).detach().cpu().double().numpy())
    return torch.from_numpy(rewards).float().to(torch.as_tensor(physics).device)


class DMCEnv(EnvBase):
    """``num_envs`` dm_control copies behind torchrl's ``EnvBase`` (see the module docstring)."""

    def __init__(
        self,
        task: str,
        num_envs: int,
        seed: int,
        device: torch.device,
        *,
        from_pixels: bool,
        image_size: int,
        camera: int,
        action_repeat: int,
        frame_stack: int,
        episode_length: int,
        num_workers: int,
        worker_timeout_s: float,
    ):
        super().__init__(device=device, batch_size=torch.Size([num_envs]))
        self.name = f"dmc/{task}"
        self.action_repeat = action_repeat
        self.from_pixels = from_pixels
        self.frame_stack = frame_stack
        seeds = [int(seed) + i for i in range(num_envs)]
        kwargs = dict(
            from_pixels=from_pixels, image_size=image_size, camera=camera, action_repeat=action_repeat,
            max_steps=episode_length // action_repeat,
        )  # fmt: skip
        if num_workers == 0:
            from envs.dmc_tasks.runner import DMCBatch

            self._sim = DMCBatch(task, seeds, **kwargs)
        else:
            from envs.dmc_tasks.pool import AsyncPool

            self._sim = AsyncPool(task, seeds, num_workers, timeout_s=worker_timeout_s, **kwargs)
        info = self._sim.info()
        self._low, self._high = info["action_low"], info["action_high"]
        self._needs_reset = np.ones(num_envs, bool)
        self._stats = EpisodeStats(num_envs)
        self._last: dict[str, np.ndarray] = {
            "state": np.zeros((num_envs, info["state_dim"]), np.float32),
            "physics": np.zeros((num_envs, info["physics_dim"]), np.float32),
        }
        if from_pixels:
            self._last["pixels"] = np.zeros((num_envs, 3 * frame_stack, image_size, image_size), np.uint8)
        self._make_specs(num_envs, info, image_size)

    def _make_specs(self, n: int, info: dict, size: int) -> None:
        device = self.device
        obs = {
            "state": Unbounded(shape=(n, info["state_dim"]), dtype=torch.float32, device=device),
            "physics": Unbounded(shape=(n, info["physics_dim"]), dtype=torch.float32, device=device),
            **episode_specs(n, device),
        }
        if self.from_pixels:
            shape = (n, 3 * self.frame_stack, size, size)
            obs["pixels"] = Bounded(0, 255, shape=shape, dtype=torch.uint8, device=device)
        self.observation_spec = Composite(obs, shape=(n,), device=device)
        low = torch.as_tensor(np.broadcast_to(self._low, (n, *self._low.shape)).copy())
        high = torch.as_tensor(np.broadcast_to(self._high, (n, *self._high.shape)).copy())
        self.action_spec = Bounded(low, high, shape=low.shape, dtype=torch.float32, device=device)
        self.reward_spec = Unbounded(shape=(n, 1), dtype=torch.float32, device=device)
        self.done_spec = done_spec(n, device)

    def _check_open(self) -> None:
        if self._sim is None:
            raise RuntimeError(f"{self.name}: the environment is closed; make a new one")

    def _update(self, rows: np.ndarray, obs: dict, reset: bool) -> None:
        """Write new observations of copies ``rows``; pixels go through the frame stack ``[.., 3 * K]``."""
        self._last["state"][rows] = obs["state"]
        self._last["physics"][rows] = obs["physics"]
        if self.from_pixels:
            frames = self._last["pixels"]
            if reset:
                frames[rows] = np.tile(obs["pixels"], (1, self.frame_stack, 1, 1))
            else:
                frames[:, :-3] = frames[:, 3:]
                frames[:, -3:] = obs["pixels"]

    def _output(self, extra: dict, stats: tuple) -> TensorDict:
        data = {key: value.copy() for key, value in self._last.items()}
        data.update(extra, episode_return=stats[0], episode_length=stats[1])
        return TensorDict(
            {k: to_device(v, self.device) for k, v in data.items()},
            batch_size=self.batch_size,
            device=self.device,
        )

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        self._check_open()
        n = self.batch_size[0]
        action = check_action(
            tensordict.get("action"), (n, *self._low.shape), integer=False, low=float(self._low.min()),
            high=float(self._high.max()), env_name=self.name,
        )  # fmt: skip
        if self._needs_reset.any():
            raise RuntimeError(
                f"{self.name}: copies {np.flatnonzero(self._needs_reset).tolist()} are done or were never "
                "reset; reset them first (env.reset(td) with td['_reset'], or env.step_and_maybe_reset)"
            )
        out = self._sim.step(action.astype(np.float64))
        self._update(np.arange(n), out, reset=False)
        done = out["terminated"] | out["truncated"]
        self._needs_reset = done.copy()
        extra = {
            "reward": out["reward"][:, None],
            "done": done[:, None],
            "terminated": out["terminated"][:, None],
            "truncated": out["truncated"][:, None],
        }
        return self._output(extra, self._stats.add(out["reward"].astype(np.float64)))

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        self._check_open()
        n = self.batch_size[0]
        if tensordict is None or tensordict.get("_reset", None) is None:
            mask = np.ones(n, bool)
        else:
            mask = tensordict.get("_reset").reshape(n).cpu().numpy().astype(bool)
        if mask.any():
            self._update(np.flatnonzero(mask), self._sim.reset(mask), reset=True)
        self._needs_reset &= ~mask
        self._stats.reset(mask)
        false = np.zeros((n, 1), bool)
        extra = {"done": false, "terminated": false.copy(), "truncated": false.copy()}
        return self._output(extra, self._stats.current())

    def _set_seed(self, seed: int | None) -> None:
        """Re-seed the task RNGs: copy ``i`` gets ``seed + i`` from its next reset on."""
        if seed is not None:
            self._check_open()
            self._sim.seed(np.arange(self.batch_size[0]) + int(seed))

    def close(self, *, raise_if_closed: bool = True) -> None:
        if getattr(self, "_sim", None) is not None:
            self._sim.close()
            self._sim = None
        super().close(raise_if_closed=raise_if_closed)
