"""Discover and load run directories (see ``docs/CONTRACTS.md``, "Run directory").

A run directory holds ``config.yaml`` and its scalars, either ``scalars.csv`` (long format
``step,tag,value,wall_time``; ``step`` counts env frames) or TensorBoard ``events.out.tfevents.*`` files.
The CSV is read when present (it is the cheaper and exact record); the TensorBoard events are the
fallback. Runs may still be going: a half-written last CSV line is dropped, and every run may have a
different length.
"""

from __future__ import annotations

import csv
import glob
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from jepa_agents.analysis.errors import AnalysisError, AnalysisWarning

CSV_NAME = "scalars.csv"
CONFIG_NAME = "config.yaml"
EVENTS_GLOB = "events.out.tfevents.*"
CSV_HEADER = ("step", "tag", "value", "wall_time")
_MISSING = object()


@dataclass(frozen=True)
class Series:
    """One scalar tag of one run: ``steps`` (env frames, increasing), ``values`` and ``wall_times``."""

    steps: np.ndarray
    values: np.ndarray
    wall_times: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)


@dataclass
class Run:
    """A loaded run directory: its resolved config and one :class:`Series` per logged tag."""

    path: Path
    config: DictConfig
    scalars: dict[str, Series] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def tags(self) -> list[str]:
        return sorted(self.scalars)

    def get(self, key: str, default: object = _MISSING) -> object:
        """The config value at dotted ``key`` (e.g. ``"world_model.regularizer"``).

        Raises :class:`AnalysisError` naming the run when the key is absent and no ``default`` is given.
        """
        value = OmegaConf.select(self.config, key, default=_MISSING)
        if value is _MISSING:
            if default is not _MISSING:
                return default
            raise AnalysisError(f"run {self.path}: config has no key {key!r}")
        return value

    def env(self, key: str = "env.name") -> str:
        """The environment name, ``"unknown env"`` when the config does not say; a distracted task is
        another environment: ``torch/cartpole_swingup+color0.5+background0.5`` (its active strengths,
        with ``+heldout`` when evaluated on held-out backgrounds)."""
        name = str(self.get(key, "unknown env"))
        if key != "env.name":
            return name
        distraction = self.get("env.distraction", None) or {}
        for kind in ("color", "background", "camera"):
            if float(distraction.get(kind, 0.0)) > 0:
                name += f"+{kind}{float(distraction[kind]):g}"
        if distraction.get("eval_heldout", False):
            name += "+heldout"
        return name


def is_run_dir(path: Path) -> bool:
    """A run directory has ``config.yaml`` and ``scalars.csv`` or TensorBoard events."""
    return (
        path.is_dir()
        and (path / CONFIG_NAME).is_file()
        and ((path / CSV_NAME).is_file() or any(path.glob(EVENTS_GLOB)))
    )


def _why_not_run_dir(path: Path) -> str:
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is not a run directory (it is a file)"
    if not (path / CONFIG_NAME).is_file():
        return f"{path} is not a run directory (no {CONFIG_NAME})"
    return f"{path} is not a run directory (no {CSV_NAME} or TensorBoard events yet)"


def _runs_at(path: Path) -> list[Path]:
    """``[path]`` for a run directory, the run directories below a folder (any depth), else ``[]``."""
    if is_run_dir(path):
        return [path]
    if path.is_dir():
        return sorted(p.parent for p in path.rglob(CONFIG_NAME) if is_run_dir(p.parent))
    return []


def expand(patterns: Iterable[str | Path]) -> list[Path]:
    """The run directories that ``patterns`` name, duplicates removed, order kept.

    A pattern is a run directory, a folder containing run directories (at any depth), or a glob
    (``**`` included) whose matches are those. A plain path that yields no run is reported with an
    :class:`AnalysisWarning` saying why and skipped; so is a glob none of whose matches yields a run
    (the other matches of a glob, such as ``checkpoints/`` under ``runs/**``, are ignored silently).
    """
    found: list[Path] = []
    for pattern in patterns:
        text = str(pattern)
        if not glob.has_magic(text):
            runs = _runs_at(Path(text))
            if not runs:
                warnings.warn(f"{_why_not_run_dir(Path(text))}; skipped", AnalysisWarning, stacklevel=2)
            found += runs
            continue
        runs = [run for match in sorted(glob.glob(text, recursive=True)) for run in _runs_at(Path(match))]
        if not runs:
            warnings.warn(f"{text} matches no run directory; skipped", AnalysisWarning, stacklevel=2)
        found += runs
    return list(dict.fromkeys(p.resolve() for p in found))


def read_scalars_csv(path: Path) -> dict[str, Series]:
    """Parse ``scalars.csv``, tolerating a run that is still writing it.

    A last line without its newline is half-written and dropped; other malformed lines are dropped
    with a warning. When a step is logged twice for a tag (a run resumed from a checkpoint) the later
    line wins.
    """
    text = path.read_text()
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines.pop()
    rows: dict[str, dict[float, tuple[float, float]]] = {}
    bad = 0
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is not None and tuple(h.strip() for h in header) != CSV_HEADER:
        raise AnalysisError(f"{path}: header is {header}, expected {','.join(CSV_HEADER)}")
    for row in reader:
        try:
            step, tag, value, wall = float(row[0]), row[1], float(row[2]), float(row[3])
        except (IndexError, ValueError):
            bad += 1
            continue
        if len(row) != 4 or not math.isfinite(step):
            bad += 1
            continue
        rows.setdefault(tag, {})[step] = (value, wall)
    if bad:
        warnings.warn(f"{path}: dropped {bad} malformed line(s)", AnalysisWarning, stacklevel=2)
    return {tag: _series(by_step) for tag, by_step in rows.items()}


def _series(by_step: dict[float, tuple[float, float]]) -> Series:
    steps = np.array(sorted(by_step), dtype=np.float64)
    pairs = np.array([by_step[s] for s in steps], dtype=np.float64).reshape(-1, 2)
    return Series(steps, pairs[:, 0], pairs[:, 1])


def read_scalars_tensorboard(run_dir: Path) -> dict[str, Series]:
    """Read every scalar of the TensorBoard events files in ``run_dir`` (all points, no sampling)."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()[SCALARS]:
        by_step = {float(e.step): (float(e.value), float(e.wall_time)) for e in acc.Scalars(tag)}
        out[tag] = _series(by_step)
    return out


def load_run(path: str | Path) -> Run:
    """Load one run directory (CSV first, TensorBoard events when there is no CSV)."""
    path = Path(path)
    if not is_run_dir(path):
        raise AnalysisError(_why_not_run_dir(path))
    config = OmegaConf.load(path / CONFIG_NAME)
    if not isinstance(config, DictConfig):
        raise AnalysisError(f"{path / CONFIG_NAME} is not a mapping")
    csv_path = path / CSV_NAME
    scalars = read_scalars_csv(csv_path) if csv_path.is_file() else read_scalars_tensorboard(path)
    return Run(path=path, config=config, scalars=scalars)


def load_runs(patterns: Sequence[str | Path]) -> list[Run]:
    """Load every run that ``patterns`` name (see :func:`expand`); skip unreadable ones with a warning.

    Raises :class:`AnalysisError` when no run is left.
    """
    runs = []
    for path in expand(patterns):
        try:
            runs.append(load_run(path))
        except (AnalysisError, OSError, ValueError) as err:
            warnings.warn(f"{path}: cannot be read ({err}); skipped", AnalysisWarning, stacklevel=2)
    if not runs:
        named = ", ".join(str(p) for p in patterns) or "(none)"
        raise AnalysisError(f"no run directories found in: {named}")
    return runs


def group_label(run: Run, keys: Sequence[str]) -> str:
    """The group of ``run``: its config values at ``keys``, joined by ``" / "`` (``"<unset>"`` if absent)."""
    return " / ".join(str(run.get(key, "<unset>")) for key in keys)


def check_group_keys(runs: Sequence[Run], keys: Sequence[str]) -> None:
    """Fail when a grouping key exists in no run's config (most likely a typo); list the top-level keys."""
    for key in keys:
        absent = object()
        if all(run.get(key, absent) is absent for run in runs):
            top = sorted({str(k) for run in runs for k in run.config.keys()})
            raise AnalysisError(
                f"no run has config key {key!r}; top-level keys are: {', '.join(top) or '(none)'}"
            )


def require_metric(runs: Sequence[Run], metric: str) -> list[Run]:
    """The runs that logged ``metric``; warn about the others, fail if none did (listing what exists)."""
    having = [run for run in runs if metric in run.scalars]
    if not having:
        logged = sorted({tag for run in runs for tag in run.tags})
        raise AnalysisError(
            f"no run logged metric {metric!r}; metrics logged: {', '.join(logged) or '(none)'}"
        )
    for run in runs:
        if metric not in run.scalars:
            warnings.warn(f"run {run.path} has not logged {metric!r}; skipped", AnalysisWarning, stacklevel=2)
    return having


def finite_series(run: Run, metric: str) -> Series:
    """``run``'s series of ``metric`` without NaN/inf entries (dropped with a warning)."""
    series = run.scalars[metric]
    keep = np.isfinite(series.values)
    if not keep.all():
        warnings.warn(
            f"run {run.path}: dropped {int((~keep).sum())} NaN/inf value(s) of {metric!r}",
            AnalysisWarning,
            stacklevel=2,
        )
    return Series(series.steps[keep], series.values[keep], series.wall_times[keep])
