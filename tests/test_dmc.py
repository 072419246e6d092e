"""DMC family: conformance, frame stack, seeding, workers, bad input, missing GL backend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

pytest.importorskip("dm_control")

import envs  # noqa: E402
from envs import dmc_tasks  # noqa: E402

SHORT = dict(episode_length=8, num_workers=0)  # 4 agent steps at action repeat 2


def test_names_match_suite():
    assert set(dmc_tasks.STOCK_TASKS) == {f"{d}_{t}" for d, t in dmc_tasks.import_suite().ALL_TASKS}
    names = envs.list_envs("dmc")
    assert "dmc/walker_walk" in names and "dmc/point_mass_maze_reach_top_left" in names
    assert dmc_tasks.split_name("point_mass_maze_loop") == ("point_mass_maze", "loop")
    assert dmc_tasks.split_name("humanoid_CMU_run") == ("humanoid_CMU", "run")


@pytest.mark.parametrize(
    "task", ["walker_walk", "cartpole_swingup", "quadruped_jump", "point_mass_maze_reach_top_left"]
)
def test_conformance(task):
    from torchrl.envs.utils import check_env_specs

    env = envs.make(f"dmc/{task}", num_envs=2, seed=0, **SHORT)
    check_env_specs(env)
    steps = 8 // env.action_repeat
    td = env.reset()
    assert td["pixels"].shape == (2, 9, 64, 64) and td["pixels"].dtype == torch.uint8
    assert torch.equal(td["pixels"][:, :3], td["pixels"][:, 6:])  # the reset frame fills the stack
    episodes = 0
    for t in range(3 * steps):
        td["action"] = env.action_spec.rand()
        out, td = env.step_and_maybe_reset(td)
        nxt = out["next"]
        for key in ("state", "physics", "reward"):
            assert nxt[key].dtype == torch.float32 and torch.isfinite(nxt[key]).all()
        assert ((nxt["reward"] >= 0) & (nxt["reward"] <= env.action_repeat)).all()
        assert not nxt["terminated"].any()
        assert nxt["truncated"].all() == ((t + 1) % steps == 0)
        assert torch.equal(nxt["pixels"][:, :6], out["pixels"][:, 3:])  # frames shift by one
        episodes += int(nxt["done"].sum())
    assert episodes == 6
    env.close()


def test_defaults_and_state_only():
    env = envs.make("dmc/cartpole_swingup", num_envs=1, seed=0, from_pixels=False, episode_length=16)
    assert env.action_repeat == 8 and "pixels" not in env.observation_spec.keys()
    rollout = env.rollout(5, break_when_any_done=False)
    assert rollout["next", "done"].sum() == 2 and rollout["state"].shape == (1, 5, 5)
    env.close()


def test_seeding():
    def first(seed):
        env = envs.make("dmc/walker_walk", num_envs=2, seed=seed, **SHORT)
        td = env.reset()
        env.close()
        return td

    a, b, c = first(1), first(1), first(2)
    assert torch.equal(a["pixels"], b["pixels"]) and torch.equal(a["state"], b["state"])
    assert not torch.equal(a["state"], c["state"])
    assert not torch.equal(a["state"][0], a["state"][1])  # copies get different seeds


def test_workers_match_in_process_and_report_death():
    kwargs = dict(num_envs=3, seed=5, episode_length=6, from_pixels=True, image_size=32)
    local = envs.make("dmc/point_mass_maze_loop", num_workers=0, **kwargs)
    pool = envs.make("dmc/point_mass_maze_loop", num_workers=2, **kwargs)
    torch.manual_seed(0)
    actions = torch.rand(6, 3, 2) * 2 - 1
    td_l, td_p = local.reset(), pool.reset()
    assert torch.equal(td_l["pixels"], td_p["pixels"])
    for a in actions:
        out_l, td_l = local.step_and_maybe_reset(td_l.set("action", a))
        out_p, td_p = pool.step_and_maybe_reset(td_p.set("action", a))
        assert torch.equal(out_l["next", "physics"], out_p["next", "physics"])
        assert torch.equal(out_l["next", "reward"], out_p["next", "reward"])
        assert torch.equal(out_l["next", "pixels"], out_p["next", "pixels"])
    local.close()
    os.kill(pool._sim.processes[1].pid, signal.SIGKILL)
    pool._sim.processes[1].join(timeout=30)
    with pytest.raises(RuntimeError, match=r"dmc/point_mass_maze_loop: worker 1 \(copy 1, seed 6\) died"):
        pool.step(td_p.set("action", actions[0]))
    pool.close()


def test_stopped_worker_times_out_with_its_name_never_hangs():
    env = envs.make("dmc/cartpole_balance", num_envs=2, seed=3, from_pixels=False, worker_timeout_s=2.0)
    assert env._sim.info()["state_dim"] == 5
    td = env.reset()
    os.kill(env._sim.processes[0].pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        with pytest.raises(RuntimeError, match=r"dmc/cartpole_balance: .*did not answer within 2 s"):
            env.step(td.set("action", torch.zeros(2, 1)))
        assert time.monotonic() - start < 30
    finally:
        os.kill(env._sim.processes[0].pid, signal.SIGCONT)
        env.close()


def test_bad_input():
    with pytest.raises(ValueError, match="Did you mean: dmc/walker_walk"):
        envs.make("dmc/walker_wlak")
    with pytest.raises(ValueError, match="num_envs"):
        envs.make("dmc/walker_walk", num_envs=0)
    with pytest.raises(ValueError, match="unknown option"):
        envs.make("dmc/walker_walk", frameskip=2)
    with pytest.raises(ValueError, match="image_size"):
        envs.make("dmc/walker_walk", image_size=0)
    env = envs.make("dmc/walker_walk", num_envs=2, seed=0, from_pixels=False, **SHORT)
    td = env.reset()
    for action, error in [
        (torch.zeros(2, 5), ValueError),  # shape
        (torch.zeros(2, 6, dtype=torch.long), TypeError),  # dtype
        (torch.full((2, 6), 1.5), ValueError),  # out of bounds
        (torch.full((2, 6), float("nan")), ValueError),
    ]:
        with pytest.raises(error):
            env.step(td.set("action", action))
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.step(td.set("action", torch.zeros(2, 6)))


def test_missing_gl_backend_subprocess():
    """GLFW without a display: imports fine, cannot create a context -> one GLBackendError."""
    code = "import envs; envs.make('dmc/cartpole_balance', num_workers=0)"
    environ = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    environ["MUJOCO_GL"] = "glfw"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code], env=environ, cwd=root, capture_output=True, text=True)
    if proc.returncode == 0:
        pytest.skip("GLFW can render without a display here")
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("envs.dmc_tasks.GLBackendError") and "egl" in last and "osmesa" in last


def test_missing_gl_backend_render(monkeypatch):
    from dm_control.mujoco import Physics

    def broken(*args, **kwargs):
        raise RuntimeError("an OpenGL platform library has not been loaded into this process")

    monkeypatch.setattr(Physics, "render", broken)
    with pytest.raises(dmc_tasks.GLBackendError, match="MUJOCO_GL=.*osmesa"):
        envs.make("dmc/cartpole_balance", num_envs=1, seed=0, num_workers=0)
    state_only = envs.make("dmc/cartpole_balance", num_envs=1, seed=0, from_pixels=False)
    state_only.close()
