"""Published DMC-from-pixels learning curves, drawn beside ours as dashed reference lines.

``reference_dmc_vision.csv`` (shipped with the package) has columns ``method,task,frames,mean_return,
std_return,seeds`` for DrQ-v2, DreamerV3 and CURL. It was computed from the published score files
``scores/dmc_vision-{drqv2,dreamerv3,curl}.json.gz`` of the danijar/dreamerv3 repository (x-axis:
environment frames as those files record them): for each 20k-frame grid point ``g``, the mean over seeds
of each seed's mean return over frames in ``(g - 10k, g + 10k]``; points with fewer than 2 seeds are left
out. Our ``torch/<task>`` and ``dmc/<task>`` runs are compared with the curve of ``<task>``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from jepa_agents.analysis.errors import AnalysisError

SOURCE = "published (danijar/dreamerv3 score files)"
"""How a figure names the source of the dashed reference curves (details in this module's docstring)."""
_CSV = Path(__file__).with_name("reference_dmc_vision.csv")


@dataclass(frozen=True)
class ReferenceCurve:
    """One method's published curve on one task: ``frames`` ``[P]``, ``mean`` and ``std`` over seeds."""

    method: str
    task: str
    frames: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    seeds: int


@cache
def _table() -> dict[tuple[str, str], ReferenceCurve]:
    rows: dict[tuple[str, str], list[tuple[float, float, float, int]]] = {}
    with _CSV.open(newline="") as f:
        for row in csv.DictReader(f):
            point = (float(row["frames"]), float(row["mean_return"]), float(row["std_return"]))
            rows.setdefault((row["method"], row["task"]), []).append((*point, int(row["seeds"])))
    out = {}
    for (method, task), points in rows.items():
        points.sort()
        frames, mean, std, seeds = (np.array(v) for v in zip(*points))
        out[method, task] = ReferenceCurve(method, task, frames, mean, std, int(seeds.min()))
    return out


def methods() -> list[str]:
    """The methods with published curves (``curl``, ``dreamerv3``, ``drqv2``)."""
    return sorted({m for m, _ in _table()})


def parse_methods(text: str) -> list[str]:
    """``"drqv2,dreamerv3"`` -> the list, each checked against :func:`methods`."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in methods()]
    if unknown or not names:
        raise AnalysisError(f"--reference {text!r}: choose from {', '.join(methods())} (comma-separated)")
    return names


def reference_curve(method: str, env: str) -> ReferenceCurve | None:
    """The published curve of ``method`` on the task of ``env`` (``dmc/walker_walk`` or
    ``torch/cartpole_swingup`` -> ``walker_walk`` / ``cartpole_swingup``), or None if there is none."""
    return _table().get((method, env.split("/", 1)[-1]))
