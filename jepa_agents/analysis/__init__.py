"""Analysis of run directories: loading, statistics (IQM, stratified bootstrap CIs, performance
profiles), learning curves, result tables and the ``jepa-agents plot`` command. See ``docs/plotting.md``.
"""

from jepa_agents.analysis.curves import compute_curves, plot_curves, plot_run_curve
from jepa_agents.analysis.errors import AnalysisError, AnalysisWarning
from jepa_agents.analysis.runs import Run, load_run, load_runs
from jepa_agents.analysis.tables import Table, all_tables

__all__ = [
    "AnalysisError",
    "AnalysisWarning",
    "Run",
    "Table",
    "all_tables",
    "compute_curves",
    "load_run",
    "load_runs",
    "plot_curves",
    "plot_run_curve",
]
