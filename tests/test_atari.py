"""Atari family: conformance, auto-reset semantics, seeding, bad input, reference scores."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("ale_py")

import envs  # noqa: E402
from envs.atari import NAMES  # noqa: E402
from envs.atari_scores import ATARI_100K_GAMES, human_normalized  # noqa: E402

SHORT = dict(max_episode_frames=120)  # 30 agent steps per game


def test_names_match_ale_roms():
    from ale_py import roms

    assert set(NAMES) == set(roms.get_all_rom_ids())
    assert set(ATARI_100K_GAMES) <= set(NAMES)


@pytest.mark.parametrize("game", ["pong", "breakout", "ms_pacman"])
def test_conformance_and_autoreset(game):
    from torchrl.envs.utils import check_env_specs

    env = envs.make(f"atari/{game}", num_envs=2, seed=0, **SHORT)
    assert env.action_repeat == 4
    check_env_specs(env)
    td = env.reset()
    assert td["pixels"].shape == (2, 4, 84, 84) and td["pixels"].dtype == torch.uint8
    episodes, life_losses = 0, 0
    for _ in range(70):  # a bit more than two 30-step games per copy
        td["action"] = env.action_spec.rand()
        out, td = env.step_and_maybe_reset(td)
        nxt = out["next"]
        assert nxt["reward"].dtype == torch.float32 and nxt["reward"].shape == (2, 1)
        assert torch.isfinite(nxt["reward"]).all() and (nxt["reward"] == nxt["reward"].round()).all()
        assert torch.equal(nxt["done"], nxt["terminated"] | nxt["truncated"])
        assert (nxt["life_loss"] | ~nxt["terminated"]).all()  # terminated => life_loss
        done = nxt["done"].squeeze(-1)
        # the stored transition ends the old game; the reset obs starts a new one (length 0)
        assert (td["episode_length"][done] == 0).all()
        assert (nxt["episode_length"][done] == 30).all() or nxt["terminated"][done].any()
        episodes += int(done.sum())
        life_losses += int(nxt["life_loss"].sum())
    assert episodes >= 4
    env.close()


def test_life_loss_reported():
    env = envs.make("atari/breakout", num_envs=2, seed=0)
    rollout = env.rollout(150, break_when_any_done=False)
    assert rollout["next", "life_loss"].any()
    assert not rollout["next", "terminated"].all()
    env.close()


def test_seeding():
    def first(seed):
        env = envs.make("atari/ms_pacman", num_envs=2, seed=seed)
        pixels = env.reset()["pixels"]
        env.close()
        return pixels

    assert torch.equal(first(3), first(3))
    assert not torch.equal(first(3), first(4))


def test_protocols():
    v5 = envs.make("atari/pong", num_envs=1, seed=0, protocol="v5")
    assert v5.action_spec.space.n == 18
    small = envs.make("atari/pong", num_envs=1, seed=0)
    assert small.action_spec.space.n == 6
    full = envs.make("atari/pong", num_envs=1, seed=0, full_action_space=True)
    assert full.action_spec.space.n == 18
    for env in (v5, small, full):
        env.close()


def test_bad_input():
    with pytest.raises(ValueError, match="atari/pong"):
        envs.make("atari/pongg")
    with pytest.raises(ValueError, match="num_envs"):
        envs.make("atari/pong", num_envs=0)
    with pytest.raises(ValueError, match="unknown option"):
        envs.make("atari/pong", sticky=True)
    with pytest.raises(ValueError, match="protocol"):
        envs.make("atari/pong", protocol="v4")
    env = envs.make("atari/pong", num_envs=2, seed=0)
    td = env.reset()
    for action, error in [
        (torch.zeros(2, 2, dtype=torch.long), ValueError),  # shape
        (torch.zeros(2, 1, dtype=torch.long), ValueError),  # shape
        (torch.zeros(2), TypeError),  # dtype
        (torch.tensor([0, 6]), ValueError),  # out of range
        (torch.tensor([-1, 0]), ValueError),
    ]:
        with pytest.raises(error):
            env.step(td.set("action", action))
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.step(td.set("action", torch.zeros(2, dtype=torch.long)))


def test_done_copy_must_be_reset():
    env = envs.make("atari/pong", num_envs=1, seed=0, max_episode_frames=8)
    td = env.reset().set("action", torch.zeros(1, dtype=torch.long))
    td = env.step(td)
    td = env.step(td.set("action", torch.zeros(1, dtype=torch.long)))
    assert td["next", "truncated"].all()
    with pytest.raises(RuntimeError, match="reset them"):
        env.step(td.set("action", torch.zeros(1, dtype=torch.long)))
    env.close()


def test_human_normalized():
    assert human_normalized("pong", -20.7) == pytest.approx(0.0)
    assert human_normalized("atari/pong", 14.6) == pytest.approx(1.0)
    assert len(ATARI_100K_GAMES) == 26
    with pytest.raises(KeyError):
        human_normalized("tetris", 1.0)


def test_the_start_evaluation_of_an_untrained_agent_on_breakout_is_short():
    """The README's ALE example: an untrained discrete SAC evaluated on Breakout. With the evaluation's
    default policy for discrete actions (sampled actions) it presses FIRE and its episodes end; the
    greedy mode of an untrained policy may never fire and play to the 108k-frame cap."""
    from jepa_agents.agents import make_agent
    from jepa_agents.train.config import compose
    from jepa_agents.train.evaluate import EvalPolicy, evaluate

    cfg = compose(["env=atari/breakout", "agent=discrete_sac", "train=atari100k", "device=cpu"])
    env = envs.make("atari/breakout", num_envs=2, seed=0, frame_stack=4, image_size=84, protocol="atari100k")
    agent = make_agent(cfg, env, torch.device("cpu"))
    steps = 0

    class Counted:
        def act(self, obs, eval_mode):
            nonlocal steps
            steps += 1
            assert steps < 3000, "the start evaluation did not end within 3,000 steps per copy"
            return policy.act(obs, eval_mode)

    policy = EvalPolicy(agent, env.action_spec, cfg.eval.policy, cfg.eval.epsilon)
    assert policy.policy == "sample"
    metrics, _ = evaluate(Counted(), env, 2, seed=0)
    assert metrics["eval/episode_length"] > 0
    env.close()
