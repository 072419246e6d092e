"""The torch cart-pole and pendulum follow dm_control's trajectories and rewards.

Each test takes the torch env's first state, copies it into dm_control's physics, applies the same
action sequence to both and compares states and rewards at every step. Measured (float32 torch vs
float64 MuJoCo, 1000 steps): cart-pole drift <= 2.3e-4 (including slider-limit hits), rewards within
1.5e-5; pendulum drift <= 5e-6, identical rewards. The tests run 400 steps with margins of ~10x.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from envs.torch_control import cartpole, reacher

suite = pytest.importorskip("dm_control.suite")

STEPS = 400
CASES = {  # torch task -> (dm_control domain, task, state tolerance, reward tolerance)
    "cartpole_balance": ("cartpole", "balance", 1e-3, 1e-4),
    "cartpole_swingup": ("cartpole", "swingup", 1e-3, 1e-4),
    "pendulum_swingup": ("pendulum", "swingup", 1e-4, 0.0),
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _actions(steps: int, dim: int) -> np.ndarray:
    """A drifting random walk clipped to [-1, 1]: it drives the cart into its slider limits."""
    walk = np.cumsum(np.random.default_rng(0).uniform(-1, 1, size=(steps, dim)), axis=0) * 0.3
    return np.clip(walk, -1, 1).astype(np.float32)


@pytest.mark.parametrize("name", list(CASES))
def test_trajectory_and_rewards_match_dm_control(name):
    domain, task, state_tol, reward_tol = CASES[name]
    env = envs.make(f"torch/{name}", num_envs=1, seed=3, from_pixels=False)
    td = env.reset()
    dm = suite.load(domain, task, task_kwargs={"random": 0})
    dm.reset()
    nq = dm.physics.model.nq
    with dm.physics.reset_context():
        dm.physics.data.qpos[:] = td["physics"][0, :nq].numpy()
        dm.physics.data.qvel[:] = td["physics"][0, nq : 2 * nq].numpy()
    drift, reward_gap, hit_limit = 0.0, 0.0, False
    for action in _actions(STEPS, 1):
        td = env.step(td.set("action", torch.from_numpy(action)[None]))["next"]
        time_step = dm.step(action)
        ours = td["physics"][0, : 2 * nq].double().numpy()
        drift = max(drift, np.abs(ours - np.r_[dm.physics.data.qpos, dm.physics.data.qvel]).max())
        reward_gap = max(reward_gap, abs(td["reward"].item() - time_step.reward))
        hit_limit |= domain == "cartpole" and abs(dm.physics.data.qpos[0]) > cartpole.SLIDER_RANGE
    assert drift < state_tol, f"state drift {drift:.2e}"
    assert reward_gap <= reward_tol, f"reward gap {reward_gap:.2e}"
    assert hit_limit or domain != "cartpole", "the action sequence should exercise the slider limit"


def test_state_observations_match_dm_control():
    env = envs.make("torch/cartpole_swingup", num_envs=1, seed=0, from_pixels=False)
    td = env.reset()
    dm = suite.load("cartpole", "swingup", task_kwargs={"random": 0})
    dm.reset()
    with dm.physics.reset_context():
        dm.physics.data.qpos[:] = td["physics"][0, :2].numpy()
        dm.physics.data.qvel[:] = td["physics"][0, 2:4].numpy()
    obs = dm.task.get_observation(dm.physics)
    expected = np.r_[obs["position"], obs["velocity"]]
    np.testing.assert_allclose(td["state"][0].numpy(), expected, atol=1e-6)


def test_inertias_match_mujoco():
    cart = suite.load("cartpole", "swingup").physics.model
    assert cartpole.POLE_INERTIA == pytest.approx(cart.body_inertia[2, 0], rel=1e-6)
    assert cartpole.SLIDER_INVWEIGHT0 == pytest.approx(cart.dof_invweight0[0], rel=1e-6)
    arm = suite.load("reacher", "easy").physics.model
    assert reacher.WRIST_INVWEIGHT0 == pytest.approx(arm.dof_invweight0[1], rel=1e-6)
