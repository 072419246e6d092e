"""Resolve the device once, at the entry point. Modules receive a ``torch.device`` and never choose."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """The configured device does not exist here (the command line reports it in one line)."""


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> ``cuda`` when available else ``cpu``; ``cpu``/``cuda``/``cuda:N`` are checked
    (:class:`DeviceError` naming the fix)."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise DeviceError(f"device={spec!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device={spec!r} but CUDA is not available here; use device=cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            n = torch.cuda.device_count()
            raise DeviceError(
                f"device={spec!r} but only {n} CUDA device(s) exist; use cuda:0..cuda:{n - 1} or auto"
            )
    elif device.type != "cpu":
        raise DeviceError(f"device={spec!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (CUDA launches return at once), so a timer measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def configure_threads(num_threads: int, deterministic: bool) -> None:
    """Apply ``torch.set_num_threads`` (0 keeps the default) and deterministic algorithms."""
    if num_threads < 0:
        raise ValueError(f"num_threads must be >= 0, got {num_threads}")
    if num_threads:
        torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
