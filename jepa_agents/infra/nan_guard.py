"""The guard every learner runs between ``backward()`` and ``optimizer.step()``."""

from __future__ import annotations

import torch
from torch import Tensor


class NaNGuard:
    """Decides whether an update may be applied: its losses (and gradient norm) must be finite.

    ``ok(values)`` reads the tensors once (one host sync) and returns ``True`` when every value is
    finite; otherwise the caller skips ``optimizer.step()`` (the parameters stay as they were), the skip
    is counted, and after ``max_consecutive`` skips in a row :class:`FloatingPointError` is raised, naming
    the non-finite terms. ``state_dict`` holds the counters so a resumed run continues them.
    """

    def __init__(self, max_consecutive: int, what: str = "update", hint: str = ""):
        if max_consecutive < 1:
            raise ValueError(f"max_consecutive must be >= 1, got {max_consecutive}")
        self.max_consecutive, self.what, self.hint = int(max_consecutive), what, hint
        self.skips = 0
        self.consecutive = 0

    def ok(self, values: dict[str, Tensor]) -> bool:
        finite = torch.stack([torch.isfinite(v.detach().float()).all() for v in values.values()])
        if bool(finite.all()):
            self.consecutive = 0
            return True
        self.skips += 1
        self.consecutive += 1
        if self.consecutive >= self.max_consecutive:
            bad = [k for k, good in zip(values, finite.tolist()) if not good]
            raise FloatingPointError(
                f"{self.consecutive} consecutive {self.what}s had non-finite {', '.join(bad)}; the last "
                f"one was not applied (max_consecutive_nan={self.max_consecutive}). {self.hint}".rstrip()
            )
        return False

    def state_dict(self) -> dict[str, int]:
        return {"skips": self.skips, "consecutive": self.consecutive}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.skips, self.consecutive = int(state["skips"]), int(state["consecutive"])
