"""``TorchControlEnv``: a torchrl ``EnvBase`` stepping and rendering N copies of one task in batch.

A *domain* module (:mod:`cartpole`, :mod:`pendulum`, :mod:`point_mass_maze`, :mod:`reacher`) supplies
``ACTION_DIM, STATE_DIM, PHYSICS_DIM`` and the pure batched functions ``initial_physics(task, generator,
n, device)``, ``advance(physics, action)`` (one physics step), ``state(physics, task)``,
``reward(physics, task)`` and a ``Scene(task, size, device)`` renderer. This class adds action
validation, action repeat (rewards summed over the repeated physics steps, like dm_control wrappers),
the time limit (``ceil(1000 / action_repeat)`` agent steps, reported as ``truncated``; tasks never
terminate), partial resets through ``_reset`` and frame stacking along the channel axis. Episodes start
from the task's own distribution (``start="reset"``) or, for reward-free data that covers every task,
from the domain's broad ``uniform_physics`` (``start="uniform"``: maze and cart-pole).

Keys (batch ``[N]``): ``state`` float32 ``[N, S]``, ``physics`` float32 ``[N, P]``, ``pixels`` uint8
``[N, 3 * frame_stack, H, W]`` (only with ``from_pixels``), ``reward`` float32 ``[N, 1]``, ``done``,
``terminated``, ``truncated`` bool ``[N, 1]``; ``action`` float32 ``[N, A]`` in [-1, 1].
"""

from __future__ import annotations

import math
from types import ModuleType

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from envs.torch_control.distraction import Distraction, DistractionSpec

PHYSICS_STEPS_PER_EPISODE = 1000


class TorchControlEnv(EnvBase):
    """Batched native-torch control task (module doc). Build it through ``envs.make("torch/<task>")``."""

    def __init__(
        self,
        domain: ModuleType,
        task: str,
        num_envs: int,
        seed: int,
        device: torch.device,
        from_pixels: bool,
        image_size: int,
        frame_stack: int,
        action_repeat: int,
        start: str = "reset",
        distraction: DistractionSpec | None = None,
    ):
        super().__init__(device=device, batch_size=torch.Size([num_envs]))
        self.domain, self.task, self.start = domain, task, start
        self.num_envs, self.from_pixels, self.image_size = num_envs, from_pixels, image_size
        self.frame_stack, self.action_repeat = frame_stack, action_repeat
        self.max_episode_steps = math.ceil(PHYSICS_STEPS_PER_EPISODE / action_repeat)
        self._generator = torch.Generator(device=device)
        self._set_seed(seed)
        self._scene = domain.Scene(task, image_size, device) if from_pixels else None
        spec = distraction or DistractionSpec()
        self._distraction = (
            Distraction(spec, domain, self._scene, num_envs, image_size, seed, device)
            if self._scene is not None and spec.active
            else None
        )
        self._physics = torch.zeros(num_envs, domain.PHYSICS_DIM, device=device)  # set by the first reset
        self._elapsed = torch.zeros(num_envs, dtype=torch.long, device=device)
        self._pixels: torch.Tensor | None = None
        self._make_specs()

    def _make_specs(self) -> None:
        n, d = self.num_envs, self.device
        observation = {
            "state": Unbounded((n, self.domain.STATE_DIM), dtype=torch.float32, device=d),
            "physics": Unbounded((n, self.domain.PHYSICS_DIM), dtype=torch.float32, device=d),
        }
        if self.from_pixels:
            shape = (n, 3 * self.frame_stack, self.image_size, self.image_size)
            observation["pixels"] = Bounded(0, 255, shape, dtype=torch.uint8, device=d)
        self.observation_spec = Composite(observation, shape=(n,), device=d)
        self.action_spec = Bounded(-1.0, 1.0, (n, self.domain.ACTION_DIM), dtype=torch.float32, device=d)
        self.reward_spec = Unbounded((n, 1), dtype=torch.float32, device=d)
        flag = {"dtype": torch.bool, "device": d}
        self.done_spec = Composite(
            done=Categorical(2, (n, 1), **flag),
            terminated=Categorical(2, (n, 1), **flag),
            truncated=Categorical(2, (n, 1), **flag),
            shape=(n,),
            device=d,
        )

    def _set_seed(self, seed: int | None) -> None:
        if seed is None:
            self._generator.seed()
        else:
            self._generator.manual_seed(int(seed))

    def get_env_state(self) -> dict[str, torch.Tensor | None]:
        """Everything the next steps depend on (physics, step counters, frame stack, RNG), on the CPU:
        with :meth:`set_env_state` a training run resumes bit-identically mid-episode."""
        return {
            "physics": self._physics.cpu(),
            "elapsed": self._elapsed.cpu(),
            "pixels": None if self._pixels is None else self._pixels.cpu(),
            "generator": self._generator.get_state(),
            "distraction": None if self._distraction is None else self._distraction.state(),
        }

    def set_env_state(self, state: dict[str, torch.Tensor | None]) -> None:
        """Restore a :meth:`get_env_state` snapshot taken from an env of the same task and size."""
        if tuple(state["physics"].shape) != tuple(self._physics.shape):
            raise ValueError(
                f"env state of shape {list(state['physics'].shape)} does not fit this env "
                f"({list(self._physics.shape)}): same task and num_envs are required"
            )
        self._physics = state["physics"].to(self.device)
        self._elapsed = state["elapsed"].to(self.device)
        self._pixels = None if state["pixels"] is None else state["pixels"].to(self.device)
        self._generator.set_state(state["generator"])
        if self._distraction is not None:
            self._distraction.load_state(state["distraction"])

    def _validate_action(self, tensordict: TensorDictBase) -> torch.Tensor:
        action = tensordict.get("action", None)
        if action is None:
            raise ValueError("The input tensordict has no 'action' entry.")
        expected = (self.num_envs, self.domain.ACTION_DIM)
        if not isinstance(action, torch.Tensor):
            raise TypeError(f"action must be a torch.Tensor, got {type(action).__name__}")
        if action.dtype != torch.float32:
            raise TypeError(f"action must have dtype torch.float32, got {action.dtype}")
        if tuple(action.shape) != expected:
            raise ValueError(f"action must have shape {list(expected)}, got {list(action.shape)}")
        if action.device != self.device:
            raise ValueError(f"action must be on device {self.device}, got {action.device}")
        if not bool(torch.isfinite(action).all()):
            raise ValueError("action contains NaN or infinite values")
        return action

    def _observation(self, reset_mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Observations of the current physics; with ``reset_mask [N]``, reset copies get a fresh stack."""
        obs = {"state": self.domain.state(self._physics, self.task), "physics": self._physics.clone()}
        if self._scene is not None:
            if self._distraction is None:
                frame = self._scene(self._physics)  # [N, 3, H, W]
            else:
                frame = self._distraction.render(self._scene, self._physics, self._elapsed)
            if self.frame_stack == 1:
                self._pixels = frame
            elif self._pixels is None:
                self._pixels = frame.repeat(1, self.frame_stack, 1, 1)
            else:
                stacked = torch.cat((self._pixels[:, 3:], frame), dim=1)
                if reset_mask is not None:
                    fresh = frame.repeat(1, self.frame_stack, 1, 1)
                    stacked = torch.where(reset_mask.view(-1, 1, 1, 1), fresh, stacked)
                self._pixels = stacked
            obs["pixels"] = self._pixels
        return obs

    def _reset(self, tensordict: TensorDictBase | None, **kwargs) -> TensorDictBase:
        mask = tensordict.get("_reset", None) if tensordict is not None else None
        if self.start == "uniform":
            fresh = self.domain.uniform_physics(self._generator, self.num_envs, self.device)
        else:
            fresh = self.domain.initial_physics(self.task, self._generator, self.num_envs, self.device)
        if mask is None:
            mask = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        else:
            mask = mask.reshape(self.num_envs).to(self.device)
        self._physics = torch.where(mask[:, None], fresh, self._physics)
        self._elapsed = torch.where(mask, torch.zeros_like(self._elapsed), self._elapsed)
        if self._distraction is not None:
            self._distraction.resample(mask)  # new colours, texture and view per episode
        obs = self._observation(mask)
        flag = torch.zeros(self.num_envs, 1, dtype=torch.bool, device=self.device)
        return TensorDict(
            {**obs, "done": flag, "terminated": flag.clone(), "truncated": flag.clone()},
            batch_size=self.batch_size,
            device=self.device,
        )

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = self._validate_action(tensordict)  # [N, A]
        reward = torch.zeros(self.num_envs, device=self.device)
        for _ in range(self.action_repeat):
            self._physics = self.domain.advance(self._physics, action)
            reward = reward + self.domain.reward(self._physics, self.task)
        self._elapsed = self._elapsed + 1
        truncated = (self._elapsed >= self.max_episode_steps)[:, None]  # [N, 1]
        obs = self._observation(None)
        return TensorDict(
            {
                **obs,
                "reward": reward[:, None],
                "done": truncated,
                "terminated": torch.zeros_like(truncated),
                "truncated": truncated.clone(),
            },
            batch_size=self.batch_size,
            device=self.device,
        )
