"""The exceptions that mean bad input or a refused run: every entry point reports them as one ``error:``
line (no traceback) and exits non-zero; anything else is a bug and keeps its traceback."""

from __future__ import annotations


def user_errors() -> tuple[type[Exception], ...]:
    """The errors that are bad input or a refused run, reported as one ``error:`` line (no traceback)."""
    from envs.dmc_tasks import GLBackendError
    from jepa_agents.config.errors import ConfigError
    from jepa_agents.data.offline import DatasetError
    from jepa_agents.infra import distributed
    from jepa_agents.infra.checkpoint import CheckpointError
    from jepa_agents.infra.device import DeviceError
    from jepa_agents.infra.run_dir import RunDirError
    from jepa_agents.train.run import RunStartError, TrainingError
    from jepa_agents.zero_shot.tasks import TaskSpecError

    return (
        ConfigError,
        RunDirError,
        CheckpointError,
        TrainingError,
        RunStartError,
        DatasetError,
        DeviceError,
        GLBackendError,
        TaskSpecError,
        distributed.DistributedError,
    )
