"""The command line: help for every command, clear errors, config printing."""

import os
import subprocess
import sys

import pytest
import torch

from jepa_agents.cli import main

COMMANDS = ["train", "collect", "train-zero-shot", "eval-zero-shot", "bench", "envs"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert len(capsys.readouterr().out.strip().splitlines()) >= 3


def test_plot_help(capsys):
    try:
        code = main(["plot", "--help"])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 0
    assert "--metric" in capsys.readouterr().out


def test_train_help_lists_groups(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "torch/cartpole_swingup" in out and "world_model" in out


def test_train_cfg_prints_resolved_config(capsys):
    assert main(["train", "--cfg", "seed=3", "env=dmc/walker_walk"]) == 0
    out = capsys.readouterr().out
    assert "seed: 3" in out and "dmc/walker_walk" in out


def test_bad_override_is_one_clear_line(capsys):
    assert main(["train", "agent.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Unknown config key 'agent.lrr'") and "Traceback" not in err


def test_console_script_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "jepa_agents.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "jepa-agents" in out.stdout


def test_broken_gl_backend_is_one_clear_error():
    env = {**os.environ, "MUJOCO_GL": "broken"}
    out = subprocess.run(
        [sys.executable, "-m", "jepa_agents.cli", "train", "--cfg"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "MUJOCO_GL='broken'" in out.stderr and "osmesa" in out.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "eval.episodes=-1"], "error: Invalid config value: eval.episodes must be >= 1, got -1"),
        (["train", "train.total_env_steps=0"], "error: Invalid config value: train.total_env_steps must be"),
        (["train", "train.replay_device=cuda"], "error: Invalid config value: train.replay_device='cuda'"),
        (["train", "logging.every=0"], "error: Invalid config value: logging.every must be >= 1, got 0"),
        (["collect", "device=cuda:7"], "error: device='cuda:7' but"),
        (["train-zero-shot", "dataset=/nonexistent", "device=cuda"], "error: device='cuda' but"),
    ],
)
def test_bad_values_are_one_line_before_anything_is_written(argv, message, tmp_path, monkeypatch, capsys):
    if "device=cuda" in " ".join(argv) and torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    monkeypatch.chdir(tmp_path)  # default run and dataset directories would land here
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_benchmark_counts_are_checked_by_argparse(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "update", "--", "--threads", "0"])
    assert exit_.value.code == 2
    assert "argument --threads: must be >= 1, got 0" in capsys.readouterr().err
