"""Environments by name, validation before anything is written, and honest resumes (CLI level)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_run import TINY

from jepa_agents.cli import main
from jepa_agents.config.errors import ConfigError
from jepa_agents.train.config import compose


@pytest.mark.parametrize(
    "overrides, name, repeat, image",
    [
        (["env=dmc/reacher_easy"], "dmc/reacher_easy", 4, 64),
        (["env=dmc/walker_run"], "dmc/walker_run", 2, 64),
        (["env=dmc/cartpole_swingup", "env.name=dmc/reacher_easy"], "dmc/reacher_easy", 4, 64),
        (["env=dmc/reacher_easy", "env.action_repeat=3"], "dmc/reacher_easy", 3, 64),
        (["env=atari/seaquest"], "atari/seaquest", 4, 84),
        (["env=torch/cartpole_swingup"], "torch/cartpole_swingup", 8, 64),
    ],
)
def test_any_task_by_name_with_its_own_defaults(overrides, name, repeat, image):
    cfg = compose(overrides)
    assert (cfg.env.name, cfg.env.action_repeat, cfg.env.image_size) == (name, repeat, image)


def test_cfg_shows_the_task_action_repeat(capsys):
    assert main(["train", "--cfg", "env=dmc/reacher_easy"]) == 0
    assert re.search(r"name: dmc/reacher_easy\n(.*\n)*?  action_repeat: 4", capsys.readouterr().out)


@pytest.mark.parametrize(
    "override, match",
    [
        ("env.name=atari/seaquestt", "Did you mean: atari/seaquest"),
        ("env=dmc/reacher_eas", "Did you mean: dmc/reacher_easy"),
        ("env.num_envs=0", "env.num_envs must be >= 1"),
        ("env.num_eval_envs=0", "env.num_eval_envs must be >= 1"),
    ],
)
def test_bad_env_input_is_one_line_and_leaves_no_run_directory(override, match, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", override, f"run_dir={run_dir}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and match in err and "Traceback" not in err
    assert not run_dir.exists()
    with pytest.raises(ConfigError):
        compose([override])


def test_failed_start_removes_the_new_run_directory(tmp_path, capsys):
    """An env/learner mismatch is found while building the run: one line, no directory left."""
    run_dir = tmp_path / "run"
    assert main(["train", *TINY, "agent=discrete_sac", f"run_dir={run_dir}"]) == 2
    err = capsys.readouterr().err
    assert "could not start the run" in err and "agent=sac" in err
    assert not run_dir.exists()


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_resume_says_what_it_does_and_a_finished_run_is_left_alone(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "jepa_agents.cli", "train"]
    first = subprocess.run([*cmd, *TINY, f"run_dir={run_dir}"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert f"run directory: {run_dir}" in first.stdout and "finished 400 env steps" in first.stdout
    before = _snapshot(run_dir)
    again = subprocess.run([*cmd, f"resume={run_dir}"], capture_output=True, text=True)
    assert again.returncode == 2 and "is complete" in again.stderr and "Traceback" not in again.stderr
    assert _snapshot(run_dir) == before  # scores, checkpoints and curve unchanged


def test_resume_keeps_saved_runtime_settings_and_lists_overrides(tmp_path, capsys):
    cfg = compose([*TINY, f"run_dir={tmp_path}", "logging.progress_bar=false"])
    from omegaconf import OmegaConf

    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    resumed = compose([f"resume={tmp_path}"])
    assert resumed.device == "cpu" and resumed.logging.progress_bar is False  # saved, not the defaults
    capsys.readouterr()
    assert compose([f"resume={tmp_path}", "device=auto"]).device == "auto"
    assert "resume: device = 'auto' (the run had 'cpu')" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="seed"):
        compose([f"resume={tmp_path}", "seed=5"])


def _documented_train_commands() -> list[str]:
    from jepa_agents.cli import _groups_help

    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = "\n".join([_groups_help(), readme.read_text()]).replace("\\\n", " ")  # join continued lines
    commands = []
    for line in text.splitlines():
        line = line.strip().split("#")[0].strip()
        if line.startswith("jepa-agents train") and "<" not in line and "..." not in line:
            commands.append(line)
    return commands


@pytest.mark.parametrize("command", _documented_train_commands())
def test_every_documented_train_command_composes(command, capsys):
    """Every `jepa-agents train ...` example in --help and the README is a valid config (--cfg)."""
    args = command.split()[2:]
    if "--cfg" not in args:
        args = ["--cfg", *args]
    assert main(["train", *args]) == 0, capsys.readouterr().err


def test_script_without_main_guard_gets_one_line_that_says_to_add_it(tmp_path):
    script = tmp_path / "noguard.py"
    script.write_text(
        "import envs\nenv = envs.make('dmc/cartpole_swingup', num_envs=2, seed=0, from_pixels=False)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert 'if __name__ == "__main__":' in last and "num_workers=0" in last and "died" not in out.stderr


def test_a_new_learner_is_one_registry_row(tmp_path, monkeypatch):
    """A toy off-policy learner added as one row of ``LEARNERS`` (what docs/CONTRACTS.md asks of a new
    learner besides its own module and preset) is validated against its own schema, trained by the
    off-policy trainer with evaluation and checkpoints, and resumed, with no other code touched."""
    from dataclasses import dataclass

    import torch
    from omegaconf import OmegaConf

    import jepa_agents.agents as agents
    from jepa_agents.config.errors import ConfigError
    from jepa_agents.train.config import validate
    from jepa_agents.train.run import RunStartError, train

    @dataclass
    class ToyConfig:
        name: str = "toy"
        step_size: float = 0.5

        def __post_init__(self):
            if not 0 < self.step_size <= 1:
                raise ValueError(f"agent.step_size={self.step_size} must be in (0, 1]")

    class ToyAgent:
        """Acts with a constant action that each update moves towards +1."""

        obs_key = "state"

        def __init__(self, cfg, env, device):
            self.cfg, self.action, self.updates = cfg.agent, torch.zeros(env.action_spec.shape), 0

        def act(self, obs, eval_mode):
            return self.action.clone()

        def update(self, replay, step):
            self.updates += 1
            self.action += self.cfg.step_size * (1 - self.action)
            return {"train/updates": float(self.updates), "train/replay": float(len(replay))}

        def state_dict(self):
            return {"action": self.action.clone(), "updates": self.updates}

        def load_state_dict(self, state):
            self.action, self.updates = state["action"].clone(), state["updates"]

    monkeypatch.setitem(agents.LEARNERS, "toy", agents.Learner(ToyConfig, ToyAgent, "off_policy"))
    overrides = [*TINY, f"run_dir={tmp_path / 'run'}", "train.checkpoint_every=200", "logging.every=100"]
    raw = OmegaConf.to_container(compose(overrides))
    raw["agent"] = {"name": "toy", "step_size": 0.25}
    with pytest.raises(ConfigError, match="step_size"):
        validate(OmegaConf.create({**raw, "agent": {"name": "toy", "step_size": 2.0}}))
    with pytest.raises(ConfigError, match="Unknown config key"):
        validate(OmegaConf.create({**raw, "agent": {"name": "toy", "lr": 1.0}}))
    run_dir = train(validate(OmegaConf.create(raw)))
    scalars = (run_dir / "scalars.csv").read_text()
    assert "train/updates" in scalars and "eval/return" in scalars
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir())[-1] == "ckpt_000000000400.pt"
    with pytest.raises(RunStartError, match="is complete"):
        train(validate(OmegaConf.create({**raw, "resume": "true"})))


def test_a_run_started_before_a_setting_was_added_resumes(tmp_path):
    """A run whose config.yaml (and checkpoint hashes) predate a schema key still resumes: the key is filled
    in with its default and the checkpoints are checked against the config as saved; a checkpoint of
    another config is still refused."""
    import torch
    from omegaconf import OmegaConf

    from jepa_agents.config.load import config_hash
    from jepa_agents.infra.checkpoint import CheckpointError, list_checkpoints
    from jepa_agents.train.run import train

    run = tmp_path / "run"
    train(compose([*TINY, "train.checkpoint_every=200", f"run_dir={run}"]))
    list_checkpoints(run / "checkpoints")[-1].unlink()  # cut after the first checkpoint
    # the run as the version before `world_model.continue_weight` existed wrote it
    saved = OmegaConf.load(run / "config.yaml")
    del saved.world_model["continue_weight"]
    (run / "config.yaml").write_text(OmegaConf.to_yaml(saved))
    (first,) = list_checkpoints(run / "checkpoints")
    payload = torch.load(first, weights_only=False)
    torch.save({**payload, "config_hash": config_hash(saved)}, first)
    train(compose([f"resume={run}"]))
    assert len(list_checkpoints(run / "checkpoints")) == 2
    # a checkpoint hashed over another config is refused, as before
    other = tmp_path / "other"
    train(compose([*TINY, "train.checkpoint_every=200", "seed=1", f"run_dir={other}"]))
    list_checkpoints(other / "checkpoints")[-1].unlink()
    (first,) = list_checkpoints(other / "checkpoints")
    torch.save({**torch.load(first, weights_only=False), "config_hash": config_hash(saved)}, first)
    with pytest.raises(CheckpointError, match="another config"):
        train(compose([f"resume={other}"]))


def test_training_time_is_summed_over_the_sessions_of_a_resumed_run(tmp_path, capsys):
    """Each checkpoint keeps the training time so far; a resumed run adds its own session to it and logs
    the total as ``perf/train_s``, which the per-seed table reports (not first-to-last log time, which
    would count the pause between sessions). A checkpoint that predates the counter gives no total."""
    import csv

    import torch

    from jepa_agents.analysis.plot_cli import main as plot_main
    from jepa_agents.infra.checkpoint import list_checkpoints
    from jepa_agents.train.run import train

    run = tmp_path / "runs" / "run"
    train(compose([*TINY, "train.checkpoint_every=200", "logging.every=100", f"run_dir={run}"]))
    final = torch.load(list_checkpoints(run / "checkpoints")[-1], weights_only=False)
    assert 0 < final["train_seconds"] < 600
    list_checkpoints(run / "checkpoints")[-1].unlink()  # cut after the first checkpoint
    (first,) = list_checkpoints(run / "checkpoints")
    torch.save({**torch.load(first, weights_only=False), "train_seconds": 5000.0}, first)  # a long session 1
    capsys.readouterr()
    train(compose([f"resume={run}"]))
    assert "min of training over all sessions" in capsys.readouterr().out
    logged = [float(r[2]) for r in csv.reader((run / "scalars.csv").open()) if r[1] == "perf/train_s"]
    assert logged == sorted(logged) and 5000 < logged[-1] < 5600  # session 1's rows after step 200 dropped
    assert torch.load(list_checkpoints(run / "checkpoints")[-1], weights_only=False)["train_seconds"] > 5000
    seeds = tmp_path / "seeds.csv"
    plot = [str(tmp_path / "runs"), "--out", str(tmp_path / "c.png"), "--seeds-out", str(seeds)]
    assert plot_main(plot) == 0
    assert float(next(csv.DictReader(seeds.open()))["wall_s"]) == round(logged[-1], 1)
    # a checkpoint written before the counter existed: the total is unknown, nothing is logged for it
    list_checkpoints(run / "checkpoints")[-1].unlink()
    (first,) = list_checkpoints(run / "checkpoints")
    payload = torch.load(first, weights_only=False)
    del payload["train_seconds"]
    torch.save(payload, first)
    train(compose([f"resume={run}"]))
    rows = [r for r in csv.reader((run / "scalars.csv").open()) if r[1] == "perf/train_s"]
    assert all(int(float(r[0])) <= 200 for r in rows)


def test_the_update_rate_counts_gradient_updates_not_update_calls(tmp_path):
    """With two updates per agent step, ``perf/updates_per_s`` is twice the agent-step rate over the same
    window (it counted the loop's update calls, one per step, before)."""
    import csv

    from jepa_agents.train.run import train

    run = tmp_path / "run"
    cfg = compose([*TINY, "agent.utd=2", "logging.every=100", f"run_dir={run}"])
    train(cfg)
    rows: dict[str, dict[str, float]] = {}
    for step, tag, value, _ in csv.reader((run / "scalars.csv").open()):
        if tag.startswith("perf/") and tag.endswith("_per_s"):
            rows.setdefault(step, {})[tag] = float(value)
    assert len(rows) >= 2
    for rates in rows.values():  # env steps are frames: action_repeat per agent step
        ratio = rates["perf/updates_per_s"] / rates["perf/env_steps_per_s"]
        assert ratio == pytest.approx(2.0 / cfg.env.action_repeat)
