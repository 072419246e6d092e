"""Counting the gradient steps the learners skipped because a loss or gradient norm was not finite."""

from __future__ import annotations

import torch
from torch import Tensor


class NaNGuard:
    """Counts skipped updates on the device and stops a run after ``max_consecutive`` in a row.

    A learner's gradient step decides itself, on the device, whether it may be applied
    (:func:`jepa_agents.infra.guarded_adam.all_finite`; a skipped step moves no parameter, optimizer
    moment or target network) and hands that decision to :meth:`record`, which updates the counters
    with tensor operations: no host synchronisation. :meth:`check` reads them (one synchronisation; the
    learners call it once per ``update`` call or when their metrics are read) and raises
    :class:`FloatingPointError` after ``max_consecutive`` skips in a row, naming the non-finite terms of
    the last step. ``state_dict`` holds the counters so a resumed run continues them.
    """

    def __init__(self, max_consecutive: int, what: str = "update", hint: str = ""):
        if max_consecutive < 1:
            raise ValueError(f"max_consecutive must be >= 1, got {max_consecutive}")
        self.max_consecutive, self.what, self.hint = int(max_consecutive), what, hint
        self._skips = torch.zeros((), dtype=torch.long)
        self._consecutive = torch.zeros((), dtype=torch.long)
        self._last: tuple[list[str], Tensor] | None = None  # names and finiteness of the last step's terms

    @property
    def skips(self) -> Tensor:
        """Skipped updates so far (0-d long tensor on the learner's device)."""
        return self._skips

    def record(self, ok: Tensor, names: list[str], finite: Tensor) -> None:
        """Count one step: ``ok`` 0-d bool (applied), ``finite`` ``[len(names)]`` bool per term."""
        if self._skips.device != ok.device:
            self._skips, self._consecutive = self._skips.to(ok.device), self._consecutive.to(ok.device)
        bad = (~ok).long()
        self._skips = self._skips + bad
        self._consecutive = (self._consecutive + bad) * bad
        self._last = (list(names), finite.clone())

    def check(self) -> None:
        """Raise :class:`FloatingPointError` when the last ``max_consecutive`` steps were all skipped."""
        consecutive = int(self._consecutive)
        if consecutive < self.max_consecutive:
            return
        names, finite = self._last if self._last is not None else ([], torch.ones(0, dtype=torch.bool))
        bad = [name for name, good in zip(names, finite.tolist()) if not good]
        raise FloatingPointError(
            f"{consecutive} consecutive {self.what}s had non-finite {', '.join(bad) or 'values'}; none "
            f"of them was applied (max_consecutive_nan={self.max_consecutive}). {self.hint}".rstrip()
        )

    def state_dict(self) -> dict[str, int]:
        return {"skips": int(self._skips), "consecutive": int(self._consecutive)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        device = self._skips.device
        self._skips = torch.tensor(int(state["skips"]), device=device)
        self._consecutive = torch.tensor(int(state["consecutive"]), device=device)
