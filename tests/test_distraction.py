"""Distractions of the torch-native tasks change what the frames show and nothing else."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

import envs
from jepa_agents.config.errors import ConfigError
from jepa_agents.train.config import compose
from jepa_agents.train.online import make_env

TASKS = ["cartpole_swingup", "pendulum_swingup", "reacher", "point_mass_maze"]
ALL = {"color": 0.5, "background": 0.7, "camera": 0.5}


def _rollout(task: str, steps: int, **options):
    """Physics, state, reward and pixels of ``steps`` steps of 3 copies with fixed actions; copy 0 is
    reset by hand at step 4 (a partial reset)."""
    env = envs.make(f"torch/{task}", num_envs=3, seed=1, device="cpu", action_repeat=4, **options)
    gen = torch.Generator().manual_seed(0)
    td = env.reset()
    out = {"physics": [td["physics"]], "state": [td["state"]], "pixels": [td["pixels"]], "reward": []}
    for t in range(steps):
        td["action"] = torch.rand(3, env.action_spec.shape[-1], generator=gen) * 2 - 1
        step, td = env.step_and_maybe_reset(td)
        if t == 4:
            td = env.reset(td.set("_reset", torch.tensor([[True], [False], [False]])))
        for key in ("physics", "state", "pixels"):
            out[key].append(td[key])
        out["reward"].append(step["next", "reward"])
    return env, {k: torch.stack(v) for k, v in out.items()}


@pytest.mark.parametrize("task", TASKS)
def test_the_task_is_unchanged_and_the_frames_are_not(task, one_thread):
    _, clean = _rollout(task, 8)
    _, noisy = _rollout(task, 8, distraction=ALL)
    for key in ("physics", "state", "reward"):
        assert torch.equal(clean[key], noisy[key]), key
    assert not torch.equal(clean["pixels"], noisy["pixels"])
    _, off = _rollout(task, 8, distraction={"color": 0.0})  # strength 0: the plain frames, bit for bit
    assert torch.equal(off["pixels"], clean["pixels"])


def test_each_copy_and_episode_gets_its_own_distraction(one_thread):
    env = envs.make(
        "torch/cartpole_swingup", num_envs=4, seed=0, device="cpu", distraction={"background": 1.0}
    )
    td = env.reset()
    frames = td["pixels"][:, -3:].float()  # [4, 3, H, W]
    for i in range(4):
        for j in range(i + 1, 4):
            assert (frames[i] - frames[j]).abs().mean() > 10  # different textures per copy
    params = env._distraction.params["tex_color"].clone()
    env.reset(td.set("_reset", torch.tensor([[True], [False], [False], [False]])))
    fresh = env._distraction.params["tex_color"]
    assert not torch.equal(fresh[0], params[0]) and torch.equal(fresh[1:], params[1:])  # new episode, new one
    # the texture moves from step to step
    later = env._distraction.texture(torch.full((4,), 10))
    assert not torch.allclose(later, env._distraction.texture(torch.zeros(4, dtype=torch.long)))


def test_colour_and_camera_change_per_episode_and_heldout_textures_differ(one_thread):
    env = envs.make(
        "torch/reacher", num_envs=64, seed=0, device="cpu", distraction={"color": 1.0, "camera": 1.0}
    )
    env.reset()
    shifts, view = env._distraction.params["fg_shift"], env._distraction.params["camera"]
    assert shifts.abs().max() <= 0.5 * 255 and shifts.abs().max() > 0.4 * 255  # up to ±0.5 of full scale
    assert view[:, 0].abs().max() <= torch.deg2rad(torch.tensor(15.0)) and view.std(0).min() > 0
    train = envs.make("torch/reacher", num_envs=64, seed=0, device="cpu", distraction={"background": 1.0})
    held = envs.make(
        "torch/reacher", num_envs=64, seed=0, device="cpu", distraction={"background": 1.0, "heldout": True}
    )
    train.reset(), held.reset()
    f_train = train._distraction.params["freq"].norm(dim=-1)
    f_held = held._distraction.params["freq"].norm(dim=-1)
    assert f_train.max() <= 4.0 + 1e-5 and f_held.min() >= 4.0 - 1e-5  # disjoint texture families


def test_resume_restores_the_distraction(one_thread):
    options = {"distraction": ALL}
    env = envs.make("torch/cartpole_swingup", num_envs=2, seed=3, device="cpu", **options)
    td = env.reset()
    action = torch.full((2, 1), 0.3)
    for _ in range(3):
        _, td = env.step_and_maybe_reset(td.set("action", action))
    saved = env.get_env_state()
    first = [env.step_and_maybe_reset(td.set("action", action))[1]["pixels"] for _ in range(2)]
    other = envs.make("torch/cartpole_swingup", num_envs=2, seed=99, device="cpu", **options)
    other.reset()
    other.set_env_state(saved)
    again = [other.step_and_maybe_reset(td.set("action", action))[1]["pixels"] for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_bad_distractions_are_refused():
    with pytest.raises(ValueError, match=r"strength in \[0, 1\]"):
        envs.make("torch/cartpole_swingup", distraction={"color": 2.0})
    with pytest.raises(ValueError, match="Unknown distraction key"):
        envs.make("torch/cartpole_swingup", distraction={"colour": 0.5})
    with pytest.raises(ValueError, match="needs from_pixels=True"):
        envs.make("torch/cartpole_swingup", from_pixels=False, distraction={"color": 0.5})
    with pytest.raises(ConfigError, match="torch-native tasks from pixels, not dmc/walker_walk"):
        compose(["env=dmc/walker_walk", "env.distraction.color=0.5"])
    with pytest.raises(ConfigError, match=r"env.distraction camera=-0.1 must be a strength in \[0, 1\]"):
        compose(["env.distraction.camera=-0.1"])


def test_training_config_builds_distracted_envs_and_heldout_evaluation(tmp_path, one_thread):
    from jepa_agents.analysis.runs import load_run

    cfg = compose(["env.distraction.background=0.5", "env.distraction.eval_heldout=true", "device=cpu"])
    train_env = make_env(cfg.env, 2, 0, torch.device("cpu"))
    eval_env = make_env(cfg.env, 2, 0, torch.device("cpu"), evaluation=True)
    assert not train_env._distraction.spec.heldout and eval_env._distraction.spec.heldout
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    (run / "scalars.csv").write_text("step,tag,value,wall_time\n0,eval/return,1.0,0.0\n")
    assert load_run(run).env() == "torch/cartpole_swingup+background0.5+heldout"  # its own panel and rows
