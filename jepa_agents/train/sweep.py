"""``jepa-agents train -m ...``: a sweep run by Hydra's own launchers, one run directory per job.

    jepa-agents train -m seed=0,1,2 world_model=jepa_sigreg,none run_dir=sweeps/ablation \\
        hydra/launcher=joblib hydra.launcher.n_jobs=2 num_threads=1

The sweep is planned here: the product of the sweep overrides is expanded into jobs, every job's config
is composed and validated (strict schema) before any runs, and each job gets its run directory
``<root>/<job name>`` (``root``: ``run_dir``, default ``runs/sweeps/<date>``; the name: the swept
overrides, e.g. ``seed-1__world_model-none``). The jobs go to ``<root>/sweep.json``; Hydra's multirun then
launches ``job_index=0..J-1`` through the launcher the command line names (``hydra/launcher=basic``,
one after another in this process, by default; ``joblib``: parallel processes; ``submitit_slurm``: SLURM
jobs, with ``root`` on storage the nodes share), and each job composes its config again from the file.
A job whose run is complete is skipped, a cut one resumes from its last checkpoint, so re-running the same
command finishes a sweep. Overrides whose key starts with ``hydra`` go to Hydra; the rest are ours.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys
from pathlib import Path

from omegaconf import DictConfig

from jepa_agents.config.errors import ConfigError
from jepa_agents.config.load import config_dir, expand_sweeps, parse_overrides
from jepa_agents.infra.run_dir import atomic_write_text

JOBS_FILE = "sweep.json"
"""The planned jobs under the sweep root: ``{"jobs": [[override, ...], ...]}``."""


def _is_hydra(override: str) -> bool:
    return override.lstrip("+~").startswith("hydra")


def job_name(job: list[str], swept: set[str]) -> str:
    """The run directory name of ``job``: its swept overrides as ``key-value`` joined by ``__`` (characters
    other than letters, digits, ``._-`` become ``-``), e.g. ``seed-1__world_model-none``; ``run`` when
    nothing varies."""
    parts = []
    for override in job:
        key, _, value = override.partition("=")
        if key in swept:
            parts.append(re.sub(r"[^A-Za-z0-9._-]", "-", f"{key}-{value}"))
    return "__".join(parts) or "run"


def plan(overrides: list[str]) -> tuple[Path, list[list[str]], list[str]]:
    """``(root, jobs, hydra_overrides)``: every job's overrides, its ``run_dir`` last, validated."""
    from jepa_agents.train.config import compose

    ours = [o for o in overrides if not _is_hydra(o)]
    hydra = [o for o in overrides if _is_hydra(o)]
    parsed = parse_overrides(ours)
    if any(ov.key_or_group == "resume" for ov in parsed):
        raise ConfigError("a sweep resumes its cut runs itself: run the same command again, without resume=")
    root_value = next((ov.get_value_element_as_str() for ov in parsed if ov.key_or_group == "run_dir"), "")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    root = Path(root_value or Path("runs") / "sweeps" / stamp)
    swept = {ov.key_or_group for ov in parsed if ov.is_sweep_override()}
    jobs = []
    for job in expand_sweeps([ov.input_line for ov in parsed if ov.key_or_group != "run_dir"]):
        jobs.append([*job, f"run_dir={root / job_name(job, swept)}"])
    names = [job[-1] for job in jobs]
    if len(set(names)) != len(names):
        raise ConfigError("two jobs of the sweep would share a run directory; sweep distinct values")
    for job in jobs:  # every job's config must be valid before any runs
        compose(job)
    return root, jobs, hydra


def launch(root: Path, jobs: list[list[str]], hydra_overrides: list[str]) -> int:
    """Write the jobs under ``root`` and run them through Hydra's multirun; ``0`` when every run is
    complete afterwards, ``1`` otherwise (the runs that are not are listed)."""
    import hydra

    root.mkdir(parents=True, exist_ok=True)
    jobs_file = root / JOBS_FILE
    atomic_write_text(jobs_file, json.dumps({"jobs": jobs}, indent=1))
    argv = [
        "jepa-agents",
        "-m",
        f"job_index={','.join(map(str, range(len(jobs))))}",
        f"jobs_file={jobs_file.resolve()}",
        f"hydra.sweep.dir={(root / '.hydra').resolve()}",
        *hydra_overrides,
    ]
    app = hydra.main(config_path=str(config_dir()), config_name="sweep", version_base=None)(run_job)
    saved_argv, root_logger = sys.argv, logging.getLogger()
    saved_logging = (root_logger.handlers[:], root_logger.level)
    sys.argv = argv
    try:
        app()
    finally:  # Hydra configures the root logger for its messages: give the process its own back
        sys.argv = saved_argv
        root_logger.handlers[:] = saved_logging[0]
        root_logger.setLevel(saved_logging[1])
    from jepa_agents.train.config import compose

    unfinished = [cfg.run_dir for cfg in map(compose, jobs) if not _complete(cfg)]
    print(f"sweep {root}: {len(jobs) - len(unfinished)} of {len(jobs)} runs complete", flush=True)
    for run_dir in unfinished:
        print(f"  not complete: {run_dir} (run the same command again to resume it)", flush=True)
    return 1 if unfinished else 0


def _complete(cfg: DictConfig) -> bool:
    """The run of a composed job config has its final checkpoint."""
    from jepa_agents.infra.checkpoint import finished_step

    return finished_step(Path(cfg.run_dir) / "checkpoints", cfg.train.total_env_steps) is not None


def run_job(cfg: DictConfig) -> None:
    """Hydra's task function: job ``cfg.job_index`` of ``cfg.jobs_file``, skipped when complete, resumed
    when cut. Expected errors are one ``error:`` line and do not stop the other jobs."""
    from jepa_agents.train.config import compose
    from jepa_agents.train.run import train
    from jepa_agents.user_errors import user_errors

    job = json.loads(Path(cfg.jobs_file).read_text())["jobs"][int(cfg.job_index)]
    try:
        run_cfg = compose(job)
        run_dir = Path(run_cfg.run_dir)
        if _complete(run_cfg):
            print(f"[job {cfg.job_index}] {run_dir} is complete: skipped", flush=True)
            return
        if (run_dir / "config.yaml").is_file():  # cut: continue it from its last checkpoint
            run_cfg = compose([*job, f"resume={run_dir}"])
        print(f"[job {cfg.job_index}] {' '.join(job[:-1]) or '(defaults)'} -> {run_dir}", flush=True)
        train(run_cfg)
    except user_errors() as err:
        print(f"error: [job {cfg.job_index}] {err}", file=sys.stderr, flush=True)
