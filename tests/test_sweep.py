"""``jepa-agents train -m``: sweeps through Hydra's launchers, one run directory per job, validated before
anything runs, complete runs skipped and cut ones resumed when the command is run again."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tiny_run import tiny

from jepa_agents.config.errors import ConfigError
from jepa_agents.train import sweep

TINY = tiny("train.total_env_steps=300", "train.checkpoint_every=300", "eval.at_start=false")


def test_plan_names_runs_by_their_swept_values_and_validates_every_job(tmp_path):
    root, jobs, hydra = sweep.plan(
        ["seed=0,1", "world_model=jepa_sigreg,none", f"run_dir={tmp_path}", "hydra/launcher=joblib", *TINY]
    )
    assert root == tmp_path and hydra == ["hydra/launcher=joblib"] and len(jobs) == 4
    dirs = sorted(job[-1] for job in jobs)
    assert dirs[0] == f"run_dir={tmp_path}/seed-0__world_model-jepa_sigreg"
    with pytest.raises(ConfigError, match="Unknown config key 'agent.lrr'"):  # one bad job: nothing runs
        sweep.plan(["seed=0,1", "agent.lrr=1", f"run_dir={tmp_path / 'bad'}"])
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ConfigError, match="resumes its cut runs itself"):
        sweep.plan(["seed=0,1", f"resume={tmp_path}"])


def _sweep(tmp_path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "jepa_agents.cli", "train", "-m", "seed=0,1", f"run_dir={tmp_path}", *TINY]
    return subprocess.run([*cmd, *extra], capture_output=True, text=True, timeout=600)


def test_joblib_sweep_runs_in_parallel_and_a_rerun_skips_and_resumes(tmp_path):
    out = _sweep(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "Joblib.Parallel(n_jobs=2" in out.stdout + out.stderr  # Hydra's joblib launcher ran them
    assert "2 of 2 runs complete" in out.stdout
    runs = [tmp_path / "seed-0", tmp_path / "seed-1"]
    finals = [sorted((r / "checkpoints").glob("ckpt_*.pt")) for r in runs]
    assert [len(f) for f in finals] == [1, 1]  # each run complete (300 frames, in steps of 8)
    assert json.loads((tmp_path / "sweep.json").read_text())["jobs"][1][0] == "seed=1"
    # a cut run (its final checkpoint gone) resumes, the complete one is skipped
    finals[1][0].unlink()
    before = (runs[0] / "scalars.csv").read_bytes()
    again = _sweep(tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{runs[0]} is complete: skipped" in again.stdout
    assert f"resuming {runs[1]}" in again.stdout and "2 of 2 runs complete" in again.stdout
    assert (runs[0] / "scalars.csv").read_bytes() == before


def test_a_failing_job_is_one_line_and_the_sweep_says_what_is_left(tmp_path):
    # agent=discrete_sac does not fit the continuous task: each job fails to start, in one line
    out = _sweep(tmp_path, "agent=discrete_sac")
    assert out.returncode == 1 and "0 of 2 runs complete" in out.stdout, out.stderr[-2000:]
    assert out.stderr.count("error: [job ") == 2 and "Traceback" not in out.stderr
