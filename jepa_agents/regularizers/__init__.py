"""Anti-collapse regularizers on embedding batches: ``forward(z [N, D] | [T, N, D]) -> scalar``."""

from __future__ import annotations

from torch import Tensor, nn

from jepa_agents.regularizers.sigreg import SIGReg
from jepa_agents.regularizers.vicreg import VICReg

__all__ = ["NoRegularizer", "SIGReg", "VICReg", "make_regularizer"]


class NoRegularizer(nn.Module):
    """The zero regularizer (for ablations): ``forward(z) -> 0``."""

    def forward(self, z: Tensor) -> Tensor:
        return z.new_zeros(())


def make_regularizer(name: str, **kwargs) -> nn.Module:
    """Build ``sigreg`` (:class:`SIGReg`), ``vicreg`` (:class:`VICReg`) or ``none`` from keyword options."""
    builders = {"sigreg": SIGReg, "vicreg": VICReg, "none": NoRegularizer}
    if name not in builders:
        raise ValueError(f"unknown regularizer {name!r}; choose one of {sorted(builders)}")
    return builders[name](**kwargs)
