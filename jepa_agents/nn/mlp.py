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
    """``x [..., in_dim] -> [..., out_dim]``: ``(Linear [-> LayerNorm | BatchNorm] -> act)`` per hidden
    size, then Linear.

    The output layer has no normalization or activation. ``batch_norm`` (the LeJEPA projector's hidden
    layers) normalizes over every leading dim flattened; it needs at least 2 rows in training mode.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dims: Sequence[int],
        out_dim: int,
        activation: str = "relu",
        layer_norm: bool = False,
        batch_norm: bool = False,
    ):
        super().__init__()
        if layer_norm and batch_norm:
            raise ValueError("MLP: choose layer_norm or batch_norm, not both")
        layers: list[nn.Module] = []
        last = in_dim
        for width in hidden_dims:
            layers.append(nn.Linear(last, width))
            if layer_norm:
                layers.append(nn.LayerNorm(width))
            if batch_norm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(make_activation(activation))
            last = width
        layers.append(nn.Linear(last, out_dim))
        self._net = nn.Sequential(*layers)
        self.in_dim = in_dim
        self.out_dim = out_dim
        self._flatten = batch_norm

    @property
    def output_layer(self) -> nn.Linear:
        """The last Linear (for custom initialization)."""
        return self._net[-1]

    def forward(self, x: Tensor) -> Tensor:
        if self._flatten:  # BatchNorm1d wants [N, C]
            return self._net(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], self.out_dim)
        return self._net(x)
