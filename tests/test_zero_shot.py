"""Zero-shot RL: offline dataset format, TD-JEPA / FB losses and inference, collect -> train -> eval."""

from __future__ import annotations

import copy
import csv
import importlib.util
import math
import os
import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from tensordict import TensorDict

import envs
from jepa_agents.cli import main as cli_main
from jepa_agents.config.errors import ConfigError
from jepa_agents.config.load import compose
from jepa_agents.data.offline import DatasetError, DatasetMeta, DatasetWriter, load_dataset, spec_of
from jepa_agents.infra.checkpoint import CheckpointError
from jepa_agents.zero_shot import coverage
from jepa_agents.zero_shot.agents import build_model, make_zero_shot_agent
from jepa_agents.zero_shot.cli import collect_main, eval_main, train_main
from jepa_agents.zero_shot.collect import _episode_row, _EpisodeSplitter
from jepa_agents.zero_shot.config import COLLECT, ZERO_SHOT
from jepa_agents.zero_shot.evaluate import check_model_fits, check_tasks, domain_tasks
from jepa_agents.zero_shot.losses import fb_loss, orthonormality_loss, td_jepa_td_loss
from jepa_agents.zero_shot.tasks import TaskSpecError
from jepa_agents.zero_shot.td_jepa import DegenerateTaskError

MAZE = "torch/point_mass_maze"


pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(*overrides: str):
    return compose(["dataset=unused", *overrides], ZERO_SHOT)


def _episode(length: int, start: float = 0.0) -> TensorDict:
    """A synthetic maze-shaped episode (state 4, action 2, physics 6) with recognizable values."""
    t = torch.arange(length, dtype=torch.float32)[:, None] + start
    done = torch.zeros(length, 1, dtype=torch.bool)
    done[-1] = True
    return TensorDict(
        {
            "observation": {"state": t.expand(length, 4).clone()},
            "physics": t.expand(length, 6).clone(),
            "action": torch.zeros(length, 2),
            "next": {
                "observation": {"state": (t + 1).expand(length, 4).clone()},
                "physics": (t + 1).expand(length, 6).clone(),
                "terminated": torch.zeros(length, 1, dtype=torch.bool),
                "truncated": done,
            },
        },
        batch_size=[length],
    )


def _meta() -> DatasetMeta:
    return DatasetMeta(env=MAZE, obs_spec=spec_of(_episode(1)), action_dim=2, physics_dim=6)


def _script(name: str):
    """``scripts/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(root, lengths=(3, 5, 2)) -> None:
    writer = DatasetWriter(root, _meta())
    start = 0.0
    for n in lengths:
        writer.add_episode(_episode(n, start))
        start += 100


# ------------------------------------------------------------------------------------------------ losses
def test_td_loss_hand_computed():
    pred = torch.tensor([[[1.0, 2.0]], [[0.0, 0.0]]], requires_grad=True)  # [K=2, B=1, D=2]
    next_target = torch.tensor([[0.5, 1.0]])
    next_pred = torch.tensor([[[2.0, 0.0]], [[0.0, 2.0]]])  # mean over K: [1, 1]
    loss, metrics = td_jepa_td_loss(pred, next_target, next_pred, torch.tensor([[0.5]]))
    # y = [0.5 + 0.5, 1 + 0.5] = [1, 1.5]; member 0: 0 + 0.25, member 1: 1 + 2.25 -> mean 1.75
    assert loss.item() == pytest.approx(1.75)
    loss.backward()
    assert torch.allclose(pred.grad, torch.tensor([[[0.0, 0.5]], [[-1.0, -1.5]]]))
    # a terminal transition (discount 0) bootstraps nothing
    loss0, _ = td_jepa_td_loss(pred, next_target, next_pred, torch.zeros(1, 1))
    assert loss0.item() == pytest.approx(((0.5**2 + 1.0) + (0.25 + 1.0)) / 2)


def test_orthonormality_and_fb_loss_small_cases():
    assert orthonormality_loss(torch.eye(2))[0].item() == pytest.approx(-1.0)
    assert orthonormality_loss(torch.ones(2, 2))[0].item() == pytest.approx(0.0)  # -2 + 0.5 * 8 / 2
    F = torch.eye(2)[None]  # [1, 2, 2]
    loss, _ = fb_loss(F, torch.eye(2), torch.zeros(1, 2, 2), torch.eye(2), torch.full((2, 1), 0.9))
    assert loss.item() == pytest.approx(-1.0)  # M = I: no off-diagonal error, diagonal mean 1


# --------------------------------------------------------------------------------------------- inference
def test_lstsq_inference_recovers_planted_z():
    torch.manual_seed(0)
    cfg = _cfg("zs_agent=td_jepa_sigreg")
    model = build_model(cfg.agent, [4], 2)
    obs = torch.randn(2000, 4)
    w = torch.randn(cfg.agent.z_dim)
    rewards = model.psi(obs).detach() @ w  # r = ψ(s')ᵀ w exactly
    z = model.infer_z_from_rewards(obs, rewards)
    expected = math.sqrt(cfg.agent.z_dim) * w / w.norm()
    assert torch.allclose(z, expected, atol=1e-3)
    assert z.norm().item() == pytest.approx(math.sqrt(cfg.agent.z_dim), rel=1e-5)
    goal = model.infer_z_from_goal(obs[:3])
    assert goal.shape == (3, cfg.agent.z_dim)


@pytest.mark.parametrize("preset", ["td_jepa_ortho", "fb"])
def test_degenerate_rewards_are_reported(preset):
    model = build_model(_cfg(f"zs_agent={preset}").agent, [4], 2)
    obs = torch.randn(100, 4)
    nan = torch.zeros(100)
    nan[3] = float("nan")
    with pytest.raises(DegenerateTaskError, match="NaN"):
        model.infer_z_from_rewards(obs, nan, task="broken")
    with pytest.raises(DegenerateTaskError, match="all 100 rewards equal 0.5"):
        model.infer_z_from_rewards(obs, torch.full((100,), 0.5), task="flat")


# ---------------------------------------------------------------------------------------------- datasets
def test_dataset_roundtrip_order_and_append(tmp_path):
    root = tmp_path / "ds"
    _write(root)
    data = load_dataset(root).data
    assert len(data) == 10
    assert data["episode"].tolist() == [0] * 3 + [1] * 5 + [2] * 2
    assert data["observation", "state"][:, 0].tolist() == [0, 1, 2, 100, 101, 102, 103, 104, 200, 201]
    assert torch.equal(load_dataset(root, checksum=False).data["physics"], data["physics"])
    writer = DatasetWriter(root, _meta(), append=True)
    assert writer.add_episode(_episode(4, 300)).name == "ep_000003"
    assert load_dataset(root).meta.transitions == 14
    with pytest.raises(DatasetError, match="already holds a dataset"):
        DatasetWriter(root, _meta())


def test_dataset_damage_is_detected(tmp_path):
    root = tmp_path / "ds"
    _write(root)
    state = root / "episodes" / "ep_000001" / "observation" / "state.memmap"
    raw = state.read_bytes()
    state.write_bytes(raw[:-4])
    with pytest.raises(DatasetError, match=r"ep_000001/observation/state\.memmap is truncated"):
        load_dataset(root)
    state.write_bytes(raw[:8] + bytes([raw[8] ^ 0xFF]) + raw[9:])
    with pytest.raises(DatasetError, match=r"state\.memmap is corrupt"):
        load_dataset(root)
    state.write_bytes(raw)
    (root / "episodes" / "ep_000001").rename(root / "episodes" / "ep_000007")
    with pytest.raises(DatasetError, match="ep_000001 is missing"):
        load_dataset(root)
    (root / "meta.json").write_text('{"env": "torch/poi')
    with pytest.raises(DatasetError, match="meta.json is truncated or corrupt"):
        load_dataset(root)


def test_empty_missing_and_mismatched_datasets(tmp_path):
    with pytest.raises(DatasetError, match="is not a dataset"):
        load_dataset(tmp_path / "nowhere")
    DatasetWriter(tmp_path / "empty", _meta())
    with pytest.raises(DatasetError, match="no complete episode"):
        load_dataset(tmp_path / "empty")
    _write(tmp_path / "ds")
    ds = load_dataset(tmp_path / "ds")
    with pytest.raises(DatasetError, match=r"state of shape \[4\], the model expects \[5\]"):
        check_model_fits(ds, "state", [5], 2)
    with pytest.raises(DatasetError, match="has no observation 'pixels'"):
        check_model_fits(ds, "pixels", [3, 64, 64], 2)
    with pytest.raises(DatasetError, match="observation spec"):
        DatasetWriter(tmp_path / "ds", _meta(), append=True).add_episode(
            _episode(2).exclude(("observation", "state"))
        )


@pytest.mark.parametrize(
    ("name", "task", "options"),
    [  # goals in the start rooms, so that random actions collect rewards that are not all zero
        (MAZE, "reach_bottom_left", {"task": "reach_bottom_left"}),
        ("dmc/point_mass_maze_reach_top_left", "point_mass_maze_reach_top_left", {"num_workers": 0}),
    ],
)
def test_relabel_through_dataset_matches_online_reward(tmp_path, name, task, options):
    env = envs.make(name, num_envs=2, seed=1, device="cpu", from_pixels=False, action_repeat=1, **options)
    splitter, online = _EpisodeSplitter(2), []
    td = env.reset()
    for _ in range(30):
        td["action"] = env.action_spec.rand()
        step, td = env.step_and_maybe_reset(td)
        online.append(step["next", "reward"].reshape(-1))
        assert splitter.add(_episode_row(step, ["state"]), step["next", "done"].reshape(-1)) == []
    episodes = splitter.flush()
    meta = DatasetMeta(
        env=name, obs_spec=spec_of(episodes[0]), action_dim=2, physics_dim=td["physics"].shape[-1]
    )
    writer = DatasetWriter(tmp_path / "ds", meta)
    for ep in episodes:
        writer.add_episode(ep)
    data = load_dataset(tmp_path / "ds").data
    relabeled = envs.relabel(name, data["next", "physics"], task)
    expected = torch.stack(online, 1).reshape(-1)  # copy-major, as the episodes are written
    assert expected.abs().sum() > 0
    assert torch.allclose(relabeled, expected, atol=1e-5)
    assert data["next", "truncated"].reshape(2, 30)[:, -1].all()


# ------------------------------------------------------------------------------------------ config, tasks
def test_bad_task_and_config_errors():
    assert "reach_far" in domain_tasks(MAZE) and "reward_free" not in domain_tasks(MAZE)
    with pytest.raises(ValueError, match="its tasks: reach_top_left, reach_top_right"):
        check_tasks(MAZE, ["fly_to_the_moon"])
    with pytest.raises(ConfigError, match="agent.regularizer='foo'"):
        _cfg("agent.regularizer=foo")
    with pytest.raises(ConfigError, match="Unknown config key"):
        _cfg("agent.widht=3")


def test_agents_update_and_state_roundtrip(tmp_path):
    _write(tmp_path / "ds", lengths=(20, 20))
    batch = load_dataset(tmp_path / "ds").sample(16)
    for preset in ("td_jepa_sigreg", "td_jepa_ortho", "fb"):
        cfg = _cfg(f"zs_agent={preset}", "agent.encoder_hidden=[16]", "agent.predictor_hidden=[16]")
        agent = make_zero_shot_agent(cfg.agent, [4], 2, torch.device("cpu"))
        metrics = agent.update(batch)
        assert metrics["train/loss"] == metrics["train/loss"]
        twin = make_zero_shot_agent(cfg.agent, [4], 2, torch.device("cpu"))
        twin.load_state_dict(copy.deepcopy(agent.state_dict()))  # as through torch.save/load
        torch.manual_seed(3)
        a = agent.update(batch)
        torch.manual_seed(3)
        b = twin.update(batch)
        assert all(v.ndim == 0 and not v.requires_grad for v in a.values())  # read only when logged
        assert {k: float(v) for k, v in b.items()} == {k: float(v) for k, v in a.items()}


def test_a_nan_loss_leaves_every_parameter_unchanged(tmp_path):
    """The NaN guard runs between backward() and the optimizer step: a batch that makes the loss NaN
    raises FloatingPointError and no parameter, target or optimizer moment changes."""
    _write(tmp_path / "ds", lengths=(20, 20))
    batch = load_dataset(tmp_path / "ds").sample(16)
    batch["observation", "state"][0, 0] = float("nan")
    for preset in ("td_jepa_sigreg", "fb"):
        cfg = _cfg(f"zs_agent={preset}", "agent.encoder_hidden=[16]", "agent.predictor_hidden=[16]")
        agent = make_zero_shot_agent(cfg.agent, [4], 2, torch.device("cpu"))
        before = copy.deepcopy(agent.state_dict())
        with pytest.raises(FloatingPointError, match="non-finite"):
            agent.update(batch)
        after = agent.state_dict()
        for part in ("model", "target"):
            for key, value in before[part].items():
                assert torch.equal(value, after[part][key]), (preset, part, key)
        for opt in ("critic", "actor"):  # Adam never stepped: step counts and moments still zero
            for state in after["optimizers"][opt]["state"].values():
                assert all(not v.any() for v in state.values()), (preset, opt)


# ------------------------------------------------------------------------------------------- end to end
def test_collect_train_eval_end_to_end(tmp_path, capsys, monkeypatch):
    ds, run = tmp_path / "ds", tmp_path / "run"
    common = ["device=cpu", "num_threads=1"]
    assert (
        collect_main(
            [
                f"dataset={ds}",
                "zs_explorer=rnd",
                "explorer.warmup_transitions=1000",
                "explorer.batch_size=32",
                "explorer.hidden=[32]",
                "num_transitions=1200",
                "num_envs=2",
                "progress_bar=false",
                *common,
            ]
        )
        == 0
    )
    meta = load_dataset(ds).meta
    assert meta.transitions == 1200 and meta.episodes == 2  # two partial episodes (of 1000 steps), flushed
    train = [
        f"dataset={ds}",
        f"run_dir={run}",
        "train.num_updates=20",
        "train.log_every=10",
        "agent.batch_size=32",
        "eval.episodes=2",
        "eval.max_episode_steps=20",
        "eval.inference_samples=500",
        "eval.tasks=[reach_bottom_left]",
        f"eval.results_csv={tmp_path / 'results.csv'}",
        "train.sf_check_every=10",
        "train.sf_check_episodes=2",
        "logging.progress_bar=false",
        *common,
    ]
    assert train_main(train) == 0
    shared = list(csv.DictReader((tmp_path / "results.csv").open()))
    tasks = {
        "random": 2,
        "td_jepa_sigreg_sphere": 3,
        "zero_action": 2,
    }  # + the goal-z diagnostic row
    assert [(r["method"], r["task"], r["seed"], r["updates"]) for r in shared] == [
        (method, task, "0", "20")
        for method, n in tasks.items()
        for task in ("mean", "reach_bottom_left", "reach_bottom_left@goal")[:n]
    ]
    assert eval_main([str(run), "eval.tasks=[reach_bottom_left,reach_top_left]", *common]) == 0
    out = capsys.readouterr().out
    assert "reach_bottom_left" in out and "mean" in out
    # the baselines and the data's rewarded share; the RND data from the start room never reaches the
    # top-left room, so that task is flagged as not evaluable
    assert "zero act" in out and "data rew%" in out
    top_left = next(line for line in out.splitlines() if line.strip().startswith("reach_top_left"))
    assert "not evaluable" in top_left
    rows = list(csv.DictReader((run / "zero_shot.csv").open()))
    assert [r["task"] for r in rows] == [
        "reach_bottom_left",
        "reach_bottom_left@goal",
        "mean",
        "reach_bottom_left",
        "reach_top_left",
        "reach_bottom_left@goal",
        "reach_top_left@goal",
        "mean",
    ]
    assert all(r["step"] == "20" for r in rows)
    # the mean leaves out the @goal rows (and reach_top_left, degenerate: never rewarded in this data)
    last = {r["task"]: float(r["return_mean"]) for r in rows[3:]}
    assert math.isnan(last["reach_top_left"]) and math.isfinite(last["reach_bottom_left@goal"])
    assert last["mean"] == pytest.approx(last["reach_bottom_left"])
    scalars = (run / "scalars.csv").read_text()
    assert "zero_shot/point_mass_maze/reach_bottom_left" in scalars and "train/td_phi/td_loss" in scalars
    assert "20,sf/ratio," in scalars and "10,sf/corr," in scalars  # the successor-feature check
    with pytest.raises(ConfigError, match="only eval"):
        eval_main([str(run), "agent.lr=1.0"])
    # the goal maps read the trained run (scripts/zero_shot_maps.py)
    script = _script("zero_shot_maps")
    step, maps = script.maps(run, points=9)
    assert step == 20 and len(maps) == 5
    assert all(math.isfinite(row["peak_error"]) and row["action_gap"] >= 0 for row in maps.values())
    broken = tmp_path / "broken_run"  # a copy whose checkpoints are damaged: one line, no traceback
    shutil.copytree(run, broken)
    for ckpt in (broken / "checkpoints").glob("*.pt"):
        ckpt.write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert script.main([str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1

    # a goal and a reward of one's own, from the command line: rows in the same table and CSV
    (tmp_path / "my_rewards.py").write_text(
        "def near_center(physics):\n    return -physics[:, :2].norm(dim=-1)\n"
        "def broken(physics):\n    raise RuntimeError('no such sensor')\n"
        "def wrong_shape(physics):\n    return physics[:, :2]\n"
        "def nan_half(physics):\n    r = physics[:, 0].clone()\n    r[::2] = float('nan')\n    return r\n"
    )
    monkeypatch.chdir(tmp_path)
    custom = ["eval.goal=[0.5,0.5]", "eval.reward=my_rewards:near_center", *common]
    assert eval_main([str(run), *custom]) == 0
    rows = list(csv.DictReader((run / "zero_shot.csv").open()))[-3:]
    assert [r["task"] for r in rows] == ["reward:my_rewards:near_center", "goal(0.5,0.5)", "mean"]
    assert all(math.isfinite(float(r["return_mean"])) for r in rows)
    # TD-JEPA with FB's inference rule: its own method label in the shared results; a checkpoint named
    # between the run and the overrides (as scripts/gpu_checks.sh asks)
    ckpt = sorted((run / "checkpoints").glob("*.pt"))[-1]
    mean_z = ["eval.z_inference=mean", "eval.episodes=1", *common]
    assert eval_main([str(run), "--checkpoint", str(ckpt), *mean_z]) == 0
    with pytest.raises(CheckpointError, match="does not exist"):  # not "corrupt: delete it"
        eval_main([str(run), "--checkpoint", str(tmp_path / "ckpt_000000000999.pt"), *mean_z])
    methods = {r["method"] for r in csv.DictReader((tmp_path / "results.csv").open())}
    assert "td_jepa_sigreg_sphere+mean_z" in methods
    assert (run / "zero_shot_mean_z.csv").is_file()  # the run's own rows and scalars kept apart
    assert "zero_shot_mean_z/point_mass_maze/mean" in (run / "scalars.csv").read_text()
    written = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    for spec, match in (
        ("broken", "my_rewards:broken raised RuntimeError: no such sensor"),
        ("wrong_shape", r"must return 500 rewards \(shape \[N\]\)"),
        ("nan_half", r"my_rewards:nan_half returned 250 non-finite value\(s\) \(NaN or inf\) of 500"),
    ):
        with pytest.raises(TaskSpecError, match=match):
            eval_main([str(run), f"eval.reward=my_rewards:{spec}", *common])
    capsys.readouterr()
    assert cli_main(["eval-zero-shot", str(run), "eval.reward=my_rewards:nan_half", *common]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: custom reward") and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == written  # nothing written
    with pytest.raises(ConfigError, match="cannot import"):
        eval_main([str(run), "eval.reward=no_such_module:f", *common])
    for goal in ("[1.5,0.0]", "[0.0,0.2]"):  # outside the arena, inside the wall cross
        with pytest.raises(ConfigError, match="outside the arena"):
            eval_main([str(run), f"eval.goal={goal}", *common])

    # the same from Python
    from jepa_agents.config.load import validate
    from jepa_agents.zero_shot.evaluate import zero_shot_eval

    cfg = validate(OmegaConf.load(run / "config.yaml"), ZERO_SHOT)
    ckpt = torch.load(sorted((run / "checkpoints").glob("*.pt"))[-1], weights_only=False)
    model = build_model(cfg.agent, ckpt["obs_shape"], ckpt["action_dim"])
    model.load_state_dict(ckpt["agent"]["model"])
    cfg = OmegaConf.merge(cfg, {"eval": {"tasks": [], "episodes": 2, "max_episode_steps": 5}})

    def near_door(physics):
        return -(physics[:, :2] - torch.tensor([0.0, 0.5])).norm(dim=-1)

    results = zero_shot_eval(model, load_dataset(ds), cfg, torch.device("cpu"), reward_fn=near_door)
    assert list(results) == ["reward:near_door"] and len(results["reward:near_door"]) == 2

    # bad runs: no checkpoint yet, and an online training run
    empty = tmp_path / "empty_run"
    (empty / "checkpoints").mkdir(parents=True)
    (empty / "config.yaml").write_text((run / "config.yaml").read_text())
    with pytest.raises(CheckpointError, match="without a checkpoint yet"):
        eval_main([str(empty), *common])
    online = tmp_path / "online_run"
    online.mkdir()
    from jepa_agents.train.config import compose as compose_train

    (online / "config.yaml").write_text(OmegaConf.to_yaml(compose_train([f"run_dir={online}"])))
    with pytest.raises(ConfigError, match="online training run"):
        eval_main([str(online)])


def test_offline_training_resumes_exactly(tmp_path):
    from jepa_agents.infra.checkpoint import load_checkpoint

    _write(tmp_path / "ds", lengths=(30, 30))
    run = tmp_path / "run"
    args = [
        f"dataset={tmp_path / 'ds'}",
        f"run_dir={run}",
        "train.num_updates=6",
        "train.checkpoint_every=3",
        "train.keep_checkpoints=5",
        "agent.batch_size=16",
        "agent.encoder_hidden=[16]",
        "agent.predictor_hidden=[16]",
        "agent.actor_hidden=[16]",
        "eval.final=false",
        "device=cpu",
        "num_threads=1",
        "deterministic=true",
        "logging.progress_bar=false",
    ]
    assert train_main(args) == 0
    full = load_checkpoint(run / "checkpoints" / "ckpt_000000000006.pt")["agent"]["model"]
    (run / "checkpoints" / "ckpt_000000000006.pt").unlink()  # as if killed after update 3's checkpoint
    assert train_main([f"resume={run}", "device=cpu", "num_threads=1", "logging.progress_bar=false"]) == 0
    resumed = load_checkpoint(run / "checkpoints" / "ckpt_000000000006.pt")["agent"]["model"]
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_train_zero_shot_refuses_a_non_finite_custom_reward_before_writing(tmp_path, monkeypatch, capsys):
    """A custom reward returning NaN is one line naming the function and the count, before the run
    directory exists (the reward is checked on relabeled dataset transitions when the run starts)."""
    _write(tmp_path / "ds", lengths=(30, 30))
    bad = "def all_nan(physics):\n    return physics[:, 0] * float('nan')\n"
    (tmp_path / "bad_rewards.py").write_text(bad)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    args = [f"dataset={tmp_path / 'ds'}", f"run_dir={run}", "eval.reward=bad_rewards:all_nan", "device=cpu"]
    capsys.readouterr()
    assert cli_main(["train-zero-shot", *args]) == 2
    err = capsys.readouterr().err
    assert "bad_rewards:all_nan returned 60 non-finite value(s)" in err and len(err.strip().splitlines()) == 1
    assert not run.exists()


def test_uniform_starts_cover_the_maze_and_collect_reports_coverage(tmp_path, capsys):
    """``start=uniform`` puts episodes anywhere in the free arena (every room, no state inside a wall);
    ``collect`` writes and prints the coverage report, which flags the tasks the default start data
    (bottom-left room, random actions) does not reach and not those that uniform starts do."""
    import json

    maze_env = "torch/point_mass_maze"
    env = envs.make(maze_env, num_envs=4000, seed=0, device="cpu", from_pixels=False, start="uniform")
    physics = env.reset()["physics"]
    rooms = coverage.maze_rooms(physics)
    assert all(0.2 < share < 0.3 for share in rooms.values()), rooms
    from envs.torch_control import point_mass_maze as maze

    settled = maze.advance(physics, torch.zeros(4000, 2))  # a disc overlapping a wall would be pushed out
    torch.testing.assert_close(settled[:, :2], physics[:, :2])
    with pytest.raises(ValueError, match="not available for torch/pendulum_swingup"):
        envs.make("torch/pendulum_swingup", num_envs=1, seed=0, device="cpu", start="uniform")

    reports = {}
    for start in ("reset", "uniform"):
        ds = tmp_path / start
        argv = [f"dataset={ds}", f"start={start}", "zs_explorer=random", "num_transitions=4096"]
        assert collect_main([*argv, "num_envs=256", "progress_bar=false", "device=cpu", "num_threads=1"]) == 0
        reports[start] = json.loads((ds / "coverage.json").read_text())
        assert reports[start]["transitions"] == 4096 and load_dataset(ds).meta.transitions == 4096
    out = capsys.readouterr().out
    assert "room top_right" in out and "under 1 %" in out
    assert "reach_top_right" in reports["reset"]["flagged"] and reports["reset"]["rooms"]["top_right"] < 0.01
    assert reports["uniform"]["flagged"] == [] and min(reports["uniform"]["rooms"].values()) > 0.15
    with pytest.raises(ConfigError, match="collect.start='corner'"):
        compose(["start=corner"], COLLECT)


def test_actor_sampling_is_clamped_forward_and_straight_through_backward(monkeypatch):
    from jepa_agents.zero_shot.td_jepa import Actor

    torch.manual_seed(0)
    actor = Actor(3, 2, 4, [16], std=0.5, clip=0.5)
    mean = torch.full((64, 4), 0.9, requires_grad=True)  # near the box edge: many noisy actions leave it
    monkeypatch.setattr(actor, "forward", lambda x, z: mean)
    action = actor.sample(torch.randn(64, 3), torch.randn(64, 2))
    assert action.min() >= -1 and action.max() <= 1 and (action == 1).float().mean() > 0.3
    action.sum().backward()
    # a hard clamp would give the clamped components a zero gradient; straight-through gives every one 1
    torch.testing.assert_close(mean.grad, torch.ones_like(mean))


def test_zero_shot_models_are_orthogonally_initialised():
    for preset in ("td_jepa_sigreg", "fb"):
        cfg = _cfg(f"zs_agent={preset}", "agent.encoder_hidden=[16]", "agent.predictor_hidden=[16]")
        linears = [m for m in build_model(cfg.agent, [4], 2).modules() if isinstance(m, torch.nn.Linear)]
        assert linears
        for layer in linears:
            w = layer.weight.detach()
            gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
            torch.testing.assert_close(gram, torch.eye(gram.shape[0]), atol=1e-5, rtol=0)
            assert not layer.bias.any()


@pytest.mark.slow
def test_walker_domain_collect_train_eval_in_worker_processes(tmp_path):
    """The walker domain end to end from the command line with DMC copies in worker processes: RND data,
    relabeled coverage for its five tasks, training, the evaluation table; the workers are closed before
    the process exits (no 'Exception ignored' noise from their pipes at interpreter exit)."""
    import subprocess
    import sys

    def cli(*argv: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "jepa_agents.cli", *argv, "device=cpu", "num_threads=1"],
            capture_output=True, text=True, timeout=600, env={**os.environ, "MUJOCO_GL": "egl"},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        return proc.stdout

    data, run = tmp_path / "walker", tmp_path / "run"
    out = cli("collect", "env.name=dmc/walker_walk", f"dataset={data}", "num_transitions=400", "num_envs=2",
              "explorer.warmup_transitions=200", "progress_bar=false")  # fmt: skip
    for task in ("walker_stand", "walker_walk", "walker_run", "walker_flip", "walker_spin"):
        assert f"task {task}" in out
    out = cli("train-zero-shot", f"dataset={data}", "env.name=dmc/walker_walk", "zs_agent=td_jepa_ortho",
              "train.num_updates=20", "agent.batch_size=16", "eval.episodes=2", "eval.max_episode_steps=20",
              "logging.progress_bar=false", f"run_dir={run}")  # fmt: skip
    assert "walker_spin" in out and "mean (5 tasks)" in out


def test_the_sweep_continues_a_cut_collection_and_skips_a_full_one(tmp_path):
    """A collection killed after writing its meta file (0 transitions) is continued with ``append=true``,
    not mistaken for a complete dataset."""
    import argparse
    import dataclasses
    import json

    sweep = _script("zero_shot_sweep")
    args = argparse.Namespace(root=tmp_path, domain="walker")
    assert "append=false" in sweep.collect_command(args)
    (tmp_path / "data").mkdir()
    for held, expected in ((0, "append=true"), (60_000, "append=true"), (100_000, None)):
        meta = dataclasses.replace(_meta(), transitions=held)
        (tmp_path / "data" / "meta.json").write_text(json.dumps(dataclasses.asdict(meta)))
        cmd = sweep.collect_command(args)
        assert (cmd if cmd is None else next(c for c in cmd if c.startswith("append="))) == expected
        assert cmd is None or "num_transitions=100000" in cmd
    (tmp_path / "data" / "meta.json").write_text('{"transitions": 5')  # cut mid-write by hand
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        sweep.collect_command(args)
