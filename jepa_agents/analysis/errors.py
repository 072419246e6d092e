"""Error and warning types of ``jepa_agents.analysis``.

Library functions raise :class:`AnalysisError` for input they cannot work with (no runs, a metric no
run logged) and emit :class:`AnalysisWarning` for input they skip or repair (a path that is not a run
directory, NaN entries, a half-written CSV line). The ``plot`` CLI prints both as one-line messages.
"""

from __future__ import annotations


class AnalysisError(ValueError):
    """Input the analysis cannot proceed with; the message says what is wrong and what exists."""


class AnalysisWarning(UserWarning):
    """Input that was skipped or repaired; the analysis goes on without it."""
