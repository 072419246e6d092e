"""SIGReg: Sketched Isotropic Gaussian Regularization (LeJEPA, Balestriero & LeCun 2025).

For embeddings ``Z`` ``[N, D]`` and ``M`` random unit directions ``a_m`` (columns of ``A`` ``[D, M]``),
each projection ``x_m = Z a_m`` ``[N]`` is tested against ``N(0, 1)`` with the Epps–Pulley statistic

    EP(x) = N * ∫ |φ_N(t) - φ(t)|² w(t) dt,    φ_N(t) = (1/N) Σ_n exp(i t x_n),  φ(t) = w(t) = exp(-t²/2)

and ``SIGReg(Z) = (1/M) Σ_m EP(Z a_m)``. The integrand is even in ``t``, so the integral over
``[-t_max, t_max]`` is computed as twice the trapezoid rule on ``num_knots`` knots on ``[0, t_max]``:
quadrature weights ``2·dt`` inside and ``dt`` at both ends, times ``w(t)``. With
``|φ_N - φ|² = (mean cos(t x) - φ(t))² + (mean sin(t x))²`` only real arithmetic is needed; the backward
pass reuses the forward's cosines and sines (:class:`_CharacteristicSums`, 1.5x faster than autograd
through ``cos``/``sin`` at N = 256, M = 512, D = 128 on one CPU thread: 27 vs 41 ms).

For i.i.d. ``N(0, 1)`` samples ``E[N |φ_N(t) - φ(t)|²] = 1 - exp(-t²)`` for every ``N``, so the expected
statistic of a Gaussian batch is ``∫ (1 - e^{-t²}) e^{-t²/2} dt ≈ 1.06`` per direction with the default
grid, independent of ``N``; any other distribution gives a value that grows linearly with ``N``.

Directions are redrawn on every call from a counter-based generator (:func:`random_directions`): a
hash of ``(seed, call, element)`` turned into Gaussian draws by Box–Muller, computed on the embeddings'
device with tensor operations. ``call`` is a 0-d buffer counting forward passes (saved in the state
dict) and incremented in place, so the draw needs no host synchronisation and no Python state: a
compiled or graph-captured update draws new directions every replay. Every rank that calls the module
the same number of times draws the same directions, on any device.

Under an initialized ``torch.distributed`` process group the per-knot sums of ``cos`` and ``sin`` are
all-reduced with the differentiable ``torch.distributed.nn.functional.all_reduce`` and divided by the
global batch size, so a data-parallel run computes (and differentiates) exactly the statistic of the
concatenated global batch. Ranks may hold different ``N``.

Degenerate sizes: ``D = 1`` is the univariate Epps–Pulley test of the single column (every direction is
``±1``); ``N = 1`` is computed by the same formula (finite and differentiable, but a single sample
carries no information about the distribution). ``N = 0`` and wrong ``ndim`` raise; non-finite
embeddings give a non-finite statistic (no host synchronisation to check them: the learners' NaN guard
skips such updates).

Reference values on the same quadrature: an isotropic Gaussian batch has expected statistic
``Σ_k w_k (1 - e^{-t_k²})`` (≈1.06 on the default grid, any ``N``); a batch collapsed to the origin
(every projection 0, the limit of a scale-collapsed embedding) has ``N·Σ_k w_k (1 - φ(t_k))²``
(≈0.402·N).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from jepa_agents.infra.distributed import global_sum, world_size


def epps_pulley_weights(num_knots: int, t_max: float) -> tuple[Tensor, Tensor, Tensor]:
    """Knots ``t`` ``[K]``, ``φ(t) = exp(-t²/2)`` ``[K]`` and quadrature weights ``[K]`` (float32).

    The weights are the symmetric-doubled trapezoid weights on ``[0, t_max]`` times ``exp(-t²/2)``.
    """
    if num_knots < 2 or t_max <= 0:
        raise ValueError(f"need num_knots >= 2 and t_max > 0, got {num_knots=}, {t_max=}")
    t = torch.linspace(0.0, t_max, num_knots, dtype=torch.float64)
    dt = t_max / (num_knots - 1)
    quad = torch.full((num_knots,), 2.0 * dt, dtype=torch.float64)
    quad[0] = quad[-1] = dt
    phi = torch.exp(-0.5 * t.square())
    return t.float(), phi.float(), (quad * phi).float()


_MASK32 = 0xFFFFFFFF


def _mul32(x: Tensor, c: int) -> Tensor:
    """``x·c mod 2³²`` for ``x`` int64 in ``[0, 2³²)``, without int64 overflow (16-bit halves of ``c``)."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _MASK32


def _mix32(x: Tensor) -> Tensor:
    """A 32-bit integer hash (the ``lowbias32`` finalizer): int64 in ``[0, 2³²)`` -> int64 in ``[0, 2³²)``."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def random_directions(dim: int, num: int, seed: int | Tensor, device: torch.device | str = "cpu") -> Tensor:
    """``num`` unit directions in ``R^dim`` as columns ``[dim, num]`` (float32 on ``device``), a pure
    function of ``seed`` (an int or a 0-d integer tensor): Box–Muller on two hashed uniforms per entry."""
    seed = torch.as_tensor(seed, dtype=torch.long, device=device)
    key = _mix32((seed * 0x9E3779B9 + 0x632BE5AB) & _MASK32)  # 0-d
    idx = torch.arange(2 * dim * num, dtype=torch.long, device=device)  # two uniforms per entry
    bits = _mix32(key ^ _mix32(idx))  # [2·dim·num]
    u = ((bits >> 8).float() + 0.5) * 2.0**-24  # in (0, 1)
    u1, u2 = u.view(2, dim, num)
    a = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * torch.pi * u2)  # [dim, num] ~ N(0, 1)
    return a / a.norm(dim=0, keepdim=True)


class _CharacteristicSums(torch.autograd.Function):
    """``Σ_n cos(t_k x_nm)`` and ``Σ_n sin(t_k x_nm)``: ``proj [..., N, M]``, ``t [K]`` -> ``[2, ..., M, K]``.

    Autograd through ``cos``/``sin`` would evaluate both again in the backward pass; this keeps the
    forward's values: ``∂/∂x_nm = Σ_k t_k (−sin(t_k x_nm)·g_cos[m, k] + cos(t_k x_nm)·g_sin[m, k])``.
    """

    @staticmethod
    def forward(ctx, proj: Tensor, t: Tensor) -> Tensor:
        x_t = proj.unsqueeze(-1) * t  # [..., N, M, K]
        cos, sin = x_t.cos(), x_t.sin()
        ctx.save_for_backward(cos, sin, t)
        return torch.stack((cos.sum(-3), sin.sum(-3)))  # [2, ..., M, K]

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        cos, sin, t = ctx.saved_tensors
        g_cos, g_sin = (grad[0] * t).unsqueeze(-3), (grad[1] * t).unsqueeze(-3)  # [..., 1, M, K]
        return (cos * g_sin - sin * g_cos).sum(-1), None


def sliced_epps_pulley(proj: Tensor, t: Tensor, phi: Tensor, weights: Tensor) -> Tensor:
    """Epps–Pulley statistic of every projected column, against ``N(0, 1)``.

    ``proj`` ``[..., N, M]`` (float32) -> ``[..., M]``; the batch dim ``N`` is global under DDP.
    """
    sums = _CharacteristicSums.apply(proj, t)  # [2, ..., M, K]
    sums = global_sum(sums)
    n = global_sum(proj.new_tensor(float(proj.shape[-2]))) if world_size() > 1 else proj.shape[-2]
    cos_mean, sin_mean = sums[0] / n, sums[1] / n
    err = (cos_mean - phi).square() + sin_mean.square()  # [..., M, K]
    return (err @ weights) * n  # [..., M]


class SIGReg(nn.Module):
    """SIGReg regularizer: ``forward(z) -> scalar`` (see module docstring for the equation).

    Args:
        num_slices: number ``M`` of random unit directions per call.
        num_knots: trapezoid knots on ``[0, t_max]`` (17 in LeJEPA).
        t_max: upper end of the integration grid (3 in LeJEPA).
        seed: base seed of the direction generator (use the same value on every rank).

    ``z`` is ``[N, D]`` or ``[T, N, D]`` (statistic per time step over the batch, averaged over ``T``);
    any dtype (computed in float32 with autocast disabled).
    """

    def __init__(self, num_slices: int = 256, num_knots: int = 17, t_max: float = 3.0, seed: int = 0):
        super().__init__()
        if num_slices < 1:
            raise ValueError(f"num_slices must be >= 1, got {num_slices}")
        self.num_slices = num_slices
        self.seed = seed
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        t, phi, weights = epps_pulley_weights(num_knots, t_max)
        self.register_buffer("t", t)
        self.register_buffer("phi", phi)
        self.register_buffer("weights", weights)

    def directions(self, dim: int, call: int | Tensor) -> Tensor:
        """Unit directions ``[dim, M]`` (float32, this module's device) of call number ``call`` (0-based)."""
        return random_directions(dim, self.num_slices, self.seed + call, self.t.device)

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim not in (2, 3):
            raise ValueError(f"SIGReg expects embeddings [N, D] or [T, N, D], got shape {tuple(z.shape)}")
        if z.shape[-2] == 0 or z.shape[-1] == 0:
            raise ValueError(f"SIGReg needs N >= 1 and D >= 1, got shape {tuple(z.shape)}")
        a = self.directions(z.shape[-1], self.calls).to(z.device)  # [D, M]
        self.calls.add_(1)
        with torch.autocast(device_type=z.device.type, enabled=False):
            proj = z.float() @ a  # [..., N, M]
            return sliced_epps_pulley(proj, self.t, self.phi, self.weights).mean()

    def gaussian_reference(self) -> Tensor:
        """Expected statistic of an isotropic Gaussian batch (any ``N``): ``Σ_k w_k (1 - e^{-t_k²})``."""
        return (1.0 - torch.exp(-self.t.square())) @ self.weights

    def collapsed_reference(self, n: int) -> Tensor:
        """Statistic of ``n`` embeddings at the origin: ``n·Σ_k w_k (1 - φ(t_k))²``."""
        return n * ((1.0 - self.phi).square() @ self.weights)

    def extra_repr(self) -> str:
        return f"num_slices={self.num_slices}, num_knots={self.t.numel()}, seed={self.seed}"
