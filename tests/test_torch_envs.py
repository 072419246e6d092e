"""Conformance, bad-input and relabel tests of the native-torch control tasks (``envs/torch_control``)."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from torchrl.envs.utils import check_env_specs

import envs
from envs.torch_control import NAMES, TASKS, _domain, point_mass_maze
from envs.torch_control.rewards import tolerance

TORCH_NAMES = [f"torch/{name}" for name in NAMES]
DM_STYLE = ["torch/cartpole_balance", "torch/cartpole_swingup", "torch/pendulum_swingup", "torch/reacher"]
REPEAT = 125  # 8 agent steps per episode, so short rollouts cross episode boundaries
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")],
    ),
]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_all_tasks_registered():
    assert envs.list_envs("torch") == sorted(TORCH_NAMES)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", TORCH_NAMES)
def test_specs_and_rollout_with_auto_reset(name, device):
    env = envs.make(name, num_envs=3, seed=0, device=device, action_repeat=REPEAT)
    check_env_specs(env)
    assert env.action_repeat == REPEAT and env.max_episode_steps == 8
    rollout = env.rollout(20, break_when_any_done=False)  # [3, 20]
    nxt = rollout["next"]
    assert nxt["pixels"].dtype == torch.uint8 and nxt["pixels"].shape == (3, 20, 3, 64, 64)
    assert nxt["state"].dtype == torch.float32 and torch.isfinite(nxt["state"]).all()
    assert nxt["physics"].dtype == torch.float32 and torch.isfinite(nxt["physics"]).all()
    assert nxt["reward"].shape == (3, 20, 1) and nxt["reward"].dtype == torch.float32
    truncated = torch.zeros(3, 20, 1, dtype=torch.bool, device=device)
    truncated[:, 7::8] = True
    assert torch.equal(nxt["truncated"], truncated) and torch.equal(nxt["done"], truncated)
    assert not nxt["terminated"].any()
    # after a truncation the next root observation is a fresh episode, not the truncated state
    assert not torch.equal(rollout["physics"][:, 8], nxt["physics"][:, 7])
    assert torch.equal(rollout["physics"][:, 7], nxt["physics"][:, 6])
    if name in DM_STYLE:
        assert (nxt["reward"] >= 0).all() and (nxt["reward"] <= REPEAT).all()


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_seed_reproducibility(name):
    def first(seed):
        return envs.make(name, num_envs=4, seed=seed).reset()

    a, b, c = first(0), first(0), first(1)
    assert torch.equal(a["pixels"], b["pixels"]) and torch.equal(a["state"], b["state"])
    assert not torch.equal(a["state"], c["state"])
    assert not torch.equal(a["state"][0], a["state"][1])  # copies differ from one another


def test_options_shapes():
    env = envs.make("torch/cartpole_swingup", num_envs=2, seed=0, image_size=84, frame_stack=3)
    td = env.reset()
    assert td["pixels"].shape == (2, 9, 84, 84)
    assert torch.equal(td["pixels"][:, :3], td["pixels"][:, 6:])  # a reset fills the stack with one frame
    nxt = env.step(td.set("action", torch.ones(2, 1)))["next"]
    assert torch.equal(nxt["pixels"][:, :6], td["pixels"][:, 3:])  # the stack shifts by one frame
    no_pixels = envs.make("torch/reacher", num_envs=2, seed=0, from_pixels=False).reset()
    assert "pixels" not in no_pixels.keys() and no_pixels["state"].shape == (2, 8)


def test_partial_reset_only_touches_masked_copies():
    env = envs.make("torch/pendulum_swingup", num_envs=3, seed=0, from_pixels=False)
    td = env.reset()
    td = env.step(td.set("action", torch.ones(3, 1)))["next"]
    mask = torch.tensor([[True], [False], [True]])
    after = env.reset(td.clone().set("_reset", mask))
    assert torch.equal(after["physics"][1], td["physics"][1])
    assert not torch.equal(after["physics"][0], td["physics"][0])
    assert (after["physics"][[0, 2], 1] == 0).all()  # fresh pendulums start at rest


def test_bad_construction():
    with pytest.raises(ValueError, match="Unknown environment"):
        envs.make("torch/cartpole_swingdown")
    with pytest.raises(ValueError, match="num_envs"):
        envs.make("torch/cartpole_swingup", num_envs=0)
    with pytest.raises(ValueError, match="Unknown option"):
        envs.make("torch/cartpole_swingup", colour="red")
    with pytest.raises(ValueError, match="Unknown option"):
        envs.make("torch/cartpole_swingup", task="reach_far")
    with pytest.raises(ValueError, match="task='reach_moon'"):
        envs.make("torch/point_mass_maze", task="reach_moon")
    with pytest.raises(ValueError, match="frame_stack"):
        envs.make("torch/reacher", frame_stack=0)
    with pytest.raises(ValueError, match="from_pixels"):
        envs.make("torch/reacher", from_pixels="yes")


@pytest.mark.parametrize(
    "action, error, message",
    [
        (torch.zeros(2, 3), ValueError, r"shape \[2, 2\], got \[2, 3\]"),
        (torch.zeros(2, 2, dtype=torch.float64), TypeError, "float32, got torch.float64"),
        (torch.zeros(2, 2, device="meta"), ValueError, "device cpu, got meta"),
        (torch.tensor([[0.0, float("nan")], [0.0, 0.0]]), ValueError, "NaN or infinite"),
        (torch.tensor([[0.0, float("inf")], [0.0, 0.0]]), ValueError, "NaN or infinite"),
    ],
)
def test_bad_actions(action, error, message):
    env = envs.make("torch/reacher", num_envs=2, seed=0, from_pixels=False)
    env.reset()
    with pytest.raises(error, match=message):
        env.step(TensorDict({"action": action}, batch_size=[2]))


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_relabel_matches_online_rewards(name):
    for task in TASKS[name.split("/")[1]][:3]:
        options = {"task": task} if len(TASKS[name.split("/")[1]]) > 1 else {}
        env = envs.make(name, num_envs=4, seed=0, from_pixels=False, **options)
        rollout = env.rollout(30)
        relabeled = envs.relabel(name, rollout["next", "physics"], task=task)
        torch.testing.assert_close(relabeled, rollout["next", "reward"][..., 0])


def test_relabel_goal_tasks_and_errors():
    # a maze state sitting on a goal scores ~1 there and ~0 on the other goals
    physics = torch.tensor([[0.5, 0.5, 0.0, 0.0, 0.0, 0.0]])
    assert envs.relabel("torch/point_mass_maze", physics, task="reach_top_right").item() == pytest.approx(1.0)
    assert envs.relabel("torch/point_mass_maze", physics, task="reach_top_left").item() < 1e-6
    assert envs.relabel("torch/point_mass_maze", physics).item() == 0.0  # reward-free by default
    with pytest.raises(ValueError, match="Unknown torch task"):
        envs.relabel("torch/point_mass_maze", physics, task="reach_moon")
    with pytest.raises(ValueError, match=r"shape \[..., 8\]"):
        envs.relabel("torch/reacher", physics)


def test_maze_walls_hold():
    env = envs.make("torch/point_mass_maze", num_envs=64, seed=0, from_pixels=False)
    td = env.reset()
    generator = torch.Generator().manual_seed(0)
    for step in range(300):
        if step % 25 == 0:
            action = torch.rand(64, 2, generator=generator) * 2 - 1
        td = env.step(td.set("action", action))["next"]
        pos = td["physics"][:, :2]
        for cx, cy, hx, hy in point_mass_maze.WALLS:
            centre, half = torch.tensor([cx, cy]), torch.tensor([hx, hy])
            outside = ((pos - centre).abs() - half).clamp(min=0).norm(dim=-1)
            assert (outside > point_mass_maze.RADIUS - 1e-4).all()
    assert (pos.abs() < 1.0).all()
    assert (pos > 0).any(dim=-1).any()  # some copies went through a doorway out of the start room


@pytest.mark.parametrize("sigmoid, value", [("gaussian", 0.1), ("linear", 0.0), ("quadratic", 0.0)])
def test_tolerance_matches_dm_control(sigmoid, value):
    rewards = pytest.importorskip("dm_control.utils.rewards")
    x = torch.linspace(-4, 4, 101, dtype=torch.float64)
    ours = tolerance(x, bounds=(-0.5, 1.0), margin=2.0, sigmoid=sigmoid, value_at_margin=value)
    theirs = rewards.tolerance(
        x.numpy(), bounds=(-0.5, 1.0), margin=2.0, sigmoid=sigmoid, value_at_margin=value
    )
    torch.testing.assert_close(ours, torch.from_numpy(theirs))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name):
    """Same start state, same actions: physics and frames agree across devices."""
    domain = _domain(name)
    task = TASKS[name][0]
    physics = domain.initial_physics(task, torch.Generator().manual_seed(0), 4, torch.device("cpu"))
    action = torch.linspace(-1, 1, 4 * domain.ACTION_DIM).view(4, domain.ACTION_DIM)
    results = {}
    for device in ("cpu", "cuda"):
        state = physics.to(device)
        for _ in range(50):
            state = domain.advance(state, action.to(device))
        results[device] = (state.cpu(), domain.Scene(task, 64, torch.device(device))(state).cpu())
    torch.testing.assert_close(results["cuda"][0], results["cpu"][0], atol=1e-3, rtol=1e-3)
    assert (results["cuda"][1].int() - results["cpu"][1].int()).abs().float().mean() < 1.0


def test_env_state_snapshot_restores_the_future_exactly():
    env = envs.make(
        "torch/cartpole_swingup", num_envs=3, seed=1, from_pixels=True, image_size=32, frame_stack=2
    )
    td = env.reset()
    actions = [torch.rand(3, 1, generator=torch.Generator().manual_seed(i)) * 2 - 1 for i in range(300)]
    for a in actions[:100]:
        td["action"] = a
        _, td = env.step_and_maybe_reset(td)
    snapshot, obs = env.get_env_state(), td.clone()

    def future(e, td):
        out = []
        for a in actions[100:]:
            td["action"] = a
            step, td = e.step_and_maybe_reset(td)
            out.append(step["next"].clone())
        return torch.stack(out)

    expected = future(env, td)
    other = envs.make(
        "torch/cartpole_swingup", num_envs=3, seed=99, from_pixels=True, image_size=32, frame_stack=2
    )
    other.reset()
    other.set_env_state(snapshot)
    got = future(other, obs)
    assert (got == expected).all()
