"""What a reward-free dataset covers: occupancy per region and the rewarded fraction per task.

A zero-shot comparison is only as good as its data: a task whose goal the data never visits cannot be
inferred, and its score says nothing about the method. :func:`coverage` relabels every transition's
next physics state with each task of the domain and counts it as *rewarded* when the reward is at least
:data:`REWARDED` (the goal-reaching rewards are 1 inside the goal and 0.1 at its margin); tasks below
:data:`MIN_REWARDED` (1 %) are flagged. For the point-mass maze it also reports the fraction of states in
each of the four rooms. ``jepa-agents collect`` writes the report as ``coverage.json`` into the dataset
and prints it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

import envs
from jepa_agents.infra.run_dir import atomic_write_text
from jepa_agents.zero_shot.evaluate import domain_tasks
from jepa_agents.zero_shot.tasks import MIN_REWARDED, REWARDED, rewarded_fraction

MAX_STATES = 20_000
"""Larger datasets are reported on this many transitions drawn uniformly (fixed seed): dm_control
relabeling sets each state in MuJoCo one by one."""
COVERAGE_FILE = "coverage.json"


def maze_rooms(physics: Tensor) -> dict[str, float]:
    """Fraction of maze states ``[M, 6]`` in each room (split by the wall cross at ``x = 0``, ``y = 0``)."""
    x, y = physics[:, 0], physics[:, 1]
    rooms = {
        "bottom_left": (x < 0) & (y < 0),
        "bottom_right": (x >= 0) & (y < 0),
        "top_left": (x < 0) & (y >= 0),
        "top_right": (x >= 0) & (y >= 0),
    }
    return {name: float(mask.float().mean()) for name, mask in rooms.items()}


def coverage(env_name: str, physics: Tensor) -> dict:
    """The report for next physics states ``[M, P]`` of domain ``env_name``: ``transitions``,
    ``rewarded`` (task -> fraction), ``flagged`` (tasks under 1 %) and, for the maze, ``rooms``."""
    if physics.ndim != 2 or physics.shape[0] == 0:
        raise ValueError(f"coverage needs physics states [M, P] with M >= 1, got {tuple(physics.shape)}")
    rewarded = {}
    for task in domain_tasks(env_name):
        rewarded[task] = rewarded_fraction(envs.relabel(env_name, physics, task=task))  # of [M]
    report = {
        "transitions": int(physics.shape[0]),
        "rewarded_threshold": REWARDED,
        "rewarded": rewarded,
        "flagged": sorted(t for t, f in rewarded.items() if f < MIN_REWARDED),
    }
    if env_name == "torch/point_mass_maze":
        report["rooms"] = maze_rooms(physics)
    return report


def format_report(report: dict) -> str:
    """The report as a few lines of text (what ``collect`` prints)."""
    threshold = report["rewarded_threshold"]
    lines = [f"coverage of {report['transitions']} transitions (rewarded: reward >= {threshold})"]
    for name, share in report.get("rooms", {}).items():
        lines.append(f"  room {name:<14} {100 * share:6.2f} % of states")
    for task, share in report["rewarded"].items():
        flag = "  <- under 1 %: the data hardly reaches this task" if task in report["flagged"] else ""
        lines.append(f"  task {task:<34} {100 * share:6.2f} % rewarded{flag}")
    return "\n".join(lines)


def write_coverage(root: Path, env_name: str, physics: Tensor) -> dict:
    """The report of a dataset's next physics states ``[M, P]`` (at most :data:`MAX_STATES` of them,
    drawn uniformly with a fixed seed), saved atomically as ``<root>/coverage.json``."""
    physics = torch.as_tensor(physics).float()
    if physics.shape[0] > MAX_STATES:
        pick = torch.randperm(physics.shape[0], generator=torch.Generator().manual_seed(0))[:MAX_STATES]
        physics = physics[pick.sort().values]
    report = coverage(env_name, physics)
    atomic_write_text(Path(root) / COVERAGE_FILE, json.dumps(report, indent=2) + "\n")
    return report
