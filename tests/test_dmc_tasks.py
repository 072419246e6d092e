"""Zero-shot task set: stock reward match, relabeling equals online rewards, maze geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("dm_control")

import envs  # noqa: E402
from envs import dmc_tasks  # noqa: E402


def _stock_rollout(name: str, steps: int = 40):
    suite = dmc_tasks.import_suite()
    domain, task = dmc_tasks.split_name(name)
    env = suite.load(domain, task, task_kwargs={"random": 0})
    spec, rng = env.action_spec(), np.random.default_rng(0)
    env.reset()
    states, rewards = [], []
    for _ in range(steps):
        timestep = env.step(rng.uniform(spec.minimum, spec.maximum))
        states.append(dmc_tasks.physics_state(env.physics))
        rewards.append(timestep.reward)
    return np.stack(states), np.asarray(rewards)


@pytest.mark.parametrize(
    "name", ["walker_stand", "walker_walk", "walker_run", "cheetah_run", "quadruped_walk", "quadruped_run"]
)
def test_stock_tasks_match_dm_control(name):
    states, rewards = _stock_rollout(name)
    np.testing.assert_allclose(dmc_tasks.relabel(name, states), rewards, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "name",
    [
        "walker_flip",
        "walker_spin",
        "cheetah_walk_backward",
        "quadruped_jump",
        "point_mass_maze_reach_top_left",
        "point_mass_maze_loop",
    ],
)
def test_relabel_equals_online_rewards(name):
    env = envs.make(f"dmc/{name}", num_envs=2, seed=1, from_pixels=False, action_repeat=1, num_workers=0)
    rollout = env.rollout(25, break_when_any_done=False)
    env.close()
    online = rollout["next", "reward"].squeeze(-1)
    relabeled = envs.relabel(f"dmc/{name}", rollout["next", "physics"])
    assert relabeled.shape == online.shape == (2, 25) and relabeled.dtype == torch.float32
    torch.testing.assert_close(relabeled, online, atol=1e-4, rtol=0)
    assert ((relabeled >= 0) & (relabeled <= 1)).all()


def test_relabel_other_task_of_domain_and_errors():
    states, _ = _stock_rollout("walker_walk", steps=5)
    flips = envs.relabel("dmc/walker_walk", torch.from_numpy(states).float(), task="walker_flip")
    assert flips.shape == (5,)
    with pytest.raises(ValueError, match="shape"):
        envs.relabel("dmc/walker_walk", torch.zeros(3, 7))
    with pytest.raises(ValueError, match="relabeling supports"):
        envs.relabel("dmc/cartpole_swingup", torch.zeros(3, 5))


def test_maze_walls_and_doorways():
    env = dmc_tasks.load("point_mass_maze_reach_top_right", seed=0)

    def push_right(y: float) -> float:
        env.reset()
        with env.physics.reset_context():
            env.physics.data.qpos[:] = (-0.1, y)
        for _ in range(150):
            env.step(np.array([1.0, 0.0]))
        return float(env.physics.data.qpos[0])

    assert push_right(0.05) < 0.0  # blocked by the wall at x = 0
    assert push_right(0.15) > 0.1  # through the doorway into the top-right room


def test_maze_start_room_and_reward_ranges():
    env = envs.make("dmc/point_mass_maze_reach_far", num_envs=4, seed=0, from_pixels=False, num_workers=0)
    td = env.reset()
    xy = td["state"][:, :2]
    assert ((xy[:, 0] < 0) & (xy[:, 1] > 0)).all()  # top-left room
    env.close()
    far = torch.tensor([[0.25, -0.25, 0, 0, 0, 0], [0.0, 0.0, 0, 0, 0, 0]])
    assert envs.relabel("dmc/point_mass_maze_reach_far", far).tolist() == [1.0, 0.0]
