"""``MinAtarEnv``: a torchrl ``EnvBase`` stepping N copies of one MinAtar game in batch, on any device.

A game module (:mod:`asterix`, :mod:`breakout`, :mod:`freeway`, :mod:`space_invaders`) supplies
``CHANNELS``, ``RESET_DRAWS``, ``STEP_DRAWS`` and the pure batched functions ``reset(draws, ramping)``,
``step(state, action, draws, ramping) -> (state, reward, terminal)`` and ``observe(state)``; every random
number a game uses is one of the uniforms it is handed (so a test can hand the reference package the
same ones). This class adds sticky actions (with probability ``sticky_action_prob`` the previous action
is repeated; the reference draws that uniform first every step and keeps the previous action across
episodes), partial resets through ``_reset``, an optional time limit and the random stream.

Keys (batch ``[N]``): ``pixels`` uint8 ``[N, C, 10, 10]`` (one channel per object kind, 0 or 255: an
image's scale, so the library's image encoders take it), ``reward`` float32 ``[N, 1]``, ``done``,
``terminated``, ``truncated`` bool ``[N, 1]``; ``action`` long ``[N]`` in ``0..5`` (the reference's six:
no-op, left, up, right, down, fire).
"""

from __future__ import annotations

from types import ModuleType

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

NUM_ACTIONS = 6


class MinAtarEnv(EnvBase):
    """Batched MinAtar game (module doc). Build it through ``envs.make("minatar/<game>")``."""

    def __init__(
        self,
        game: ModuleType,
        num_envs: int,
        seed: int,
        device: torch.device,
        sticky_action_prob: float = 0.1,
        difficulty_ramping: bool = True,
        max_episode_steps: int = 0,
    ):
        if not 0.0 <= sticky_action_prob <= 1.0:
            raise ValueError(f"sticky_action_prob must be in [0, 1], got {sticky_action_prob}")
        if max_episode_steps < 0:
            raise ValueError(f"max_episode_steps must be >= 0 (0: no limit), got {max_episode_steps}")
        super().__init__(device=device, batch_size=torch.Size([num_envs]))
        self.game, self.num_envs = game, num_envs
        self.sticky_action_prob, self.ramping = float(sticky_action_prob), bool(difficulty_ramping)
        self.max_episode_steps, self.action_repeat = int(max_episode_steps), 1
        self._generator = torch.Generator(device=device)
        self._set_seed(seed)
        self._state = game.reset(self._draws(game.RESET_DRAWS), self.ramping)
        self._last_action = torch.zeros(num_envs, dtype=torch.long, device=device)
        self._elapsed = torch.zeros(num_envs, dtype=torch.long, device=device)
        n, c = num_envs, len(game.CHANNELS)
        self.observation_spec = Composite(
            pixels=Bounded(0, 255, (n, c, 10, 10), dtype=torch.uint8, device=device),
            shape=(n,),
            device=device,
        )
        self.action_spec = Categorical(NUM_ACTIONS, (n,), dtype=torch.long, device=device)
        self.reward_spec = Unbounded((n, 1), dtype=torch.float32, device=device)
        flag = {"dtype": torch.bool, "device": device}
        self.done_spec = Composite(
            done=Categorical(2, (n, 1), **flag), terminated=Categorical(2, (n, 1), **flag),
            truncated=Categorical(2, (n, 1), **flag), shape=(n,), device=device,
        )  # fmt: skip

    def _set_seed(self, seed: int | None) -> None:
        if seed is None:
            self._generator.seed()
        else:
            self._generator.manual_seed(int(seed))

    def _draws(self, k: int) -> torch.Tensor:
        return torch.rand(self.num_envs, k, generator=self._generator, device=self.device)

    def get_env_state(self) -> dict:
        """Everything the next steps depend on (game state, previous actions, counters, RNG), on the CPU."""
        return {
            "game": {k: v.cpu() for k, v in self._state.items()},
            "last_action": self._last_action.cpu(),
            "elapsed": self._elapsed.cpu(),
            "generator": self._generator.get_state(),
        }

    def set_env_state(self, state: dict) -> None:
        if (
            tuple(state["last_action"].shape) != (self.num_envs,)
            or state["game"].keys() != self._state.keys()
        ):
            raise ValueError("env state does not fit this env: the same game and num_envs are required")
        self._state = {k: v.to(self.device) for k, v in state["game"].items()}
        self._last_action = state["last_action"].to(self.device)
        self._elapsed = state["elapsed"].to(self.device)
        self._generator.set_state(state["generator"])

    def _pixels(self) -> torch.Tensor:
        return self.game.observe(self._state).to(torch.uint8) * 255  # [N, C, 10, 10]

    def _reset(self, tensordict: TensorDictBase | None, **kwargs) -> TensorDictBase:
        mask = tensordict.get("_reset", None) if tensordict is not None else None
        fresh = self.game.reset(self._draws(self.game.RESET_DRAWS), self.ramping)
        if mask is None:
            mask = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        mask = mask.reshape(self.num_envs).to(self.device)
        self._state = {k: _where(mask, fresh[k], v) for k, v in self._state.items()}
        self._elapsed = torch.where(mask, 0, self._elapsed)
        flag = torch.zeros(self.num_envs, 1, dtype=torch.bool, device=self.device)
        return TensorDict(
            {"pixels": self._pixels(), "done": flag, "terminated": flag.clone(), "truncated": flag.clone()},
            batch_size=self.batch_size, device=self.device,
        )  # fmt: skip

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = tensordict.get("action")
        if action.shape != (self.num_envs,) or action.dtype.is_floating_point:
            got = f"{action.dtype} {list(action.shape)}"
            raise ValueError(f"action must be integer indices of shape [{self.num_envs}], got {got}")
        action = action.to(self.device).long()
        if bool(((action < 0) | (action >= NUM_ACTIONS)).any()):
            raise ValueError(f"actions must lie in 0..{NUM_ACTIONS - 1}")
        draws = self._draws(1 + self.game.STEP_DRAWS)
        sticky = draws[:, 0] < self.sticky_action_prob
        action = torch.where(sticky, self._last_action, action)
        self._last_action = action
        self._state, reward, terminal = self.game.step(self._state, action, draws[:, 1:], self.ramping)
        self._elapsed = self._elapsed + 1
        truncated = ~terminal & (self.max_episode_steps > 0) & (self._elapsed >= self.max_episode_steps)
        return TensorDict(
            {
                "pixels": self._pixels(), "reward": reward[:, None], "done": (terminal | truncated)[:, None],
                "terminated": terminal[:, None], "truncated": truncated[:, None],
            },
            batch_size=self.batch_size, device=self.device,
        )  # fmt: skip


def _where(mask, fresh, old):
    return torch.where(mask.view(-1, *[1] * (old.ndim - 1)), fresh, old)
