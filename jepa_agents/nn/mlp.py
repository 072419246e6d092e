"""Multi-layer perceptron."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "mish": nn.Mish,
    "tanh": nn.Tanh,
}


def make_activation(name: str) -> nn.Module:
    """An activation module by name (``relu|elu|gelu|silu|mish|tanh``)."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


class MLP(nn.Module):
    """``x [..., in_dim] -> [..., out_dim]``: ``(Linear [-> LayerNorm] -> act)`` per hidden size, then Linear.

    The output layer has no normalization or activation.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dims: Sequence[int],
        out_dim: int,
        activation: str = "relu",
        layer_norm: bool = False,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        last = in_dim
        for width in hidden_dims:
            layers.append(nn.Linear(last, width))
            if layer_norm:
                layers.append(nn.LayerNorm(width))
            layers.append(make_activation(activation))
            last = width
        layers.append(nn.Linear(last, out_dim))
        self._net = nn.Sequential(*layers)
        self.in_dim = in_dim
        self.out_dim = out_dim

    @property
    def output_layer(self) -> nn.Linear:
        """The last Linear (for custom initialization)."""
        return self._net[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self._net(x)
