"""Performance profiles (Agarwal et al. 2021): for each group, the fraction of runs whose final
(normalized) score exceeds a threshold ``tau``, averaged over tasks, as a function of ``tau``, with
95% stratified bootstrap bands. A curve that lies above another everywhere dominates it stochastically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jepa_agents.analysis.figures import group_colors, new_figure, save_figure
from jepa_agents.analysis.stats import performance_profile


def plot_performance_profiles(
    scores: Mapping[str, Mapping[str, np.ndarray]],
    out: Sequence[str | Path],
    scale: str = "score",
    num_taus: int = 101,
    reps: int = 2000,
    seed: int = 0,
) -> list[Path]:
    """Plot one profile per group from ``{group: {task: final scores of its runs}}``; write ``out``."""
    values = np.concatenate([v for tasks in scores.values() for v in tasks.values()])
    lo, hi = float(values.min()), float(values.max())
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    taus = np.linspace(lo - pad, hi + pad, num_taus)
    colors = group_colors(scores)
    fig = new_figure(5.6, 4.0)
    ax = fig.subplots()
    for group, tasks in sorted(scores.items()):
        frac, low, high = performance_profile(dict(tasks), taus, reps, rng=seed)
        runs = sum(len(v) for v in tasks.values())
        ax.plot(taus, frac, color=colors[group], lw=1.8, label=f"{group} ({runs} runs, {len(tasks)} tasks)")
        ax.fill_between(taus, low, high, color=colors[group], alpha=0.2, lw=0)
    ax.set_xlabel(f"{scale} threshold τ")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    ax.set_title("Performance profile (shaded: 95% stratified bootstrap CI)", fontsize="medium")
    return save_figure(fig, out)
