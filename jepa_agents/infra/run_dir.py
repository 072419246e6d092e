"""Run directories: one per run, never silently overwritten.

Layout::

    <run_dir>/
      config.yaml         fully resolved config of the run
      scalars.csv         step,tag,value,wall_time (step = environment steps)
      events.out.tfevents.*  TensorBoard, the same scalars
      checkpoints/ckpt_<step>.pt
      videos/eval_<step>.gif
      curve.png           learning curve written at the end of training
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


class RunDirError(RuntimeError):
    """The run directory cannot be used (exists already, unwritable, disk full)."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare_run_dir(cfg: DictConfig) -> Path:
    """Create (or, when resuming, reopen) the run directory and check it is writable with free disk.

    A new run refuses a directory that already holds a run; ``config.yaml`` is written only for new
    runs (a resumed run keeps its own).
    """
    run_dir = Path(cfg.run_dir)
    resuming = bool(cfg.resume)
    if not resuming and (run_dir / "config.yaml").exists():
        raise RunDirError(
            f"{run_dir} already holds a run. Resume it with `resume={run_dir}` or choose another run_dir."
        )
    try:
        for sub in ("", "checkpoints", "videos"):
            (run_dir / sub).mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise RunDirError(
            f"Run directory {run_dir} is not writable: {err.strerror}. Choose another run_dir."
        ) from None
    free_mb = shutil.disk_usage(run_dir).free / 2**20
    if free_mb < cfg.train.min_free_disk_mb:
        raise RunDirError(
            f"Only {free_mb:.0f} MiB free on the disk of {run_dir} (train.min_free_disk_mb="
            f"{cfg.train.min_free_disk_mb}). Free some space or choose a run_dir on another disk."
        )
    if not resuming:
        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg))
    return run_dir
