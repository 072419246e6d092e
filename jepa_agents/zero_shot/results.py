"""Per-seed zero-shot results shared by many runs: ``eval.results_csv`` (e.g. ``docs/results/zero_shot.csv``).

Every evaluation that has ``eval.results_csv`` set writes one row per task (and the ``mean`` row) with the
columns :data:`COLUMNS`; a row with the same ``domain, method, task, seed, updates`` is replaced, so
re-evaluating a run never duplicates it. Runs may write at the same time: the file is rewritten whole,
atomically, under an exclusive lock (``<csv>.lock``). :func:`summary` turns the rows into the mean and
95 % bootstrap interval over seeds per ``domain, method, task, updates``.
"""

from __future__ import annotations

import csv
import fcntl
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from jepa_agents.analysis.stats import batch_mean, bootstrap_ci

COLUMNS = ("domain", "method", "task", "seed", "updates", "return")
_KEY = ("domain", "method", "task", "seed", "updates")


def method_label(agent_cfg, z_inference: str = "own") -> str:
    """``fb`` or ``td_jepa_<regularizer>`` (``orthonormality``, ``sigreg``, ``none``) with the encoders'
    normalization when it is not the regularizer's own (orthonormality: on the sphere, as the paper; SIGReg
    and none: unnormalized, as LeJEPA's embeddings): ``_sphere`` or ``_unnormalized``; then
    ``_two_stream`` for the reference's network layout (``agent.network``), ``_pessimism<λ>`` for a
    pessimistic actor (``agent.actor_pessimism``). TD-JEPA evaluated with
    ``eval.z_inference=mean`` gets ``+mean_z``. E.g. ``td_jepa_sigreg_sphere_two_stream+mean_z``."""
    label = "fb"
    if agent_cfg.name != "fb":
        label = f"td_jepa_{agent_cfg.regularizer}"
        if agent_cfg.encoder_norm != (agent_cfg.regularizer == "orthonormality"):
            label += "_sphere" if agent_cfg.encoder_norm else "_unnormalized"
    if agent_cfg.network == "two_stream":
        label += "_two_stream"
    if agent_cfg.actor_pessimism:
        label += f"_pessimism{agent_cfg.actor_pessimism:g}"
    return label + ("+mean_z" if z_inference == "mean" and agent_cfg.name != "fb" else "")


def read_rows(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(
                f"{path} is not a zero-shot results file: columns {reader.fieldnames}, want {COLUMNS}"
            )
        return list(reader)


def write_results(
    path: str | Path, domain: str, method: str, seed: int, updates: int, returns: Mapping[str, float]
) -> Path:
    """Add (or replace) the rows ``task -> mean return`` of one evaluation (module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = [
        {"domain": domain, "method": method, "task": task, "seed": str(seed), "updates": str(updates),
         "return": repr(float(value))}
        for task, value in returns.items()
    ]  # fmt: skip
    keys = {tuple(r[k] for k in _KEY) for r in new}
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = [r for r in read_rows(path) if tuple(r[k] for k in _KEY) not in keys] + new
        rows.sort(key=lambda r: (r["domain"], r["method"], r["task"], int(r["updates"]), int(r["seed"])))
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
    return path


def summary(rows: list[dict[str, str]], reps: int = 2000, seed: int = 0) -> list[dict[str, object]]:
    """Per ``domain, method, task, updates``: ``seeds``, ``mean`` and its 95 % bootstrap ``low``/``high``
    over seeds (NaN returns, tasks not evaluated, are left out)."""
    groups: dict[tuple[str, str, str, int], list[float]] = {}
    for r in rows:
        value = float(r["return"])
        if math.isfinite(value):
            groups.setdefault((r["domain"], r["method"], r["task"], int(r["updates"])), []).append(value)
    out = []
    for (domain, method, task, updates), values in sorted(groups.items()):
        est = bootstrap_ci(np.array(values), batch_mean, reps, rng=seed)
        out.append(
            {"domain": domain, "method": method, "task": task, "updates": updates, "seeds": len(values),
             "mean": est.value, "low": est.low, "high": est.high}
        )  # fmt: skip
    return out
