"""Scalar logging to TensorBoard and to ``scalars.csv`` (long format ``step,tag,value,wall_time``).

The CSV is for tools without TensorBoard (and for ``jepa-agents plot``). On resume from a checkpoint
at step ``S`` both sinks drop what was logged after ``S``, so a resumed curve has no duplicates.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Mapping
from pathlib import Path

from jepa_agents.infra.run_dir import atomic_write_text

CSV_HEADER = ("step", "tag", "value", "wall_time")


def _truncate_csv(path: Path, last_step: int) -> None:
    """Keep the header and the complete rows with ``step <= last_step``."""
    kept = [",".join(CSV_HEADER)]
    with path.open(newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        for row in reader:
            if len(row) == 4 and row[0].isdigit() and int(row[0]) <= last_step:
                kept.append(",".join(row))
    atomic_write_text(path, "\n".join(kept) + "\n")


class Logger:
    """Write scalars to TensorBoard and CSV. ``resume_step`` purges later entries of a killed run."""

    def __init__(
        self,
        run_dir: Path,
        *,
        tensorboard: bool = True,
        csv_file: bool = True,
        resume_step: int | None = None,
    ):
        self._writer = None
        self._csv = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self._writer = SummaryWriter(log_dir=str(run_dir), purge_step=purge)
        if csv_file:
            path = run_dir / "scalars.csv"
            if resume_step is not None and path.exists():
                _truncate_csv(path, resume_step)
            new = not path.exists()
            self._csv = path.open("a", newline="", buffering=1)  # line-buffered: readable while running
            if new:
                self._csv.write(",".join(CSV_HEADER) + "\n")

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        """Log every ``tag -> value`` of ``metrics`` at ``step`` (values are converted to float)."""
        now = time.time()
        for tag, value in metrics.items():
            value = float(value)
            if self._writer is not None:
                self._writer.add_scalar(tag, value, step, walltime=now)
            if self._csv is not None:
                shown = repr(value) if math.isfinite(value) else str(value)
                self._csv.write(f"{step},{tag},{shown},{now:.3f}\n")

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()
        if self._csv is not None:
            self._csv.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._csv is not None:
            self._csv.close()


class NullLogger:
    """The logger of a rank other than 0 in a data-parallel run: rank 0 writes the run's scalars."""

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        return None

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None
