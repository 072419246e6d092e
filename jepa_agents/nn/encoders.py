"""Observation encoders: ``obs -> z [*, out_dim]``.

Pixel encoders take ``[*, C, H, W]`` images: uint8 in ``[0, 255]`` or float in ``[0, 1]``, normalized to
``x·s - 0.5`` (``s = 1/255`` for uint8, 1 for float). Leading dims ``*`` are flattened for the network and
restored on the output. The last layer is a plain Linear (no normalization or squashing), so a
regularizer such as SIGReg shapes the embedding distribution (a world model may normalize it further).

The fast path (conv stacks without padding): the normalization is folded into the first convolution,
``conv(x·s - 0.5; W, b) = conv(x; s·W, b - 0.5·Σ_{c,i,j} W)``, so a uint8 batch is cast once to the
compute dtype and never scaled in memory; convolutions run in ``channels_last`` layout; with
``precision="bf16"`` the encoder runs under bf16 autocast (uint8 values are exact in bf16) and returns
float32, on the CPU and on CUDA; ``precision="auto"`` is bf16 where the input's device computes bf16
natively, else fp32 (``jepa_agents.infra.precision``).

Kinds (``make_encoder(kind, obs_shape, out_dim)``):

* ``small_cnn``: 4 convs 4x4 stride 2 (DreamerV1's layout at half its width: 16-32-64-128 channels, 3.8x
  fewer multiply-adds than DreamerV1's 32-64-128-256, which ``channels=(32, 64, 128, 256)`` restores),
  for 64x64 images;
* ``nature``: Nature-DQN CNN (8x8/4, 4x4/2, 3x3/1), for 84x84;
* ``drq``: DrQ/SAC-AE CNN (3x3/2 then three 3x3/1, 32 channels), for 84x84;
* ``impala``: IMPALA ResNet (3 stages of conv, max-pool and two residual blocks);
* ``minatar``: MinAtar's network (Young & Tian 2019): one conv of 16 3x3 filters, stride 1, for the
  10x10 object channels;
* ``mlp``: MLP for flat state vectors ``[*, S]``;
* ``auto``: ``mlp`` for 1-d observations, ``minatar`` for images up to 10 pixels, ``small_cnn`` up to
  64, else ``nature``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from jepa_agents.infra.precision import PRECISIONS, resolve_precision
from jepa_agents.nn.mlp import MLP

ENCODER_KINDS = ("auto", "small_cnn", "nature", "drq", "impala", "minatar", "mlp")

_CONV_SPECS: dict[str, tuple[tuple[int, int, int], ...]] = {
    # (out channels, kernel, stride)
    "small_cnn": ((16, 4, 2), (32, 4, 2), (64, 4, 2), (128, 4, 2)),
    "nature": ((32, 8, 4), (64, 4, 2), (64, 3, 1)),
    "drq": ((32, 3, 2), (32, 3, 1), (32, 3, 1), (32, 3, 1)),
    "minatar": ((16, 3, 1),),
}


def orthogonal_init(module: nn.Module) -> None:
    """DrQ-v2's init: orthogonal weights (gain √2 for convolutions followed by ReLU, 1 for Linear), zero
    biases. It keeps the scale of frame-to-frame differences through the stack: on real 64x64 cartpole
    frames the small_cnn embedding's per-dim std is 0.026 instead of 0.0008 at PyTorch's default init
    (docs/world_model.md). Call before converting to ``channels_last`` (``orthogonal_`` needs a
    contiguous weight)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.orthogonal_(m.weight, nn.init.calculate_gain("relu") if isinstance(m, nn.Conv2d) else 1.0)
            nn.init.zeros_(m.bias)


def _input_scale(x: Tensor) -> float:
    """``s`` of the normalization ``x·s - 0.5``: 1/255 for uint8 images, 1 for float images in [0, 1]."""
    return 1.0 / 255.0 if x.dtype == torch.uint8 else 1.0


class NormalizedConv2d(nn.Conv2d):
    """``conv(x·s - 0.5)`` computed as ``conv(x; s·W, b - 0.5·ΣW)`` (unpadded convolutions only, where the
    two are equal): ``forward(x, s)`` with ``x`` ``[N, C, H, W]`` in the compute dtype."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding != (0, 0):
            raise ValueError("NormalizedConv2d folds the input shift into the bias: padding must be 0")

    def forward(self, x: Tensor, scale: float = 1.0) -> Tensor:  # type: ignore[override]
        bias = self.bias - 0.5 * self.weight.sum((1, 2, 3))
        return self._conv_forward(x, self.weight * scale, bias)


class _ImageEncoder(nn.Module):
    """``_convs`` (image -> flat features), then the linear ``_head``; leading dims ``[*, C, H, W]`` kept.

    Subclasses with an unpadded first convolution set ``_stem`` (a :class:`NormalizedConv2d`) and put the
    rest in ``_convs``; others leave ``_stem = None`` and get the explicit normalization.
    """

    _stem: NormalizedConv2d | None
    _convs: nn.Module
    _head: nn.Linear
    out_dim: int
    precision: str = "fp32"

    def forward(self, obs: Tensor) -> Tensor:
        lead = obs.shape[:-3]
        x = obs.reshape(-1, *obs.shape[-3:])
        scale = _input_scale(x)
        bf16 = resolve_precision(self.precision, x.device) == "bf16"
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            # layout change on the 1-byte input, then the cast (which keeps the layout): 2.6x cheaper
            x = x.contiguous(memory_format=torch.channels_last).to(torch.bfloat16 if bf16 else torch.float32)
            x = self._stem(x, scale) if self._stem is not None else x * scale - 0.5
            out = self._head(self._convs(x))  # [N, out_dim]
        return out.float().reshape(*lead, self.out_dim)


class ConvEncoder(_ImageEncoder):
    """Plain conv stack (ReLU, no padding) + Linear: ``[*, C, H, W] -> [*, out_dim]``; orthogonal init."""

    def __init__(
        self,
        obs_shape: Sequence[int],
        out_dim: int,
        spec: Sequence[tuple[int, int, int]],
        precision: str = "fp32",
    ):
        super().__init__()
        c, h, w = obs_shape
        need = 1
        for _, k, s in reversed(spec):  # the smallest input every convolution still fits
            need = (need - 1) * s + k
        layers: list[nn.Module] = []
        for i, (out_c, k, s) in enumerate(spec):
            conv = (NormalizedConv2d if i == 0 else nn.Conv2d)(c, out_c, k, s)
            layers += [conv, nn.ReLU()]
            c, h, w = out_c, (h - k) // s + 1, (w - k) // s + 1
            if h < 1 or w < 1:
                raise ValueError(
                    f"image {tuple(obs_shape)} is too small for this conv stack (it needs at least "
                    f"{need}x{need} pixels): render larger frames or pick an encoder kind for small images "
                    "(drq from 15 pixels, minatar from 3)"
                )
        self._stem = layers[0]
        self._convs = nn.Sequential(*layers[1:], nn.Flatten())
        self._head = nn.Linear(c * h * w, out_dim)
        orthogonal_init(self)
        self.to(memory_format=torch.channels_last)
        self.obs_shape = tuple(obs_shape)
        self.out_dim = out_dim
        self.precision = _check_precision(precision)


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

    Each stage: conv 3x3 -> max-pool 3x3/2 -> 2 residual blocks; then ReLU, flatten, Linear; orthogonal
    init.
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        out_dim: int,
        channels: Sequence[int] = (16, 32, 32),
        precision: str = "fp32",
    ):
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
        self._stem = None  # the first conv is padded: explicit normalization
        self._convs = nn.Sequential(*layers, nn.ReLU(), nn.Flatten())
        self._head = nn.Linear(c * h * w, out_dim)
        orthogonal_init(self)
        self.to(memory_format=torch.channels_last)
        self.obs_shape = tuple(obs_shape)
        self.out_dim = out_dim
        self.precision = _check_precision(precision)


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


def _check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown encoder precision {precision!r}; choose one of {PRECISIONS}")
    return precision


def _image_kind(size: int) -> str:
    return "minatar" if size <= 10 else ("small_cnn" if size <= 64 else "nature")


def make_encoder(
    kind: str, obs_shape: Sequence[int], out_dim: int, precision: str = "fp32", **kwargs
) -> nn.Module:
    """Encoder ``kind`` (see module docstring) for observations of shape ``obs_shape`` (no batch dims).

    ``precision``: ``fp32``, ``bf16`` (autocast) or ``auto`` for the image encoders; state MLPs run in
    float32. ``kwargs``: ``channels`` for ``small_cnn`` (4 counts) and ``impala`` (one per stage),
    ``hidden_dims`` for ``mlp``.
    """
    _check_precision(precision)
    obs_shape = tuple(int(s) for s in obs_shape)
    if kind not in ENCODER_KINDS:
        raise ValueError(f"unknown encoder kind {kind!r}; choose one of {ENCODER_KINDS}")
    if kind == "auto":
        kind = "mlp" if len(obs_shape) == 1 else _image_kind(max(obs_shape[1:]))
    if kind == "mlp":
        return StateEncoder(obs_shape, out_dim, **kwargs)
    if len(obs_shape) != 3:
        raise ValueError(f"encoder {kind!r} takes images [C, H, W], got observation shape {obs_shape}")
    if kind == "impala":
        return ImpalaEncoder(obs_shape, out_dim, precision=precision, **kwargs)
    spec = _CONV_SPECS[kind]
    if kind == "small_cnn" and "channels" in kwargs:
        channels = kwargs.pop("channels")
        if len(channels) != len(spec):
            raise ValueError(f"small_cnn takes {len(spec)} channel counts, got {channels}")
        spec = tuple((c, k, s) for c, (_, k, s) in zip(channels, spec))
    if kwargs:
        raise ValueError(f"encoder {kind!r} takes no options {sorted(kwargs)}")
    return ConvEncoder(obs_shape, out_dim, spec, precision=precision)
