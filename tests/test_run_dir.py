"""Run directories are never overwritten silently; unusable ones fail before training."""

import pytest

from jepa_agents.infra.logger import Logger
from jepa_agents.infra.run_dir import RunDirError, prepare_run_dir
from jepa_agents.train.config import compose


def test_new_run_writes_config_and_refuses_reuse(tmp_path):
    run = tmp_path / "run"
    cfg = compose([f"run_dir={run}"])
    prepare_run_dir(cfg)
    assert (run / "config.yaml").is_file() and (run / "checkpoints").is_dir() and (run / "videos").is_dir()
    before = (run / "config.yaml").read_text()
    with pytest.raises(RunDirError, match="already holds a run"):
        prepare_run_dir(compose([f"run_dir={run}", "seed=5"]))
    assert (run / "config.yaml").read_text() == before


def test_unwritable_run_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunDirError, match="not writable"):
        prepare_run_dir(compose([f"run_dir={blocker / 'run'}"]))


def test_no_disk_space(tmp_path):
    with pytest.raises(RunDirError, match="free"):
        prepare_run_dir(compose([f"run_dir={tmp_path / 'run'}", "train.min_free_disk_mb=999999999"]))


def test_logger_csv_and_resume_truncation(tmp_path):
    log = Logger(tmp_path, tensorboard=False)
    for step in (1, 2, 3):
        log.log({"a": step, "b": float("nan")}, step)
    log.close()
    with (tmp_path / "scalars.csv").open("a") as f:
        f.write("4,a,4")  # a half-written line of a killed run
    log = Logger(tmp_path, tensorboard=False, resume_step=2)
    log.close()
    rows = (tmp_path / "scalars.csv").read_text().strip().splitlines()
    assert rows[0] == "step,tag,value,wall_time"
    assert [r.split(",")[:3] for r in rows[1:]] == [
        ["1", "a", "1.0"],
        ["1", "b", "nan"],
        ["2", "a", "2.0"],
        ["2", "b", "nan"],
    ]
