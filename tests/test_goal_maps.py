"""The maze goal maps: where a goal's implicit reward peaks, the critic's action gap and the policy's push
at the goal (planted models)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

from envs.torch_control.point_mass_maze import GOALS, is_free
from jepa_agents.zero_shot.goal_maps import goal_maps, rest_grid
from jepa_agents.zero_shot.td_jepa import ZeroShotModel, project_z


class Planted(ZeroShotModel):
    """Task features of the position (RBF bumps on a 5 x 5 grid, or the raw position), a successor that makes
    ``Q(s, a) = |z|² (1 + 0.1 a_x)`` and a policy that never moves: the action gap is 0.2 exactly."""

    def __init__(self, rbf: bool):
        super().__init__()
        self.obs_shape, self.rbf, self.unused = (4,), rbf, nn.Parameter(torch.zeros(()))
        xs = torch.linspace(-1, 1, 5)
        self.centers = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), -1).reshape(-1, 2)
        self.z_dim = 25 if rbf else 2

    def task_features(self, obs):
        pos = obs[:, :2]
        return torch.exp(-(torch.cdist(pos, self.centers) / 0.3).square()) if self.rbf else pos

    def infer_z_from_goal(self, goal_obs):
        return project_z(self.task_features(goal_obs))

    def successor(self, obs, action, z):
        return z * (1 + 0.1 * action[:, :1])

    def act(self, obs, z, mean=True):
        return torch.zeros(obs.shape[0], 2)


class Pushing(Planted):
    """The same features and critic, and a policy that pushes at full force along x wherever it is."""

    def act(self, obs, z, mean=True):
        return torch.tensor([[1.0, -0.3]]).expand(obs.shape[0], 2)


def test_rest_grid_holds_free_positions_only():
    states = rest_grid(39)
    assert states.shape[1] == 4 and bool(is_free(states[:, :2]).all()) and bool((states[:, 2:] == 0).all())
    assert 0.5 * 39**2 < states.shape[0] < 39**2  # the walls take some, not most


def test_a_local_reward_peaks_at_its_goal_and_a_linear_one_beyond_it():
    goals = {k: GOALS[k] for k in ("reach_bottom_left", "reach_top_right")}
    local = goal_maps(Planted(rbf=True), goals)
    assert all(row["peak_error"] < 1e-6 for row in local.values())
    assert all(row["action_gap"] == pytest.approx(0.2, rel=1e-5) for row in local.values())
    assert all(row["push_at_goal"] == 0.0 for row in local.values())  # a policy that stays
    pushing = goal_maps(Pushing(rbf=True), goals)
    assert all(row["push_at_goal"] == 1.0 and row["peak_error"] < 1e-6 for row in pushing.values())
    linear = goal_maps(Planted(rbf=False), goals)["reach_bottom_left"]  # r = -(x + y) / √2: the far corner
    assert linear["peak_error"] > 0.4 and linear["peak_x"] < -0.8 and linear["peak_y"] < -0.8


def test_the_script_refuses_what_is_not_a_maze_run(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "maps", Path(__file__).parents[1] / "scripts/zero_shot_maps.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(tmp_path)]) == 2
    assert "config.yaml does not exist" in capsys.readouterr().err


def test_settle_points_follow_the_policy():
    """A policy that stays ends where the episodes start; one that pushes along +x ends further right."""
    import envs
    from jepa_agents.zero_shot.goal_maps import settle_points

    goals = {"reach_bottom_left": GOALS["reach_bottom_left"]}
    env = envs.make("torch/point_mass_maze", num_envs=4, seed=0, device="cpu", from_pixels=False)
    start = env.reset()["state"][:, :2].mean(0)
    still = settle_points(Planted(rbf=True), env, goals, steps=20)["reach_bottom_left"]
    pushed = settle_points(Pushing(rbf=True), env, goals, steps=20)["reach_bottom_left"]
    env.close()
    assert abs(still["settle_x"] - float(start[0])) < 0.05 and pushed["settle_x"] > still["settle_x"] + 0.05
    goal = torch.tensor(GOALS["reach_bottom_left"])
    end = torch.tensor([still["settle_x"], still["settle_y"]])
    assert still["settle_error"] == pytest.approx(float((end - goal).norm()), abs=1e-6)
