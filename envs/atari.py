"""Atari 2600 games (ALE) as one batched torchrl env: ``atari/<game>`` (``atari/pong``, ``atari/ms_pacman``).

The copies run in ``ale_py.vector_env.AtariVectorEnv`` (C++ threads, frame preprocessing in C++).
Two presets (option ``protocol``):

* ``"atari100k"`` (default; Kaiser et al. 2020, DER/SPR/DrQ): frameskip 4 with max-pool over the last two
  frames, 84x84 grayscale, 4-frame stack, up to 30 no-op starts, no sticky actions, 108k-frame cap
  (27k agent steps), minimal action set (``full_action_space=True`` for all 18 actions);
* ``"v5"`` (Machado et al. 2018, gymnasium ``ALE/<Game>-v5``): as above but sticky actions with
  ``repeat_action_probability=0.25``, the full action space and no no-op starts.

Keys (batch ``[N]``): ``pixels`` uint8 ``[N, 4, 84, 84]``; ``reward`` float32 ``[N, 1]`` = raw (unclipped)
game score of the agent step; ``terminated`` = game over, ``truncated`` = frame cap; ``life_loss`` bool
``[N, 1]`` = a life was lost during the step or the game ended (``terminated => life_loss``);
``episode_return`` / ``episode_length`` = running score and agent steps of the current game.

Auto-reset: the vector env runs with ``autoreset_mode=SAME_STEP``: a step that ends a game returns the
final frame (``info["final_obs"]``) as ``next.pixels`` and the C++ side resets that copy at once; the
first frame of the new game is kept here and handed out by ``env.reset(td)`` with the ``_reset`` mask
(what ``step_and_maybe_reset`` does). So no transition ever crosses an episode boundary. Stepping a done
copy without resetting it first is an error.
"""

from __future__ import annotations

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from envs.wrappers import EpisodeStats, check_action, done_spec, episode_specs, flag_spec, to_device

# ale_py.roms.get_all_rom_ids() of ale-py 0.12 (tests/test_atari.py checks the list is current).
NAMES: tuple[str, ...] = (
    "adventure", "air_raid", "alien", "amidar", "assault", "asterix", "asteroids", "atlantis", "atlantis2",
    "backgammon", "bank_heist", "basic_math", "battle_zone", "beam_rider", "berzerk", "blackjack", "bowling",
    "boxing", "breakout", "carnival", "casino", "centipede", "chopper_command", "combat", "crazy_climber",
    "crossbow", "darkchambers", "defender", "demon_attack", "donkey_kong", "double_dunk", "earthworld",
    "elevator_action", "enduro", "entombed", "et", "fishing_derby", "flag_capture", "freeway", "frogger",
    "frostbite", "galaxian", "gopher", "gravitar", "hangman", "haunted_house", "hero", "human_cannonball",
    "ice_hockey", "jamesbond", "journey_escape", "joust", "kaboom", "kangaroo", "keystone_kapers",
    "king_kong", "klax", "koolaid", "krull", "kung_fu_master", "laser_gates", "lost_luggage", "mario_bros",
    "maze_craze", "miniature_golf", "montezuma_revenge", "mr_do", "ms_pacman", "name_this_game", "othello",
    "pacman", "phoenix", "pitfall", "pitfall2", "pong", "pooyan", "private_eye", "qbert", "riverraid",
    "road_runner", "robotank", "seaquest", "sir_lancelot", "skiing", "solaris", "space_invaders",
    "space_war", "star_gunner", "superman", "surround", "tennis", "tetris", "tic_tac_toe_3d", "time_pilot",
    "trondead", "turmoil", "tutankham", "up_n_down", "venture", "video_checkers", "video_chess",
    "video_cube", "video_pinball", "warlords", "wizard_of_wor", "word_zapper", "yars_revenge", "zaxxon",
)  # fmt: skip

PROTOCOLS: dict[str, dict] = {
    "atari100k": dict(
        action_repeat=4, repeat_action_probability=0.0, full_action_space=False, noop_max=30,
        max_episode_frames=108_000,
    ),
    "v5": dict(
        action_repeat=4, repeat_action_probability=0.25, full_action_space=True, noop_max=0,
        max_episode_frames=108_000,
    ),
}  # fmt: skip


def default_action_repeat(task: str) -> int:
    """Frameskip of the default protocol (``atari100k``: 4) for every game."""
    return int(PROTOCOLS["atari100k"]["action_repeat"])


def make(
    task: str,
    num_envs: int,
    seed: int,
    device: torch.device,
    *,
    protocol: str = "atari100k",
    from_pixels: bool = True,
    image_size: int = 84,
    frame_stack: int = 4,
    num_threads: int = 0,
    **overrides,
) -> AtariEnv:
    """``num_envs`` copies of ``task`` under ``protocol``.

    ``overrides`` change single preset values: ``action_repeat``, ``repeat_action_probability``,
    ``full_action_space``, ``noop_max``, ``max_episode_frames``. ``num_threads=0`` lets ALE pick.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"atari/{task}: unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
    settings = dict(PROTOCOLS[protocol])
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        known = sorted({"protocol", "from_pixels", "image_size", "frame_stack", "num_threads", *settings})
        raise ValueError(f"atari/{task}: unknown option(s) {unknown}; known options: {known}")
    if not from_pixels:
        raise ValueError(f"atari/{task}: Atari is pixels-only, from_pixels=False is not supported")
    for key, value in (("image_size", image_size), ("frame_stack", frame_stack)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"atari/{task}: {key} must be an integer >= 1, got {value!r}")
    settings.update(overrides)
    return AtariEnv(
        task, num_envs, seed, device, image_size=image_size, frame_stack=frame_stack,
        num_threads=num_threads, **settings,
    )  # fmt: skip


class AtariEnv(EnvBase):
    """``num_envs`` ALE copies behind torchrl's ``EnvBase`` (see the module docstring for the keys)."""

    def __init__(
        self,
        game: str,
        num_envs: int,
        seed: int,
        device: torch.device,
        *,
        action_repeat: int,
        repeat_action_probability: float,
        full_action_space: bool,
        noop_max: int,
        max_episode_frames: int,
        image_size: int,
        frame_stack: int,
        num_threads: int,
    ):
        from ale_py.vector_env import AtariVectorEnv

        super().__init__(device=device, batch_size=torch.Size([num_envs]))
        self.name = f"atari/{game}"
        self.action_repeat = int(action_repeat)
        self._vec = AtariVectorEnv(
            game,
            num_envs,
            num_threads=num_threads,
            max_num_frames_per_episode=max_episode_frames,
            repeat_action_probability=repeat_action_probability,
            full_action_space=full_action_space,
            autoreset_mode="SameStep",
            img_height=image_size,
            img_width=image_size,
            grayscale=True,
            stack_num=frame_stack,
            frameskip=self.action_repeat,
            maxpool=True,
            noop_max=noop_max,
            episodic_life=False,
            life_loss_info=False,
            reward_clipping=False,
            use_fire_reset=False,
        )
        self.num_actions = int(self._vec.single_action_space.n)
        self._seed = int(seed)
        self._pending = np.zeros(num_envs, bool)  # copies whose game ended: reset obs waits in _next_obs
        self._next_obs = np.zeros((num_envs, frame_stack, image_size, image_size), np.uint8)
        self._last_obs = self._next_obs.copy()
        self._lives = np.zeros(num_envs, np.int32)
        self._stats = EpisodeStats(num_envs)
        self._make_specs(num_envs, frame_stack, image_size)

    def _make_specs(self, n: int, stack: int, size: int) -> None:
        device = self.device
        self.observation_spec = Composite(
            pixels=Bounded(0, 255, shape=(n, stack, size, size), dtype=torch.uint8, device=device),
            life_loss=flag_spec(n, device),
            **episode_specs(n, device),
            shape=(n,),
            device=device,
        )
        self.action_spec = Categorical(self.num_actions, shape=(n,), dtype=torch.int64, device=device)
        self.reward_spec = Unbounded(shape=(n, 1), dtype=torch.float32, device=device)
        self.done_spec = done_spec(n, device)

    def _check_open(self) -> None:
        if self._vec is None:
            raise RuntimeError(f"{self.name}: the environment is closed; make a new one")

    def _output(self, pixels: np.ndarray, life_loss: np.ndarray, stats: tuple, extra: dict) -> TensorDict:
        """The step's or reset's TensorDict; every array is fresh (owned by the output, never written
        again here), so on CPU the tensors share its memory without a copy."""
        data = {"pixels": pixels, "life_loss": life_loss[:, None], "episode_return": stats[0]}
        data["episode_length"] = stats[1]
        data.update(extra)
        tensors = {k: to_device(v, self.device) for k, v in data.items()}
        # shapes and device are right by construction: skip TensorDict's per-key validation (~15 us/step)
        return TensorDict._new_unsafe(tensors, batch_size=self.batch_size, device=self.device)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        self._check_open()
        n = self.batch_size[0]
        action = check_action(
            tensordict.get("action"), (n,), integer=True, low=0, high=self.num_actions - 1, env_name=self.name
        ).astype(np.int32)
        if self._pending.any():
            raise RuntimeError(
                f"{self.name}: copies {np.flatnonzero(self._pending).tolist()} ended their game; reset them "
                "first (env.reset(td) with td['_reset'], or env.step_and_maybe_reset)"
            )
        obs, reward, terminated, truncated, info = self._vec.step(action)  # fresh arrays every call
        done = terminated | truncated
        lives = info["lives"]
        life_loss = terminated | ((lives < self._lives) & ~done)
        pixels = obs
        if done.any():
            self._next_obs[done] = obs[done]
            pixels = obs.copy()
            pixels[done] = info["final_obs"][done]
            self._pending = done.copy()
        self._lives = lives.copy()
        self._last_obs = pixels  # read-only from here on: _reset writes into a copy
        stats = self._stats.add(reward.astype(np.float64))
        extra = {
            "reward": reward.astype(np.float32)[:, None],
            "done": done[:, None],
            "terminated": terminated[:, None].copy(),
            "truncated": truncated[:, None].copy(),
        }
        return self._output(pixels, life_loss, stats, extra)

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        self._check_open()
        n = self.batch_size[0]
        if tensordict is None or tensordict.get("_reset", None) is None:
            mask = np.ones(n, bool)
        else:
            mask = tensordict.get("_reset").reshape(n).cpu().numpy().astype(bool)
        if mask.all() and not self._pending.any():
            seed, self._seed = self._seed, None
            obs, info = self._vec.reset(seed=seed)
            self._last_obs, self._lives = obs, info["lives"].copy()
        else:
            self._last_obs = self._last_obs.copy()  # the previous step's output shares the old array
            fresh = mask & ~self._pending
            if fresh.any():
                obs, info = self._vec.reset(options={"reset_mask": fresh})
                self._last_obs[fresh] = obs[fresh]
                self._lives[fresh] = info["lives"][fresh]
            waiting = mask & self._pending
            self._last_obs[waiting] = self._next_obs[waiting]
            self._pending &= ~mask
        self._stats.reset(mask)
        false = np.zeros((n, 1), bool)
        extra = {"done": false, "terminated": false.copy(), "truncated": false.copy()}
        return self._output(self._last_obs.copy(), np.zeros(n, bool), self._stats.current(), extra)

    def _set_seed(self, seed: int | None) -> None:
        """The next full reset seeds copy ``i`` with ``seed + i`` (later games follow ALE's own RNG)."""
        self._seed = None if seed is None else int(seed)

    def close(self, *, raise_if_closed: bool = True) -> None:
        if self._vec is not None:
            self._vec.close()
            self._vec = None
        super().close(raise_if_closed=raise_if_closed)
