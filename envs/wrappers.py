"""Pieces shared by the simulator-backed families (``envs.atari``, ``envs.dmc``).

* :func:`to_device` -- host numpy batch -> tensor on the env's device (pinned + non-blocking for CUDA);
* :func:`check_action` -- validates an action batch before it reaches a simulator (no C++ aborts);
* :class:`EpisodeStats` -- running episode return ``R_t = sum_{s<=t} r_s`` and length per copy;
* :func:`flag_spec`, :func:`episode_specs`, :func:`done_spec` -- the spec entries every family shares.
"""

from __future__ import annotations

import numpy as np
import torch
from torchrl.data import Categorical, Composite, Unbounded


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """``[...]`` numpy array -> tensor on ``device``.

    On CUDA the host copy is pinned and sent with ``non_blocking=True`` (the caching host allocator keeps
    the pinned block alive until the copy is done), so the transfer overlaps with the next simulator step.
    The array must not be modified afterwards on CPU (the tensor shares its memory).
    """
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cpu":
        return tensor
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def check_action(
    action: torch.Tensor,
    shape: tuple[int, ...],
    *,
    integer: bool,
    low: float,
    high: float,
    env_name: str,
) -> np.ndarray:
    """Return ``action`` as a CPU numpy array after checking shape, dtype and bounds ``[low, high]``.

    Integer actions must have an integer dtype; continuous ones a floating dtype and finite values.
    Raises ``ValueError`` (shape, range) or ``TypeError`` (dtype) naming the env and what was expected.
    """
    if not isinstance(action, torch.Tensor):
        raise TypeError(f"{env_name}: action must be a torch.Tensor, got {type(action).__name__}")
    if tuple(action.shape) != tuple(shape):
        raise ValueError(f"{env_name}: action must have shape {list(shape)}, got {list(action.shape)}")
    if integer and (action.dtype.is_floating_point or action.dtype.is_complex or action.dtype == torch.bool):
        raise TypeError(f"{env_name}: discrete actions must be an integer tensor, got {action.dtype}")
    if not integer and not action.dtype.is_floating_point:
        raise TypeError(f"{env_name}: continuous actions must be a floating tensor, got {action.dtype}")
    array = action.detach().cpu().numpy()
    if not integer and not np.isfinite(array).all():
        raise ValueError(f"{env_name}: action contains NaN or inf")
    if array.size and (array.min() < low or array.max() > high):
        raise ValueError(
            f"{env_name}: action out of range [{low}, {high}]: got min {array.min()}, max {array.max()}"
        )
    return array


class EpisodeStats:
    """Running return ``R = sum_t r_t`` (float64) and length ``L`` (agent steps) of each of ``n`` copies."""

    def __init__(self, n: int):
        self.returns = np.zeros(n, np.float64)
        self.lengths = np.zeros(n, np.int64)

    def add(self, reward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Accumulate ``reward [n]``; returns copies ``(return [n, 1] float32, length [n, 1] int64)``."""
        self.returns += reward
        self.lengths += 1
        return self.returns.astype(np.float32)[:, None], self.lengths.copy()[:, None]

    def reset(self, mask: np.ndarray) -> None:
        """Zero the copies selected by the boolean ``mask [n]``."""
        self.returns[mask] = 0.0
        self.lengths[mask] = 0

    def current(self) -> tuple[np.ndarray, np.ndarray]:
        """``(return [n, 1] float32, length [n, 1] int64)`` without stepping."""
        return self.returns.astype(np.float32)[:, None], self.lengths.copy()[:, None]


def flag_spec(n: int, device: torch.device) -> Categorical:
    """A bool ``[n, 1]`` flag (``done``-like)."""
    return Categorical(2, shape=(n, 1), dtype=torch.bool, device=device)


def episode_specs(n: int, device: torch.device) -> dict:
    """``episode_return`` float32 ``[n, 1]`` and ``episode_length`` int64 ``[n, 1]`` (running, reset to 0)."""
    return {
        "episode_return": Unbounded(shape=(n, 1), dtype=torch.float32, device=device),
        "episode_length": Unbounded(shape=(n, 1), dtype=torch.int64, device=device),
    }


def done_spec(n: int, device: torch.device) -> Composite:
    """``done``, ``terminated``, ``truncated``: bool ``[n, 1]``."""
    return Composite(
        done=flag_spec(n, device),
        terminated=flag_spec(n, device),
        truncated=flag_spec(n, device),
        shape=(n,),
        device=device,
    )
