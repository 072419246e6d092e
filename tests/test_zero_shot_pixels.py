"""Zero-shot RL from pixels: the three learners end to end on maze frames (collect -> train -> eval, goal
rows from a goal frame), the pixel path computing the state path's losses when its encoder reads the same
features, and the random shift acting on training frames only."""

from __future__ import annotations

import copy
import csv

import pytest
import torch
from torch import nn

from jepa_agents.config.load import compose
from jepa_agents.zero_shot import td_jepa
from jepa_agents.zero_shot.agents import make_zero_shot_agent
from jepa_agents.zero_shot.cli import collect_main, train_main
from jepa_agents.zero_shot.config import ZERO_SHOT

pytestmark = pytest.mark.usefixtures("one_thread")
PRESETS = ("td_jepa_ortho", "td_jepa_sigreg", "fb")
PIXELS = ["env.from_pixels=true", "env.image_size=16", "+env.options.frame_stack=3"]


def test_three_learners_from_pixels_end_to_end(tmp_path):
    ds, common = tmp_path / "ds", ["device=cpu", "num_threads=1"]
    collect = [f"dataset={ds}", "zs_explorer=random", "start=uniform", "num_transitions=600", "num_envs=20",
               "progress_bar=false", *PIXELS, *common]  # fmt: skip
    assert collect_main(collect) == 0
    results = tmp_path / "results.csv"
    for preset in PRESETS:
        train = [
            f"dataset={ds}", f"run_dir={tmp_path / preset}", f"zs_agent={preset}", "agent.obs_key=pixels",
            "agent.cnn=drq", "agent.augment_pad=1", "agent.batch_size=16", "train.num_updates=3",
            "train.log_every=1", "eval.episodes=1", "eval.max_episode_steps=10", "eval.inference_samples=200",
            "eval.tasks=[reach_top_left]", f"eval.results_csv={results}", "logging.progress_bar=false",
            *PIXELS, *common,
        ]  # fmt: skip
        assert train_main(train) == 0
    rows = list(csv.DictReader(results.open()))
    assert {r["domain"] for r in rows} == {"point_mass_maze_pixels16"}
    learned = {(r["method"], r["task"]) for r in rows if r["method"] not in ("zero_action", "random")}
    labels = {"td_jepa_orthonormality", "td_jepa_sigreg_sphere", "fb"}
    # every learner has its reward row, the mean, and the goal row whose z comes from a goal frame
    assert learned == {(m, t) for m in labels for t in ("mean", "reach_top_left", "reach_top_left@goal")}
    assert all(r["updates"] == "3" for r in rows)


def _agents(preset: str, monkeypatch, augment_pad: int = 0):
    """A state agent on features ``[4]`` and a pixel agent on ``[1, 2, 2]`` frames of the same numbers whose
    conv trunk is replaced by a flatten (the identity on those features), with equal weights."""
    overrides = [
        "dataset=unused",
        f"zs_agent={preset}",
        "agent.encoder_hidden=[16]",
        "agent.predictor_hidden=[16]",
        "agent.actor_hidden=[16]",
        f"agent.augment_pad={augment_pad}",
    ]
    cfg = compose(overrides, ZERO_SHOT)
    torch.manual_seed(0)
    states = make_zero_shot_agent(cfg.agent, [4], 2, torch.device("cpu"))
    pixel_cfg = compose([*overrides, "agent.obs_key=pixels", "agent.cnn_dim=4"], ZERO_SHOT)
    monkeypatch.setattr(td_jepa, "make_encoder", lambda kind, shape, dim: nn.Flatten(-3))
    pixels = make_zero_shot_agent(pixel_cfg.agent, [1, 2, 2], 2, torch.device("cpu"))
    pixels.load_state_dict(copy.deepcopy(states.state_dict()))  # no trunk parameters: the same keys
    return states, pixels


def _batch(obs_key: str, obs: torch.Tensor, nxt: torch.Tensor):
    from tensordict import TensorDict

    b = obs.shape[0]
    action = torch.rand(b, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1  # [B, A]
    return TensorDict(
        {"observation": {obs_key: obs}, "action": action,
         "next": {"observation": {obs_key: nxt}, "terminated": torch.zeros(b, 1, dtype=torch.bool)}},
        batch_size=[b],
    )  # fmt: skip


@pytest.mark.parametrize("preset", PRESETS)
def test_the_pixel_path_computes_the_state_losses_on_the_same_features(preset, monkeypatch):
    states, pixels = _agents(preset, monkeypatch)
    obs, nxt = torch.randn(32, 4), torch.randn(32, 4)
    for _ in range(2):  # two updates: the second one starts from the parameters the first one moved
        torch.manual_seed(5)
        a = states.update(_batch("state", obs, nxt))
        torch.manual_seed(5)
        b = pixels.update(_batch("pixels", obs.reshape(32, 1, 2, 2), nxt.reshape(32, 1, 2, 2)))
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)
    for (name, p), q in zip(states.model.named_parameters(), pixels.model.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6, msg=name)


def test_random_shift_moves_training_frames_only(monkeypatch):
    _, plain = _agents("td_jepa_ortho", monkeypatch)
    _, shifted = _agents("td_jepa_ortho", monkeypatch, augment_pad=1)
    frames = torch.randint(0, 256, (64, 1, 2, 2), dtype=torch.uint8)
    torch.manual_seed(2)
    out = shifted.augment(frames)
    assert out.dtype == torch.uint8 and not torch.equal(out, frames)  # shifted copies of the same pixels
    assert torch.equal(plain.augment(frames), frames)  # pad 0: untouched
    z = plain.model.sample_z(64)
    # acting never shifts: with equal weights, the agent with the shift acts as the one without
    torch.testing.assert_close(shifted.model.act(frames.float(), z), plain.model.act(frames.float(), z))
    a = plain.update(_batch("pixels", frames.float(), frames.float()))
    b = shifted.update(_batch("pixels", frames.float(), frames.float()))
    assert float(a["train/loss"]) != float(b["train/loss"])  # the shift reaches the losses
