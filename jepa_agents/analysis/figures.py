"""Shared figure helpers: Agg figures, group colours, axis units and saving.

Figures are built on the non-interactive Agg canvas directly (``Figure`` + ``FigureCanvasAgg``), the
way matplotlib recommends for servers: no display is needed and pyplot's global state (or a backend
chosen by the caller, e.g. in a notebook) is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from jepa_agents.analysis.errors import AnalysisError

FORMATS = (".png", ".svg", ".pdf")
X_LABELS = {"step": "env frames", "wall_time": "wall-clock time (hours)"}


def new_figure(width: float, height: float) -> Figure:
    """An empty figure on an Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def group_colors(groups: Iterable[str]) -> dict[str, tuple[float, ...]]:
    """One colour per group, by sorted group name, so that every figure of a set uses the same ones."""
    names = sorted(set(groups))
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def si(value: float, _pos: object = None) -> str:
    """Compact number: ``250000 -> '250k'``, ``1.5e6 -> '1.5M'``."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def label_x(ax: Axes, x: str, text: str | None = None) -> None:
    """Label the x axis with its unit (or ``text``); steps get compact ticks (``250k``, ``1.5M``)."""
    ax.set_xlabel(text or X_LABELS[x])
    if x == "step":
        ax.xaxis.set_major_formatter(FuncFormatter(si))


def check_outputs(paths: Sequence[str | Path]) -> list[Path]:
    """Fail early (before any work) on an output format other than PNG, SVG or PDF."""
    out = [Path(p) for p in paths]
    for path in out:
        if path.suffix.lower() not in FORMATS:
            raise AnalysisError(f"cannot write {path}: the file name must end in {', '.join(FORMATS)}")
    return out


def save_figure(fig: Figure, paths: Sequence[str | Path], dpi: int = 150) -> list[Path]:
    """Write ``fig`` to every path (format from the suffix), creating folders as needed."""
    out = check_outputs(paths)
    for path in out:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")  # legends placed outside the axes included
    return out
