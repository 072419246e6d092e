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
    "seaquest": {
        ("_spawn_enemy", 0): 0,
        ("_spawn_enemy", 1): 1,
        ("_spawn_enemy", 2): 2,
        ("_spawn_diver", 0): 3,
        ("_spawn_diver", 1): 4,
    },
    "space_invaders": {},
}


# reference attribute -> our state key: the counters and positions compared every step besides the frames
SCALARS = {
    "asterix": {"player_x": "x", "player_y": "y", "spawn_speed": "spawn_speed", "spawn_timer": "spawn_timer",
                "move_speed": "move_speed", "move_timer": "move_timer", "ramp_timer": "ramp_timer",
                "ramp_index": "ramp_index"},
    "breakout": {"ball_x": "ball_x", "ball_y": "ball_y", "ball_dir": "ball_dir", "pos": "pos",
                 "strike": "strike"},
    "freeway": {"pos": "pos", "move_timer": "move_timer", "terminate_timer": "time_left"},
    "seaquest": {"sub_x": "x", "sub_y": "y", "sub_or": "facing_right", "oxygen": "oxygen",
                 "diver_count": "divers", "e_spawn_speed": "spawn_speed", "e_spawn_timer": "spawn_timer",
                 "d_spawn_timer": "diver_spawn_timer", "move_speed": "move_speed", "ramp_index": "ramp_index",
                 "shot_timer": "cool_down", "surface": "surface"},
    "space_invaders": {"pos": "pos", "alien_dir": "direction", "enemy_move_interval": "move_interval",
                       "alien_move_timer": "move_timer", "alien_shot_timer": "shot_timer",
                       "shot_timer": "cool_down", "ramp_index": "ramp_index"},
}  # fmt: skip

# reference list -> our list and its fields, compared entity by entity in list order every step (the
# order decides which enemy a bullet hits first)
LISTS = {
    "seaquest": {"f_bullets": ("bullet", ("x", "right")), "e_bullets": ("enemy_bullet", ("x", "right")),
                 "e_fish": ("fish", ("x", "right", "timer")),
                 "e_subs": ("sub", ("x", "right", "timer", "shot")),
                 "divers": ("diver", ("x", "right", "timer"))},
}  # fmt: skip


def _our_lists(name: str, state: dict) -> list[dict]:
    """Our lists per copy as the reference writes them: ``[[x, y, right, *rest], ...]``."""
    n = next(iter(state.values())).shape[0]
    out = [{} for _ in range(n)]
    for ref_name, (ours, fields) in LISTS.get(name, {}).items():
        alive = state[f"{ours}_alive"]
        cols = [state[f"{ours}_{f}"].long() for f in ("x", "y", "right", *fields[2:])]
        table, alive = torch.stack(cols, -1).tolist(), alive.tolist()  # [N, K, F], [N, K]
        for i in range(len(out)):
            out[i][ref_name] = [entity for entity, a in zip(table[i], alive[i]) if a]
    return out


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


def _scramble(name: str, state: dict, refs: list, rng: np.random.Generator) -> None:
    """Start the first episodes from the same unusual states in both, so that rare branches (late
    difficulty levels, a nearly cleared wave, the time limit) come within a short test."""
    for i, ref in enumerate(refs):
        if name == "freeway":  # near the time limit
            state["time_left"][i] = ref.terminate_timer = int(rng.integers(50, 250))
        elif name == "asterix":  # a random point of the difficulty ramp
            ref.spawn_speed, ref.move_speed = int(rng.integers(1, 11)), int(rng.integers(1, 6))
            ref.spawn_timer, ref.move_timer = (
                int(rng.integers(0, ref.spawn_speed)),
                int(rng.integers(0, ref.move_speed)),
            )
            ref.ramp_timer, ref.ramp_index = int(rng.integers(0, 20)), int(rng.integers(0, 10))
            for key in ("spawn_speed", "move_speed", "spawn_timer", "move_timer", "ramp_timer", "ramp_index"):
                state[key][i] = getattr(ref, key)
        elif name == "space_invaders":  # a few aliens left, the wave at a random speed
            keep = rng.random((10, 10)) < 0.12
            ref.alien_map = ref.alien_map * keep
            state["aliens"][i] = torch.from_numpy(ref.alien_map > 0)
            ref.enemy_move_interval = int(rng.integers(6, 13))
            ref.alien_move_timer = int(rng.integers(0, ref.enemy_move_interval + 1))
            state["move_interval"][i], state["move_timer"][i] = ref.enemy_move_interval, ref.alien_move_timer
        elif name == "seaquest":  # a random point of the ramp, low on oxygen, divers aboard
            if ref.ramping:
                for _ in range(int(rng.integers(0, 24))):  # surfacings: the ramp as the reference moves it
                    ref.oxygen, ref.diver_count = 0, 1
                    ref._surface()
            ref.e_spawn_timer = int(rng.integers(0, ref.e_spawn_speed + 1))
            ref.oxygen, ref.diver_count = int(rng.integers(10, 201)), int(rng.integers(0, 7))
            ref.d_spawn_timer = int(rng.integers(0, 31))
            for attr in ("e_spawn_speed", "e_spawn_timer", "move_speed", "ramp_index", "oxygen",
                         "diver_count", "d_spawn_timer"):  # fmt: skip
                state[SCALARS[name][attr]][i] = getattr(ref, attr)


def _reference_obs(ref) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(ref.state().transpose(2, 0, 1)))  # [C, 10, 10]


@pytest.mark.parametrize("ramping", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_every_game_equals_the_reference_step_for_step(name, ramping):
    game = importlib.import_module(f"envs.minatar.{name}")
    module = importlib.import_module(f"{minatar_games}.{name}")
    n, steps = 48, 300  # many copies from scrambled states: more branches than one long episode
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
    _scramble(name, state, refs, rng)
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
        ours = {key: state[key].tolist() for key in SCALARS[name].values()}
        lists = _our_lists(name, state)
        for i, ref in enumerate(refs):
            ref.random.serve(draws[i])
            r, done = ref.act(int(action[i]))
            assert float(reward[i]) == r, (name, t, i)
            assert bool(terminal[i]) == done, (name, t, i)
            assert torch.equal(obs[i], _reference_obs(ref)), (name, t, i)
            if not done:  # (the reference stops updating an ended game part-way through the step)
                for attr, key in SCALARS[name].items():
                    assert ours[key][i] == getattr(ref, attr), (name, t, i, attr)
                for attr, entities in lists[i].items():
                    assert entities == [[int(v) for v in e] for e in getattr(ref, attr)], (name, t, i, attr)
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
    if ramping and name in ("asterix", "seaquest", "space_invaders"):
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
        envs.make("minatar/breakout", 2, 0, "cpu", image_scale=2)
    with pytest.raises(ValueError, match="env.frame_stack must be 1, got 4"):
        envs.make("minatar/breakout", 2, 0, "cpu", frame_stack=4)
    limited = envs.make("minatar/freeway", 2, 0, "cpu", max_episode_steps=3)
    t = limited.reset()
    for _ in range(3):
        t["action"] = limited.action_spec.rand()
        out, t = limited.step_and_maybe_reset(t)
    assert out["next", "truncated"].all() and not out["next", "terminated"].any()


def test_discrete_sac_trains_on_a_minatar_game_end_to_end(tmp_path):
    """`env=minatar/<game>` composes (10x10 object channels, no frame stack or skip, the MinAtar encoder)
    and a discrete learner trains, evaluates and checkpoints on it."""
    from tiny_run import tiny

    from jepa_agents.cli import main

    run = tmp_path / "run"
    overrides = tiny(
        "env=minatar/breakout", "agent=discrete_sac", "world_model.augment_pad=0", "env.num_eval_envs=2",
        "eval.every=400", "eval.episodes=2", "train.total_env_steps=400", "train.seed_env_steps=100",
        "logging.every=100", f"run_dir={run}",
    )  # fmt: skip
    overrides.remove("env.from_pixels=false")
    assert main(["train", *overrides]) == 0
    assert (run / "checkpoints").is_dir() and (run / "scalars.csv").is_file()
    text = (run / "scalars.csv").read_text()
    assert "eval/return" in text and "critic/loss" in text


def test_evaluation_policies():
    """``eval.policy``: the mode, samples, or the mode with uniformly random actions at rate ε."""
    from jepa_agents.train.evaluate import EvalPolicy

    env = envs.make("minatar/asterix", num_envs=4000, seed=0, device="cpu")
    td = env.reset()

    class Agent:
        def act(self, obs, eval_mode):
            return torch.zeros(obs.batch_size[0], dtype=torch.long) if eval_mode else torch.ones(4000).long()

    assert EvalPolicy(Agent(), env.action_spec).policy == "sample"  # discrete actions: auto samples
    assert EvalPolicy(Agent(), env.action_spec, "auto").act(td).eq(1).all()
    assert EvalPolicy(Agent(), env.action_spec, "mode").act(td).eq(0).all()
    torch.manual_seed(0)
    random = EvalPolicy(Agent(), env.action_spec, "epsilon", 0.3).act(td).ne(0).float().mean()
    assert abs(float(random) - 0.3 * 5 / 6) < 0.03  # a random action is 0 one time in six
    with pytest.raises(ValueError, match="eval.policy"):
        from jepa_agents.train.config import compose

        compose(["eval.policy=greedy"])


def test_seaquest_contests_follow_the_reference_lists():
    """Two submarines move onto our bullet's cell in the same step: the reference's reversed loop lets the
    later one in its list take the bullet, and that submarine, though removed, still fires this step."""
    from envs.minatar import seaquest

    ref = importlib.import_module(f"{minatar_games}.seaquest").Env(ramping=True)
    ref.random = InjectedRandom(LAYOUT["seaquest"])
    ref.sub_y, ref.surface = 7, False  # the player below, far from the contest
    ref.e_subs = [[4, 3, True, 0, 5], [4, 3, True, 0, 0]]  # same cell and move timer; the second due to fire
    ref.f_bullets = [[4, 3, True]]  # moves to 5 before the submarines do
    state = seaquest.reset(torch.zeros(1, 0), True)
    for attr, key in SCALARS["seaquest"].items():
        state[key][0] = getattr(ref, attr)
    for attr, (ours, fields) in LISTS["seaquest"].items():
        for k, entity in enumerate(getattr(ref, attr)):
            state[f"{ours}_alive"][0, k] = True
            for field, value in zip(("x", "y", "right", *fields[2:]), entity):
                state[f"{ours}_{field}"][0, k] = value
    draws = _uniforms(np.random.default_rng(0), 1, seaquest.STEP_DRAWS)
    ref.random.serve(draws[0])
    reward, _ = ref.act(0)
    state, ours_reward, _ = seaquest.step(
        state, torch.zeros(1, dtype=torch.long), torch.from_numpy(draws).float(), True
    )
    assert reward == float(ours_reward[0]) == 1
    assert ref.e_subs == [[5, 3, True, 5, 4]] and ref.e_bullets == [[6, 3, True]]  # the reference's rule
    lists = _our_lists("seaquest", state)[0]
    for attr in LISTS["seaquest"]:
        assert lists[attr] == [[int(v) for v in e] for e in getattr(ref, attr)], attr
