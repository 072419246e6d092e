"""A small batched rasteriser in torch: signed-distance shapes on a plane seen by a fixed pinhole camera.

Every task draws its moving bodies as flat shapes on one world plane (the cart-pole's ``y = 0``, the
reacher's table top, ...). A :class:`Canvas` precomputes, once per (camera, plane, image size, device),
the plane coordinates ``(u, v)`` hit by every pixel's ray and the pixel footprint on the plane, so
perspective (e.g. the pendulum's tilted camera) comes for free. A shape is then a signed distance
``sd(u, v)`` (negative inside) and its antialiased coverage is

    coverage = clamp(0.5 - sd / footprint, 0, 1)          # [N, H, W]

(a one-pixel smooth edge). Discs also return a ``shade`` falling from 1 at the centre to 0 at the rim,
painted as a lit centre over a darker rim for a cheap 3-D look.

Images are float ``[N, 3, H, W]`` in [0.5, 255.5] while painting (0.5 folds in rounding) and
``to_uint8`` converts them. Static parts (sky, checker floor, rails, walls) are painted once into a
background; each frame starts from it with an out-of-place ``layer`` and paints the rest in place.
Separable canvases (camera axis perpendicular to the plane) keep ``u`` as ``[1, W]`` and ``v`` as
``[H, 1]`` so per-shape work broadcasts instead of filling ``[H, W]``.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass

import torch

Vec3 = tuple[float, float, float]
Color = tuple[float, float, float]

# dm_control's common/materials.xml colours (rgb in [0, 1]).
SELF = (0.7, 0.5, 0.3)
EFFECTOR = (0.7, 0.4, 0.2)
DECORATION = (0.3, 0.5, 0.7)
TARGET = (0.6, 0.3, 0.3)
# Lighting: a lit body is brighter than its material colour at its centre and darker at its rim.
_LIT, _RIM = 1.25, 0.6
# Sky (a vertical gradient in the ray's elevation) and floor checker colours, 0..255, as MuJoCo shows them.
_SKY_ZENITH = (72.0, 105.0, 138.0)  # at +22.5 degrees and above
_SKY_HORIZON = (52.0, 78.0, 104.0)
_SKY_NADIR = (20.0, 26.0, 36.0)  # at -45 degrees and below
_CHECK_DARK = (0.1, 0.2, 0.3)
_CHECK_LIGHT = (0.2, 0.3, 0.4)


@dataclass(frozen=True)
class Camera:
    """Pinhole camera: world position, orthonormal right/up/forward axes, vertical field of view (deg)."""

    position: Vec3
    right: Vec3
    up: Vec3
    forward: Vec3
    fovy: float = 45.0


@dataclass(frozen=True)
class Plane:
    """The plane ``origin + u * axis_u + v * axis_v`` (orthonormal axes) on which shapes are drawn."""

    origin: Vec3
    axis_u: Vec3
    axis_v: Vec3


@dataclass(frozen=True)
class Floor:
    """A checker-board floor: horizontal plane at ``height``, square of half side ``half_size``."""

    height: float
    half_size: float
    check: float = 1.0  # side of one checker square
    phase: float = 0.5  # 0.5: a square is centred on the origin (MuJoCo's grid); 0: a corner is


def _rays(camera: Camera, size: int, offset: float = 0.5) -> torch.Tensor:
    """Ray directions (not normalised) through pixel positions ``i + offset`` -> ``[H, W, 3]`` float64."""
    t = math.tan(math.radians(camera.fovy) / 2)
    s = ((torch.arange(size + 1, dtype=torch.float64) + offset) / size * 2 - 1) * t
    x = s[None, :].expand(size + 1, size + 1)
    y = -s[:, None].expand(size + 1, size + 1)
    right, up, fwd = (torch.tensor(a, dtype=torch.float64) for a in (camera.right, camera.up, camera.forward))
    return fwd + x[..., None] * right + y[..., None] * up  # [H+1, W+1, 3]


def _plane_hits(camera: Camera, plane: Plane, rays: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Plane coordinates (u, v) where ``rays`` [..., 3] hit ``plane`` (rays must not be parallel to it)."""
    eye = torch.tensor(camera.position, dtype=torch.float64)
    origin, au, av = (
        torch.tensor(a, dtype=torch.float64) for a in (plane.origin, plane.axis_u, plane.axis_v)
    )
    normal = torch.linalg.cross(au, av)
    t = ((origin - eye) @ normal) / (rays @ normal)
    hit = eye + t[..., None] * rays - origin
    return hit @ au, hit @ av


def _squeeze(x: torch.Tensor) -> torch.Tensor:
    """Drop a dimension of ``[H, W]`` along which ``x`` is constant, for cheaper broadcasting."""
    if torch.allclose(x, x[:1, :], atol=1e-9):
        x = x[:1, :]
    if torch.allclose(x, x[:, :1], atol=1e-9):
        x = x[:, :1]
    return x


class Canvas:
    """Per-pixel plane coordinates of one (camera, plane) at one image size, on one device.

    ``u, v``: plane coordinates of the pixel centres, broadcastable to ``[H, W]``; ``inv_footprint``:
    1 / (side of a pixel's footprint on the plane), broadcastable to ``[H, W]``.
    """

    def __init__(self, camera: Camera, plane: Plane, size: int, device: torch.device):
        corners_u, corners_v = _plane_hits(camera, plane, _rays(camera, size, offset=0.0))  # [H+1, W+1]
        centres_u, centres_v = _plane_hits(camera, plane, _rays(camera, size, offset=0.5))
        du_j, dv_j = corners_u[:-1, 1:] - corners_u[:-1, :-1], corners_v[:-1, 1:] - corners_v[:-1, :-1]
        du_i, dv_i = corners_u[1:, :-1] - corners_u[:-1, :-1], corners_v[1:, :-1] - corners_v[:-1, :-1]
        footprint = (du_j * dv_i - dv_j * du_i).abs().sqrt()  # sqrt of the pixel's area on the plane
        self.size = size
        self.u = _squeeze(centres_u[:-1, :-1]).to(device, torch.float32)
        self.v = _squeeze(centres_v[:-1, :-1]).to(device, torch.float32)
        self.inv_footprint = _squeeze(1.0 / footprint).to(device, torch.float32)


@functools.lru_cache(maxsize=64)
def canvas(camera: Camera, plane: Plane, size: int, device: torch.device) -> Canvas:
    """The (cached) :class:`Canvas` of this camera, plane, size and device."""
    return Canvas(camera, plane, size, device)


def _col(x: torch.Tensor) -> torch.Tensor:
    """``[N]`` -> ``[N, 1, 1]`` for broadcasting against ``[H, W]`` grids."""
    return x.reshape(-1, 1, 1)


def _coverage(sd: torch.Tensor, inv_footprint: torch.Tensor) -> torch.Tensor:
    return torch.addcmul(torch.full((), 0.5, device=sd.device), sd, -inv_footprint).clamp_(0.0, 1.0)


def disc(
    canvas: Canvas, cu: torch.Tensor, cv: torch.Tensor, radius: float, aspect: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Disc of ``radius`` centred at ``(cu, cv)`` ``[N]`` -> coverage, shade ``[N, H, W]``.

    ``sd = |p - c| - radius``; ``shade = max(0, 1 - |p - c|^2 / radius^2)`` (a sphere-like falloff).
    ``aspect < 1`` stretches the disc along ``v`` by ``1 / aspect``, so that a sphere on a plane seen at an
    angle (``aspect`` = sine of the viewing angle) still looks round.
    """
    du = canvas.u - _col(cu)
    dv = (canvas.v - _col(cv)).mul_(aspect)
    dist2 = torch.addcmul(du * du, dv, dv)
    shade = torch.addcmul(torch.ones((), device=dist2.device), dist2, torch.full((), -1.0 / radius**2))
    coverage = _coverage(dist2.sqrt_().sub_(radius), canvas.inv_footprint)
    return coverage, shade.clamp_(min=0.0)


def capsule(
    canvas: Canvas, au: torch.Tensor, av: torch.Tensor, bu: torch.Tensor, bv: torch.Tensor, radius: float
) -> torch.Tensor:
    """Coverage ``[N, H, W]`` of a capsule of ``radius`` around the segment ``a -> b`` (endpoints ``[N]``).

    ``h = clamp(((p - a) . (b - a)) / |b - a|^2, 0, 1)``, ``sd = |p - a - h (b - a)| - radius``. Capsules
    here are about a pixel thick, so they are painted flat (no shade).
    """
    eu, ev = _col(bu - au), _col(bv - av)
    inv_len2 = 1.0 / (eu * eu + ev * ev).clamp(min=1e-12)
    pu = canvas.u - _col(au)
    pv = canvas.v - _col(av)
    h = torch.addcmul(pu * (eu * inv_len2), pv, ev * inv_len2).clamp_(0.0, 1.0)
    du = torch.addcmul(pu, h, -eu)
    dv = torch.addcmul(pv, h, -ev)
    dist = du.mul_(du).addcmul_(dv, dv).sqrt_()
    return _coverage(dist.sub_(radius), canvas.inv_footprint)


def box(canvas: Canvas, cu: torch.Tensor, cv: torch.Tensor, half_u: float, half_v: float) -> torch.Tensor:
    """Coverage of an axis-aligned box (centre ``[N]``, half sides), as a product of 1-D coverages."""
    cov_u = _coverage((canvas.u - _col(cu)).abs_().sub_(half_u), canvas.inv_footprint)
    cov_v = _coverage((canvas.v - _col(cv)).abs_().sub_(half_v), canvas.inv_footprint)
    return cov_u * cov_v


class _Tint:
    """Per-copy shift of every body colour (``[N, 3, 1, 1]``, 0..255 scale) while :func:`tinted` is on."""

    offset: torch.Tensor | None = None
    active: bool = False


_TINT = _Tint()


@contextlib.contextmanager
def tinted(offset: torch.Tensor | None):
    """Within the block, every colour painted is shifted per copy by ``offset [N, 3]`` (None: no shift) and
    :func:`to_uint8` clamps first (a shifted colour or backdrop may leave [0, 255]). The distractions'
    colour shift rides on the painting: the painted colour is ``[N, 3, 1, 1]`` instead of ``[1, 3, 1, 1]``."""
    before = (_TINT.offset, _TINT.active)
    _TINT.offset, _TINT.active = (None if offset is None else offset.reshape(-1, 3, 1, 1)), True
    try:
        yield
    finally:
        _TINT.offset, _TINT.active = before


def _rgb(color: Color, scale: float, device: torch.device) -> torch.Tensor:
    rgb = (torch.tensor(color, device=device) * (255.0 * scale)).clamp(max=255.0).add_(0.5).view(1, 3, 1, 1)
    return rgb if _TINT.offset is None else rgb + _TINT.offset


def layer(background: torch.Tensor, coverage: torch.Tensor, color: Color, scale: float = 1.0) -> torch.Tensor:
    """New ``[N, 3, H, W]`` image: ``color`` over ``background [1, 3, H, W]`` by ``coverage [N, H, W]``.

    Use it for the first body of a frame. The background is copied into a new ``[N, 3, H, W]`` buffer and
    painted there in place: on a CPU 2.8x faster than an out-of-place ``lerp`` broadcasting a
    ``[1, 3, H, W]`` first operand (17.7 vs 6.3 µs per 64x64 frame at N = 1024, one thread).
    """
    out = torch.empty(
        (coverage.shape[0], *background.shape[1:]), dtype=background.dtype, device=background.device
    )
    return out.copy_(background).lerp_(_rgb(color, scale, background.device), coverage.unsqueeze(1))


def paint(image: torch.Tensor, coverage: torch.Tensor, color: Color, scale: float = 1.0) -> torch.Tensor:
    """Blend a flat ``color`` over ``image [N, 3, H, W]`` with weight ``coverage [N, H, W]``, in place."""
    return image.lerp_(_rgb(color, scale, image.device), coverage.unsqueeze(1))


def paint_shaded(
    image: torch.Tensor, coverage: torch.Tensor, shade: torch.Tensor, color: Color, new: bool = False
) -> torch.Tensor:
    """Blend a disc: rim colour by ``coverage``, then lit colour by ``coverage * shade``.

    In place, or with ``new=True`` over a ``[1, 3, H, W]`` background into a new ``[N, 3, H, W]`` image.
    """
    image = layer(image, coverage, color, _RIM) if new else paint(image, coverage, color, _RIM)
    return paint(image, coverage.mul_(shade), color, _LIT)


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """``[N, 3, H, W]`` float in [0.5, 255.5] -> uint8 (truncation of the +0.5 offset rounds); clamped
    first inside :func:`tinted`."""
    return (image.clamp_(0.0, 255.5) if _TINT.active else image).to(torch.uint8)


def background(camera: Camera, floor: Floor | None, size: int, device: torch.device) -> torch.Tensor:
    """Static backdrop ``[1, 3, H, W]``: sky gradient by ray elevation, and a lit checker floor if given.

    Floor colour = checker colour x (0.9 + 0.7 cos(incidence)) (ambient plus head-light diffuse).
    """
    rays = _rays(camera, size)[:-1, :-1]  # [H, W, 3]
    rays = rays / rays.norm(dim=-1, keepdim=True)
    elevation = torch.rad2deg(torch.asin(rays[..., 2]))
    up = (elevation / 22.5).clamp(0.0, 1.0)[..., None]
    down = (-elevation / 45.0).clamp(0.0, 1.0)[..., None]
    horizon, zenith, nadir = (
        torch.tensor(c, dtype=torch.float64) for c in (_SKY_HORIZON, _SKY_ZENITH, _SKY_NADIR)
    )
    image = horizon + up * (zenith - horizon) + down * (nadir - horizon)  # [H, W, 3]
    if floor is not None:
        eye = torch.tensor(camera.position, dtype=torch.float64)
        t = (floor.height - eye[2]) / rays[..., 2]
        hit = eye + t[..., None] * rays
        on_floor = (t > 0) & (hit[..., 0].abs() <= floor.half_size) & (hit[..., 1].abs() <= floor.half_size)
        cells = torch.floor(hit[..., 0:2] / floor.check + floor.phase)
        parity = (cells[..., 0] + cells[..., 1]) % 2
        dark, light = (torch.tensor(c, dtype=torch.float64) * 255 for c in (_CHECK_DARK, _CHECK_LIGHT))
        checker = torch.where(parity[..., None] > 0, light, dark)
        light_level = 0.9 + 0.7 * (-rays[..., 2]).clamp(min=0.0)[..., None]
        image = torch.where(on_floor[..., None], checker * light_level, image)
    return (image.clamp(0.0, 255.0) + 0.5).permute(2, 0, 1)[None].to(device, torch.float32).contiguous()


def scalar(value: float, device: torch.device) -> torch.Tensor:
    """A ``[1]`` float32 tensor, for painting static shapes into a background."""
    return torch.tensor([value], dtype=torch.float32, device=device)
