"""Observation encoders: ``obs -> z [*, out_dim]``.

Pixel encoders take ``[*, C, H, W]`` images: uint8 is cast to float and divided by 255, float input is
used as given (expected in ``[0, 1]``); both are then centered by ``-0.5``. Leading dims ``*`` are
flattened for the network and restored on the output. The last layer is a plain Linear (no
normalization or squashing), so a regularizer such as SIGReg shapes the embedding distribution.

Kinds (``make_encoder(kind, obs_shape, out_dim)``):

* ``small_cnn``: 4 convs 4x4 stride 2 (DreamerV1-style, 32-64-128-256 channels), for 64x64 images;
* ``nature``: Nature-DQN CNN (8x8/4, 4x4/2, 3x3/1), for 84x84;
* ``drq``: DrQ/SAC-AE CNN (3x3/2 then three 3x3/1, 32 channels), for 84x84;
* ``impala``: IMPALA ResNet (3 stages of conv, max-pool and two residual blocks);
* ``mlp``: MLP for flat state vectors ``[*, S]``;
* ``auto``: ``mlp`` for 1-d observations, ``small_cnn`` for images up to 64 pixels, else ``nature``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from jepa_agents.nn.mlp import MLP

ENCODER_KINDS = ("auto", "small_cnn", "nature", "drq", "impala", "mlp")

_CONV_SPECS: dict[str, tuple[tuple[int, int, int], ...]] = {
    # (out channels, kernel, stride)
    "small_cnn": ((32, 4, 2), (64, 4, 2), (128, 4, 2), (256, 4, 2)),
    "nature": ((32, 8, 4), (64, 4, 2), (64, 3, 1)),
    "drq": ((32, 3, 2), (32, 3, 1), (32, 3, 1), (32, 3, 1)),
}


def _to_float_image(x: Tensor) -> Tensor:
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    return x - 0.5


class _ImageEncoder(nn.Module):
    """``_convs`` (image -> flat features), then the linear ``_head``; leading dims ``[*, C, H, W]`` kept."""

    _convs: nn.Module
    _head: nn.Linear
    out_dim: int

    def forward(self, obs: Tensor) -> Tensor:
        lead = obs.shape[:-3]
        x = _to_float_image(obs.reshape(-1, *obs.shape[-3:]))
        return self._head(self._convs(x)).reshape(*lead, self.out_dim)


class ConvEncoder(_ImageEncoder):
    """Plain conv stack (ReLU, no padding) + Linear: ``[*, C, H, W] -> [*, out_dim]``."""

    def __init__(self, obs_shape: Sequence[int], out_dim: int, spec: Sequence[tuple[int, int, int]]):
        super().__init__()
        c, h, w = obs_shape
        layers: list[nn.Module] = []
        for out_c, k, s in spec:
            layers += [nn.Conv2d(c, out_c, k, s), nn.ReLU()]
            c, h, w = out_c, (h - k) // s + 1, (w - k) // s + 1
            if h < 1 or w < 1:
                raise ValueError(f"image {tuple(obs_shape)} is too small for this encoder")
        self._convs = nn.Sequential(*layers, nn.Flatten())
        self._head = nn.Linear(c * h * w, out_dim)
        self.obs_shape = tuple(obs_shape)
        self.out_dim = out_dim


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self._net = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self._net(x)


class ImpalaEncoder(_ImageEncoder):
    """IMPALA ResNet (Espeholt et al. 2018): ``[*, C, H, W] -> [*, out_dim]``.

    Each stage: conv 3x3 -> max-pool 3x3/2 -> 2 residual blocks; then ReLU, flatten, Linear.
    """

    def __init__(self, obs_shape: Sequence[int], out_dim: int, channels: Sequence[int] = (16, 32, 32)):
        super().__init__()
        c, h, w = obs_shape
        layers: list[nn.Module] = []
        for out_c in channels:
            layers += [
                nn.Conv2d(c, out_c, 3, padding=1),
                nn.MaxPool2d(3, stride=2, padding=1),
                _ResidualBlock(out_c),
                _ResidualBlock(out_c),
            ]
            c, h, w = out_c, (h + 1) // 2, (w + 1) // 2
        self._convs = nn.Sequential(*layers, nn.ReLU(), nn.Flatten())
        self._head = nn.Linear(c * h * w, out_dim)
        self.obs_shape = tuple(obs_shape)
        self.out_dim = out_dim


class StateEncoder(nn.Module):
    """MLP encoder for state vectors: ``[*, S] -> [*, out_dim]`` (LayerNorm + ELU hidden layers)."""

    def __init__(self, obs_shape: Sequence[int], out_dim: int, hidden_dims: Sequence[int] = (256, 256)):
        super().__init__()
        if len(obs_shape) != 1:
            raise ValueError(f"the mlp encoder takes flat observations [S], got shape {tuple(obs_shape)}")
        self._mlp = MLP(obs_shape[0], hidden_dims, out_dim, activation="elu", layer_norm=True)
        self.obs_shape = tuple(obs_shape)
        self.out_dim = out_dim

    def forward(self, obs: Tensor) -> Tensor:
        return self._mlp(obs.float())


def make_encoder(kind: str, obs_shape: Sequence[int], out_dim: int, **kwargs) -> nn.Module:
    """Encoder ``kind`` (see module docstring) for observations of shape ``obs_shape`` (no batch dims).

    ``kwargs``: ``channels`` for ``small_cnn`` (4 counts) and ``impala`` (one per stage), ``hidden_dims``
    for ``mlp``.
    """
    obs_shape = tuple(int(s) for s in obs_shape)
    if kind not in ENCODER_KINDS:
        raise ValueError(f"unknown encoder kind {kind!r}; choose one of {ENCODER_KINDS}")
    if kind == "auto":
        kind = "mlp" if len(obs_shape) == 1 else ("small_cnn" if max(obs_shape[1:]) <= 64 else "nature")
    if kind == "mlp":
        return StateEncoder(obs_shape, out_dim, **kwargs)
    if len(obs_shape) != 3:
        raise ValueError(f"encoder {kind!r} takes images [C, H, W], got observation shape {obs_shape}")
    if kind == "impala":
        return ImpalaEncoder(obs_shape, out_dim, **kwargs)
    spec = _CONV_SPECS[kind]
    if kind == "small_cnn" and "channels" in kwargs:
        channels = kwargs.pop("channels")
        if len(channels) != len(spec):
            raise ValueError(f"small_cnn takes {len(spec)} channel counts, got {channels}")
        spec = tuple((c, k, s) for c, (_, k, s) in zip(channels, spec))
    if kwargs:
        raise ValueError(f"encoder {kind!r} takes no options {sorted(kwargs)}")
    return ConvEncoder(obs_shape, out_dim, spec)
