"""Learning curves: align seeds on a common x grid, aggregate them, plot one panel per environment.

Alignment: the runs of one (environment, group) are linearly interpolated onto the union of their
logged x values (thinned to at most ``max_points``), restricted to the range that *every* run covers,
``[max of first x, min of last x]``. Nothing is extrapolated, so the curve of a group stops where its
shortest run stops (a warning says so when the runs have different lengths).

Aggregation across seeds at each grid point: the mean, or the IQM (interquartile mean, see
:mod:`jepa_agents.analysis.stats`). The band is the 95% percentile bootstrap interval over seeds: whole
runs are resampled with replacement (one resample is used for all grid points, so the band describes
the uncertainty of the curve, not of independent points). A single seed gets no band.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jepa_agents.analysis.errors import AnalysisWarning
from jepa_agents.analysis.figures import X_LABELS, group_colors, label_x, new_figure, save_figure, si
from jepa_agents.analysis.references import SOURCE as REFERENCE_SOURCE
from jepa_agents.analysis.references import reference_curve
from jepa_agents.analysis.runs import Run, finite_series, group_label, load_run, require_metric
from jepa_agents.analysis.stats import batch_iqm, batch_mean

AGGREGATES = {"mean": batch_mean, "iqm": batch_iqm}


@dataclass(frozen=True)
class Curve:
    """The aggregated curve of one group on one environment; ``low``/``high`` are None for one seed."""

    env: str
    group: str
    num_runs: int
    x: np.ndarray
    center: np.ndarray
    low: np.ndarray | None
    high: np.ndarray | None


def run_xy(run: Run, metric: str, x: str = "step") -> tuple[np.ndarray, np.ndarray]:
    """The finite points of ``metric`` against env frames (``x="step"``) or hours since the run's first
    log (``x="wall_time"``)."""
    series = finite_series(run, metric)
    if x == "step":
        return series.steps, series.values
    start = min(s.wall_times.min() for s in run.scalars.values() if len(s))
    order = np.argsort(series.wall_times, kind="stable")
    return (series.wall_times[order] - start) / 3600.0, series.values[order]


def align(
    curves: Sequence[tuple[np.ndarray, np.ndarray]], max_points: int = 300
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate every ``(x, y)`` onto a common grid covered by all of them.

    Returns ``(grid, values)`` with ``values`` shaped ``[num_curves, len(grid)]``; the grid is empty when
    the curves share no x range.
    """
    start = max(float(xs[0]) for xs, _ in curves)
    end = min(float(xs[-1]) for xs, _ in curves)
    if start > end:
        return np.empty(0), np.empty((len(curves), 0))
    grid = np.unique(np.concatenate([xs[(xs >= start) & (xs <= end)] for xs, _ in curves]))
    if len(grid) > max_points:
        grid = grid[np.unique(np.linspace(0, len(grid) - 1, max_points).round().astype(int))]
    return grid, np.stack([np.interp(grid, xs, ys) for xs, ys in curves])


def aggregate(
    values: np.ndarray, agg: str = "iqm", reps: int = 1000, alpha: float = 0.05, rng: int | None = 0
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Aggregate ``values [num_runs, G]`` over runs; bootstrap band over runs (None for a single run)."""
    statistic = AGGREGATES[agg]
    center = statistic([values.T])
    if values.shape[0] < 2:
        return center, None, None
    idx = np.random.default_rng(rng).integers(0, values.shape[0], size=(reps, values.shape[0]))
    boot = statistic([values[idx].transpose(0, 2, 1)])
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    return center, low, high


def compute_curves(
    runs: Sequence[Run],
    metric: str = "eval/return",
    group_by: Sequence[str] = ("agent.name",),
    agg: str = "iqm",
    x: str = "step",
    reps: int = 1000,
    seed: int = 0,
) -> list[Curve]:
    """One :class:`Curve` per (environment, group) among the runs that logged ``metric``."""
    cells: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    for run in require_metric(runs, metric):
        xs, ys = run_xy(run, metric, x)
        if len(xs) == 0:
            warnings.warn(
                f"run {run.path} has no finite {metric!r} value; skipped", AnalysisWarning, stacklevel=2
            )
            continue
        cells.setdefault((run.env(), group_label(run, group_by)), []).append((xs, ys))
    curves = []
    for (env, group), members in sorted(cells.items()):
        grid, values = align(members)
        ends = [float(xs[-1]) for xs, _ in members]
        where = f"{metric!r} of {group!r} on {env!r}"
        if len(grid) == 0:
            warnings.warn(f"{where}: the runs share no x range; skipped", AnalysisWarning, stacklevel=2)
            continue
        if min(ends) < max(ends):
            fmt = si if x == "step" else "{:.2f}".format
            warnings.warn(
                f"{where}: runs end between {fmt(min(ends))} and {fmt(max(ends))} ({X_LABELS[x]}); the "
                f"curve stops at {fmt(min(ends))}, where its shortest run ends",
                AnalysisWarning,
                stacklevel=2,
            )
        center, low, high = aggregate(values, agg, reps, rng=seed)
        curves.append(Curve(env, group, len(members), grid, center, low, high))
    return curves


LEGEND_INSIDE = 4
"""A panel's legend with more entries than this goes below the panel rather than over its curves."""


def _legend_label(curve: Curve) -> str:
    if curve.num_runs == 1:
        return f"{curve.group} (1 seed, no band)"
    return f"{curve.group} (n={curve.num_runs} seeds)"


def plot_curves(
    curves: Sequence[Curve],
    out: Sequence[str | Path],
    metric: str = "eval/return",
    agg: str = "iqm",
    x: str = "step",
    x_label: str | None = None,
    references: Sequence[str] = (),
) -> list[Path]:
    """Draw one panel per environment, one colour per group (the same in every panel); write ``out``.

    ``x_label`` names the x unit when ``step`` is not env frames (offline runs count gradient updates).
    ``references`` (e.g. ``["drqv2", "dreamerv3"]``): published curves of the panel's task as dashed
    lines, up to the panel's last x (:mod:`jepa_agents.analysis.references`).
    """
    envs = sorted({c.env for c in curves})
    colors = group_colors(c.group for c in curves)
    ncols = min(3, len(envs))
    nrows = math.ceil(len(envs) / ncols)
    entries = max(sum(c.env == env for c in curves) for env in envs) + len(references)
    below = entries > LEGEND_INSIDE  # room under each row of panels for a legend of that many lines
    fig = new_figure(4.6 * ncols, (3.4 + (0.24 * entries + 0.5 if below else 0)) * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, env in zip(axes, envs):
        for curve in (c for c in curves if c.env == env):
            color = colors[curve.group]
            marker = "o" if len(curve.x) == 1 else None
            ax.plot(curve.x, curve.center, color=color, lw=1.8, marker=marker, label=_legend_label(curve))
            if curve.low is not None:
                ax.fill_between(curve.x, curve.low, curve.high, color=color, alpha=0.2, lw=0)
        last_x = max(float(c.x.max()) for c in curves if c.env == env)
        _plot_references(ax, env, references, last_x)
        ax.set_title(env)
        label_x(ax, x, x_label)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if below:  # under the panel and its x label, off the curves
            ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.22), framealpha=0.8)
        else:
            ax.legend(fontsize="small", loc="best", framealpha=0.8)
    for ax in axes[len(envs) :]:
        ax.set_visible(False)
    sep = "\n" if ncols == 1 else "; "
    banded = any(c.low is not None for c in curves)
    note = f"{sep}shaded: 95% bootstrap CI" if banded else f"{sep}one seed per curve: no band"
    if references:
        note += f"{sep}dashed: {REFERENCE_SOURCE}"
    fig.suptitle(f"{metric}: {agg.upper() if agg == 'iqm' else agg} over seeds{note}", fontsize="medium")
    return save_figure(fig, out)


def _plot_references(ax, env: str, methods: Sequence[str], last_x: float) -> None:
    """Dashed published curves of ``env``'s task up to ``last_x`` (a warning names any that is missing)."""
    for i, method in enumerate(methods):
        ref = reference_curve(method, env)
        if ref is None:
            warnings.warn(f"no published {method} curve for {env}", AnalysisWarning, stacklevel=3)
            continue
        keep = ref.frames <= last_x * 1.05
        if not keep.any():
            continue
        label = f"{method} (published, {ref.seeds} seeds)"
        gray = 0.15 + 0.3 * i
        style = dict(ls="--", lw=1.4, marker=".", color=(gray, gray, gray))
        ax.plot(ref.frames[keep], ref.mean[keep], label=label, **style)


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` points (shorter at the start)."""
    csum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def plot_run_curve(
    run_dir: str | Path,
    out_png: str | Path,
    metric: str = "eval/return",
    train_metric: str = "train/episode_return",
) -> Path:
    """Plot one run's training returns (raw and a 20-episode moving average) and ``metric`` vs env frames.

    Meant for the end of training (``curve.png`` in the run directory). Tags the run has not logged are
    left out; when it has logged neither, the figure says so instead of failing the training run.
    """
    run = load_run(run_dir)
    fig = new_figure(6.4, 4.0)
    ax = fig.subplots()
    drawn = False
    if train_metric in run.scalars:
        series = finite_series(run, train_metric)
        if len(series):
            ax.plot(series.steps, series.values, color="tab:blue", alpha=0.25, lw=0.8, label=train_metric)
            smooth = _moving_average(series.values, 20)
            ax.plot(series.steps, smooth, color="tab:blue", lw=1.6, label=f"{train_metric} (moving avg, 20)")
            drawn = True
    if metric in run.scalars:
        series = finite_series(run, metric)
        if len(series):
            ax.plot(series.steps, series.values, color="tab:orange", lw=1.8, marker="o", ms=3, label=metric)
            drawn = True
    if "eval/random_return" in run.scalars:  # the uniformly random policy (eval.at_start)
        baseline = finite_series(run, "eval/random_return")
        if len(baseline):
            ax.axhline(float(baseline.values[-1]), color="gray", ls="--", lw=1.2, label="random policy")
    if drawn:
        ax.legend(fontsize="small", loc="best")
    else:
        ax.text(
            0.5,
            0.5,
            f"no {train_metric} or {metric} logged yet",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    label_x(ax, "step")
    ax.set_ylabel("return")
    ax.grid(alpha=0.3)
    ax.set_title(f"{run.name}: {run.env()}, {run.get('agent.name', 'unknown agent')}", fontsize="medium")
    return save_figure(fig, [out_png])[0]
