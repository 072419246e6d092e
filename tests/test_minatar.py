"""The torch MinAtar games against the reference package (``minatar`` 1.0.15), step for step.

Both are driven with the same actions and the same random numbers: the reference's ``RandomState`` is
replaced by :class:`InjectedRandom`, which answers each of its calls with the uniform the torch game
reads for that purpose (by the calling function and the call's order within one step), on a grid of
odd multiples of 2^-17 where float32 and float64 agree on every comparison the games make. N copies
of ours run in one batch beside N reference games; a copy that ends is reset in both (a partial reset
of the batch).
"""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
import torch

import envs
from envs.minatar import NAMES

minatar_games = pytest.importorskip("minatar.environments.breakout").__package__  # the test dependency

# (calling function, its k-th draw of the step) -> the uniforms of our draw vector it reads
LAYOUT = {
    "asterix": {("_spawn_entity", 0): 0, ("_spawn_entity", 1): 1, ("_spawn_entity", 2): 2},
    "breakout": {("reset", 0): 0},
    "freeway": {("_randomize_cars", 0): slice(0, 8), ("_randomize_cars", 1): slice(8, 16)},
    "space_invaders": {},
}


class InjectedRandom:
    """A ``RandomState`` stand-in that serves given uniforms: ``rand`` returns them, ``randint`` maps
    ``u`` to ``low + ⌊u·(high - low)⌋``, as the torch games do."""

    def __init__(self, layout: dict):
        self.layout, self.draws, self.calls = layout, None, {}

    def serve(self, draws: np.ndarray) -> None:
        self.draws, self.calls = draws, {}

    def _next(self):
        caller = sys._getframe(2).f_code.co_name
        k = self.calls.get(caller, 0)
        self.calls[caller] = k + 1
        return self.draws[self.layout[(caller, k)]]

    def rand(self, *size):
        return self._next()

    def randint(self, low, high=None, size=None):
        low, high = (0, low) if high is None else (low, high)
        return low + np.floor(np.asarray(self._next()) * (high - low)).astype(int)


def _uniforms(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return (2 * rng.integers(0, 2**16, size=(n, k)) + 1) / 2**17


def _reference_obs(ref) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(ref.state().transpose(2, 0, 1)))  # [C, 10, 10]


@pytest.mark.parametrize("ramping", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_every_game_equals_the_reference_step_for_step(name, ramping):
    game = importlib.import_module(f"envs.minatar.{name}")
    module = importlib.import_module(f"{minatar_games}.{name}")
    n, steps = 6, 1000
    rng = np.random.default_rng(0)
    refs = []
    for _ in range(n):
        ref = module.Env(ramping=ramping)
        ref.random = InjectedRandom(LAYOUT[name])
        refs.append(ref)

    def reset_reference(i: int, draws: np.ndarray) -> None:
        refs[i].random.serve(draws)
        refs[i].reset()

    draws = _uniforms(rng, n, max(game.RESET_DRAWS, 1))
    state = game.reset(torch.from_numpy(draws).float()[:, : game.RESET_DRAWS], ramping)
    for i in range(n):
        reset_reference(i, draws[i])
    if name == "freeway":  # the first episodes end early (the same state in both: 600 steps left)
        state["time_left"][:] = 600
        for ref in refs:
            ref.terminate_timer = 600
    episodes, total_reward, ramped = 0, 0.0, False
    for t in range(steps):
        action = rng.integers(0, 6, size=n)
        if name == "freeway":  # mostly up, so that the chicken crosses (and the cars change speeds)
            action = np.where(rng.random(n) < 0.6, 2, action)
        draws = _uniforms(rng, n, max(game.STEP_DRAWS, 1))
        state, reward, terminal = game.step(
            state, torch.from_numpy(action), torch.from_numpy(draws).float()[:, : game.STEP_DRAWS], ramping
        )
        obs = game.observe(state)
        for i, ref in enumerate(refs):
            ref.random.serve(draws[i])
            r, done = ref.act(int(action[i]))
            assert float(reward[i]) == r, (name, t, i)
            assert bool(terminal[i]) == done, (name, t, i)
            assert torch.equal(obs[i], _reference_obs(ref)), (name, t, i)
            ramped |= bool(getattr(ref, "ramp_index", 0))
        total_reward += float(reward.sum())
        if terminal.any():  # reset the ended copies of both, with the same draws
            episodes += int(terminal.sum())
            fresh_draws = _uniforms(rng, n, max(game.RESET_DRAWS, 1))
            fresh = game.reset(torch.from_numpy(fresh_draws).float()[:, : game.RESET_DRAWS], ramping)
            state = {
                k: torch.where(terminal.view(-1, *[1] * (v.ndim - 1)), fresh[k], v) for k, v in state.items()
            }
            for i in terminal.nonzero().flatten().tolist():
                reset_reference(i, fresh_draws[i])
            obs = game.observe(state)
            for i in terminal.nonzero().flatten().tolist():
                assert torch.equal(obs[i], _reference_obs(refs[i])), (name, t, i, "after reset")
    assert episodes > 0 and total_reward > 0  # the rollouts reached rewards and episode ends
    if ramping and name in ("asterix",):
        assert ramped  # the difficulty ramp was exercised


def test_sticky_actions_repeat_the_previous_action_at_the_reference_rate():
    """With probability 0.1 the previous executed action replaces the requested one (the reference draws
    that uniform first every step; the previous action starts at 0 and survives episode ends)."""
    env = envs.make("minatar/breakout", num_envs=8192, seed=0, device="cpu")
    td = env.reset()
    td["action"] = torch.full((8192,), 1)
    td = env.step(td)["next"]
    first = env._last_action.clone()
    assert abs(float((first == 0).float().mean()) - 0.1) < 0.015  # sticky on the initial 0
    td["action"] = torch.full((8192,), 3)
    env.step(td)
    stuck = env._last_action != 3
    assert abs(float(stuck.float().mean()) - 0.1) < 0.015
    assert torch.equal(env._last_action[stuck], first[stuck])


def test_env_contract_partial_reset_and_resume_state():
    env = envs.make("minatar/space_invaders", num_envs=4, seed=3, device="cpu", sticky_action_prob=0.0)
    td = env.reset()
    assert td["pixels"].shape == (4, 6, 10, 10) and td["pixels"].dtype == torch.uint8
    assert set(td["pixels"].unique().tolist()) <= {0, 255}
    assert env.action_spec.n == 6
    for _ in range(5):
        td["action"] = env.action_spec.rand()
        _, td = env.step_and_maybe_reset(td)
    snapshot = env.get_env_state()
    twin = envs.make("minatar/space_invaders", num_envs=4, seed=99, device="cpu", sticky_action_prob=0.0)
    twin.set_env_state(snapshot)
    actions = [env.action_spec.rand() for _ in range(50)]
    outs = []
    for e in (env, twin):
        t = td.clone()
        rows = []
        for a in actions:
            t["action"] = a
            step, t = e.step_and_maybe_reset(t)
            rows.append(step["next", "pixels"])
        outs.append(torch.stack(rows))
    assert torch.equal(outs[0], outs[1])
    with pytest.raises(ValueError, match="integer indices"):
        env.step(td.set("action", torch.zeros(4, 6)))
    with pytest.raises(ValueError, match="options"):
        envs.make("minatar/breakout", 2, 0, "cpu", frame_stack=4)
    limited = envs.make("minatar/freeway", 2, 0, "cpu", max_episode_steps=3)
    t = limited.reset()
    for _ in range(3):
        t["action"] = limited.action_spec.rand()
        out, t = limited.step_and_maybe_reset(t)
    assert out["next", "truncated"].all() and not out["next", "terminated"].any()
