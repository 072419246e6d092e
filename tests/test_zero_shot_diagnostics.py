"""Zero-shot diagnostics and results: the Monte-Carlo successor-feature check, the shared results CSV and
the reference presets."""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict
from torch import Tensor, nn

import envs
from jepa_agents.config.load import compose
from jepa_agents.infra.rng import rng_state
from jepa_agents.zero_shot.agents import build_model
from jepa_agents.zero_shot.config import ZERO_SHOT
from jepa_agents.zero_shot.results import COLUMNS, method_label, read_rows, summary, write_results
from jepa_agents.zero_shot.successor_check import horizon, successor_check
from jepa_agents.zero_shot.td_jepa import ZeroShotModel


class _Dataset:
    """``sample(n)``: ``n`` random maze-shaped next observations (all the check reads)."""

    def __init__(self, n: int = 256):
        self.next_state = torch.randn(n, 4)

    def __len__(self) -> int:
        return self.next_state.shape[0]

    def sample(self, n: int) -> TensorDict:
        idx = torch.randint(len(self), (n,))
        return TensorDict({"next": {"observation": {"state": self.next_state[idx]}}}, batch_size=[n])


class _KnownValue(ZeroShotModel):
    """A model whose Monte-Carlo value is known: ``task_features(s) = s[:, :2]`` and the action is zero, so
    the reward of ``z`` along an episode is ``s_t[:2]·z``; ``successor`` predicts ``scale`` times a
    value that only depends on the start, which makes the check's ratio exactly ``scale`` when the
    point mass does not move (the maze at rest with zero action)."""

    def __init__(self, scale: float, discount: float, steps: int):
        super().__init__()
        self.z_dim, self.scale = 2, scale
        self.geometric = (1 - discount**steps) / (1 - discount)
        self.param = nn.Parameter(torch.zeros(1))

    def task_features(self, obs: Tensor) -> Tensor:
        return obs[..., :2]

    def embed(self, obs: Tensor) -> Tensor:
        return obs

    def act(self, obs: Tensor, z: Tensor, mean: bool = True) -> Tensor:
        return torch.zeros(obs.shape[0], 2)

    def reward_weights(self, next_obs: Tensor, rewards: Tensor) -> Tensor:
        feats = self.task_features(next_obs)
        return torch.linalg.lstsq(feats, rewards).solution.T  # [k, 2] = z exactly

    def successor(self, obs: Tensor, action: Tensor, z: Tensor) -> Tensor:
        return self.scale * self.geometric * self.task_features(obs)


@pytest.mark.parametrize("scale", [1.0, 0.25])
def test_successor_check_measures_the_predicted_over_rolled_out_value(scale):
    discount = 0.9
    steps = horizon(discount)
    assert discount**steps <= 0.01 < discount ** (steps - 1)
    env = envs.make("torch/point_mass_maze", num_envs=6, seed=0, device="cpu", start="uniform")
    model, data = _KnownValue(scale, discount, steps), _Dataset()
    before = rng_state()
    out = successor_check(model, env, data, "state", discount, seed=3)
    assert out["ratio"] == pytest.approx(scale, rel=1e-3)
    assert out["corr"] == pytest.approx(1.0, abs=1e-4)
    assert out["q_pred"] == pytest.approx(scale * out["q_mc"], rel=1e-3, abs=1e-5)
    assert torch.equal(rng_state()["torch"], before["torch"])  # RNG-neutral
    # a wrong discount (the rollout's weights differ from the prediction's) is visible
    wrong = successor_check(_KnownValue(1.0, 0.95, horizon(0.95)), env, data, "state", discount, seed=3)
    assert wrong["ratio"] > 1.2


def test_successor_check_runs_on_both_models():
    env = envs.make("torch/point_mass_maze", num_envs=4, seed=0, device="cpu")
    for preset in ("td_jepa_ortho", "fb"):
        cfg = compose(["dataset=unused", f"zs_agent={preset}"], ZERO_SHOT)
        model = build_model(cfg.agent, (4,), 2)
        out = successor_check(model, env, _Dataset(), "state", 0.98, seed=0, max_steps=20)
        assert set(out) == {"ratio", "corr", "q_pred", "q_mc"} and all(math.isfinite(v) for v in out.values())


def test_results_csv_rows_are_replaced_not_duplicated_and_summarized(tmp_path):
    path = tmp_path / "results" / "zero_shot.csv"
    for seed, value in enumerate([1.0, 2.0, 3.0, 4.0, 5.0]):
        write_results(path, "maze", "fb", seed, 100, {"reach_a": value, "mean": value})
    write_results(path, "maze", "fb", 0, 100, {"reach_a": 6.0, "mean": 6.0})  # re-evaluation of seed 0
    write_results(path, "maze", "td_jepa_sigreg", 0, 100, {"reach_a": float("nan"), "mean": 1.0})
    rows = read_rows(path)
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    assert len(rows) == 12 and not any(p.suffix == ".tmp" for p in path.parent.iterdir())
    fb = {r["task"]: r for r in summary(rows) if r["method"] == "fb"}
    assert fb["reach_a"]["seeds"] == 5 and fb["reach_a"]["mean"] == pytest.approx(4.0)  # 6, 2, 3, 4, 5
    assert fb["reach_a"]["low"] < 4.0 < fb["reach_a"]["high"]
    td = [r for r in summary(rows) if r["method"] == "td_jepa_sigreg"]
    assert [r["task"] for r in td] == ["mean"]  # the NaN task is left out
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a zero-shot results file"):
        read_rows(tmp_path / "other.csv")


def test_method_labels_tell_the_presets_and_their_normalization_apart():
    """Rows of runs that differ in the encoders' normalization must not share a label in the results."""

    def label(*overrides, inference="own"):
        return method_label(compose(["dataset=unused", *overrides], ZERO_SHOT).agent, inference)

    assert label("zs_agent=td_jepa_ortho") == "td_jepa_orthonormality"
    assert label("zs_agent=td_jepa_sigreg") == "td_jepa_sigreg_sphere"
    assert label("zs_agent=td_jepa_sigreg", inference="mean") == "td_jepa_sigreg_sphere+mean_z"
    assert label("zs_agent=td_jepa_sigreg", "agent.encoder_norm=false") == "td_jepa_sigreg"
    assert (
        label("zs_agent=td_jepa_ortho", "agent.encoder_norm=false") == "td_jepa_orthonormality_unnormalized"
    )
    assert label("zs_agent=fb") == label("zs_agent=fb", inference="mean") == "fb"
    assert label("zs_agent=fb", "agent.network=two_stream") == "fb_two_stream"
    assert label("zs_agent=td_jepa_ortho", "agent.network=two_stream", inference="mean") == (
        "td_jepa_orthonormality_two_stream+mean_z"
    )


def test_reference_presets_have_a_linear_policy_side_encoder():
    for preset, discount, lr_actor in (
        ("td_jepa_paper", 0.98, 1e-4),
        ("td_jepa_maze_paper", 0.99, 1e-6),
        ("fb_paper", 0.98, 1e-4),
        ("fb_maze_paper", 0.99, 1e-6),
    ):
        cfg = compose(["dataset=unused", f"zs_agent={preset}"], ZERO_SHOT).agent
        assert (cfg.discount, cfg.lr_actor, cfg.tau_encoder, cfg.batch_size) == (
            discount,
            lr_actor,
            0.001,
            1024,
        )
        assert cfg.network == "two_stream"  # the reference's ForwardMap / Actor layout
        model = build_model(cfg, (4,), 2)
        side = model.phi_encoder if cfg.name == "td_jepa" else model.forward_encoder
        other = model.psi_encoder if cfg.name == "td_jepa" else model.backward_map
        assert sum(isinstance(m, nn.Linear) for m in side.modules()) == 1  # linear φ / e
        assert sum(isinstance(m, nn.Linear) for m in other.modules()) == 3  # 2 x 256 hidden


def test_mean_z_inference_rule_for_td_jepa():
    cfg = compose(["dataset=unused", "zs_agent=td_jepa_ortho"], ZERO_SHOT).agent
    torch.manual_seed(0)
    model = build_model(cfg, (4,), 2)
    obs = torch.randn(500, 4)
    rewards = (obs[:, 0] > 1.0).float()  # a sparse reward
    feats = model.task_features(obs)
    want = (rewards[:, None] * feats).mean(0)
    z = model.infer_z_from_rewards(obs, rewards, rule="mean")
    torch.testing.assert_close(z, math.sqrt(cfg.z_dim) * want / want.norm())
    lstsq = model.infer_z_from_rewards(obs, rewards)  # the method's own rule: least squares
    assert not torch.allclose(z, lstsq)
    with pytest.raises(ValueError, match="unknown z inference rule"):
        model.infer_z_from_rewards(obs, rewards, rule="median")
    with pytest.raises(Exception, match="z_inference"):
        compose(["dataset=unused", "eval.z_inference=median"], ZERO_SHOT)
