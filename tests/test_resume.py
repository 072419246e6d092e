"""Kill a small training run with SIGKILL part-way, resume it, and compare with an uninterrupted run:
on the CPU with deterministic settings the logged scalars must be identical."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

OVERRIDES = [
    "env=torch/cartpole_balance",
    "env.from_pixels=false",
    "env.num_envs=2",
    "train.total_env_steps=3200",
    "train.seed_env_steps=800",
    "train.checkpoint_every=1600",
    "eval.every=1600",
    "eval.episodes=2",
    "eval.video=false",
    "logging.every=400",
    "logging.progress_bar=false",
    "logging.tensorboard=false",
    "agent.batch_size=32",
    "agent.actor_hidden=[64,64]",
    "agent.critic_hidden=[64,64]",
    "agent.feature_dim=32",
    "world_model.latent_dim=32",
    "world_model.predictor_hidden=[64]",
    "world_model.num_slices=32",
    "device=cpu",
    "num_threads=1",
    "deterministic=true",
    "seed=3",
]


def _train(run_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "jepa_agents.cli", "train", *OVERRIDES, f"run_dir={run_dir}", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _scalars(run_dir: Path) -> list[tuple[str, str, str]]:
    with (run_dir / "scalars.csv").open() as f:
        return [
            (r["step"], r["tag"], r["value"]) for r in csv.DictReader(f) if not r["tag"].startswith("perf/")
        ]


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    full_proc, proc = _train(full), _train(killed)  # side by side: one thread each
    first = killed / "checkpoints" / "ckpt_000000001600.pt"
    deadline = time.time() + 600
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    logged = _scalars(killed)
    assert max(int(s) for s, _, _ in logged) < 3200, "the run finished before it could be killed"
    _, err = full_proc.communicate(timeout=600)
    assert full_proc.returncode == 0, err

    proc = subprocess.run(
        [sys.executable, "-m", "jepa_agents.cli", "train", f"resume={killed}", "logging.progress_bar=false"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert _scalars(killed) == _scalars(full)
    assert (killed / "curve.png").is_file()


def test_repeated_nan_stops_training_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    from jepa_agents.agents.sac import SACAgent
    from jepa_agents.infra.checkpoint import list_checkpoints, load_checkpoint
    from jepa_agents.train.config import compose
    from jepa_agents.train.run import TrainingError, train

    original = SACAgent.update

    def update(self, replay, step):
        if step > 1600:
            raise FloatingPointError("non-finite loss in 10 consecutive updates.")
        return original(self, replay, step)

    monkeypatch.setattr(SACAgent, "update", update)
    overrides = [o for o in OVERRIDES if not o.startswith(("device", "num_threads", "deterministic"))]
    cfg = compose([*overrides, f"run_dir={tmp_path / 'run'}", "device=cpu"])
    with pytest.raises(TrainingError, match="last good checkpoint"):
        train(cfg)
    checkpoints = list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [p.name for p in checkpoints] == ["ckpt_000000001600.pt"]
    assert load_checkpoint(checkpoints[0])["step"] == 1600
