"""Distractions for the torch-native tasks, in the spirit of the Distracting Control Suite (Stone et al.
2021): what the frames show changes, the task (physics, state, reward) does not.

Three kinds, each with a strength ``s`` in ``[0, 1]`` (0: off), drawn per copy and per episode from the
env's own distraction generator (so the physics' random stream is the same with or without them), and
rendered in the same batched call as the frame:

* ``color``: the colours shift per episode: every colour the scene paints (the bodies) by one random RGB
  offset, the backdrop by another, each channel uniform in ``±0.5·s`` of full scale (DCS shifts each
  body's RGB by up to ``±s``);
* ``background``: the backdrop (sky and floor; bodies and static decorations such as rails and walls stay)
  is blended, with weight ``s``, with a procedural moving texture of its own per copy: three coloured
  sinusoidal gratings (random orientation, phase and colour; spatial frequency 1-4 cycles per image,
  drifting at up to 0.3 rad per step). DCS plays natural videos there; a texture needs no data set and
  can be drawn for thousands of copies per call;
* ``camera``: the image is seen through a small per-episode change of view, a similarity transform of
  the image plane (roll up to ``15°·s``, shift up to ``15 %·s`` of the frame, zoom up to ``±15 %·s``): a
  first-order stand-in for DCS's camera pose jitter (pan and tilt shift the image, roll rotates it,
  a dolly zooms it), each output pixel showing its nearest source pixel, the border extended.

``heldout=True`` draws backgrounds from a disjoint family (4-8 cycles per image, drifting faster), for
evaluating on distractions the agent never trained with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from envs.torch_control import render

GRATINGS = 3
"""Sinusoidal gratings summed into one copy's background texture."""
FREQ_TRAIN, FREQ_HELDOUT = (1.0, 4.0), (4.0, 8.0)
"""Spatial frequency ranges (cycles per image) of the training and held-out textures."""
SPEED_TRAIN, SPEED_HELDOUT = 0.3, 0.6
"""Largest drift of a grating's phase, radians per agent step."""
MAX_ROLL_DEG, MAX_SHIFT, MAX_ZOOM = 15.0, 0.15, 0.15
"""Camera jitter at strength 1: roll (degrees), shift (fraction of the frame), log-zoom."""
MAX_COLOR_SHIFT = 0.5
"""Colour shift at strength 1, a fraction of full scale per channel."""
SEED_OFFSET = 7_919
"""The distraction generator's seed is the env's seed plus this (its own stream)."""


@dataclass(frozen=True)
class DistractionSpec:
    """Strengths in ``[0, 1]`` of the three kinds, and whether backgrounds come from the held-out family."""

    color: float = 0.0
    background: float = 0.0
    camera: float = 0.0
    heldout: bool = False

    def __post_init__(self) -> None:
        for kind in ("color", "background", "camera"):
            value = getattr(self, kind)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"distraction {kind}={value!r} must be a strength in [0, 1]")

    @property
    def active(self) -> bool:
        return self.color > 0 or self.background > 0 or self.camera > 0


class Distraction:
    """Per-copy distraction parameters (resampled when a copy resets) and the distracted renderer.

    ``render(scene, physics [N, P], elapsed [N]) -> uint8 [N, 3, H, W]``; ``resample(mask [N])`` draws new
    parameters for the copies in ``mask``; ``state()`` / ``load_state()`` for bit-exact resumes. Costs per
    frame: the texture is a batched matrix product (a grating ``sin(a·x + b·y + φ)`` is separable into
    sines and cosines of ``x`` and of ``y``), the colour shift rides on the painted colours
    (:func:`render.tinted`), the view is one gather of precomputed (nearest) source pixels per episode.
    """

    def __init__(self, spec: DistractionSpec, domain, scene, num_envs: int, size: int, seed: int, device):
        self.spec, self.num_envs, self.size, self.device = spec, num_envs, size, device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(int(seed) + SEED_OFFSET)
        plain = render.background(domain.CAMERA, domain.FLOOR, size, device)  # sky and floor only
        self.static = scene.background  # [1, 3, H, W], with the static decorations
        backdrop = (scene.background - plain).abs().amax(1, keepdim=True) < 1.0  # [1, 1, H, W]
        self.tex_weight = backdrop.float() * spec.background  # where and how much the texture shows
        self.keep = self.static * (1.0 - self.tex_weight)  # [1, 3, H, W]
        self.coords = 2 * math.pi * (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
        n, k = num_envs, GRATINGS
        self.params = {
            "fg_shift": torch.zeros(n, 3, device=device),
            "bg_shift": torch.zeros(n, 3, device=device),
            "freq": torch.zeros(n, k, 2, device=device),  # cycles per image along x and y
            "phase": torch.zeros(n, k, device=device),
            "speed": torch.zeros(n, k, device=device),
            "tex_color": torch.zeros(n, k, 3, device=device),
            "camera": torch.zeros(n, 4, device=device),  # roll (rad), shift x, shift y, log-zoom
        }
        if spec.camera > 0:  # [N, H·W] the pixel each output pixel shows (8 bytes per pixel and copy)
            self.params["source"] = torch.arange(size * size, device=device).repeat(n, 1)

    # ------------------------------------------------------------------------------------ sampling
    def _uniform(self, *shape: int, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
        u = torch.rand(*shape, generator=self.generator, device=self.device)
        return low + (high - low) * u

    def resample(self, mask: torch.Tensor) -> None:
        """New parameters for the copies where ``mask [N]`` (bool) is set; the others keep theirs."""
        n, k, s = self.num_envs, GRATINGS, self.spec
        freq_range, speed = (FREQ_HELDOUT, SPEED_HELDOUT) if s.heldout else (FREQ_TRAIN, SPEED_TRAIN)
        angle = self._uniform(n, k, low=0.0, high=2 * math.pi)
        magnitude = self._uniform(n, k, low=freq_range[0], high=freq_range[1])
        view_scale = torch.tensor(
            [math.radians(MAX_ROLL_DEG), MAX_SHIFT, MAX_SHIFT, MAX_ZOOM], device=self.device
        )
        fresh = {
            "fg_shift": self._uniform(n, 3) * (MAX_COLOR_SHIFT * 255.0 * s.color),
            "bg_shift": self._uniform(n, 3) * (MAX_COLOR_SHIFT * 255.0 * s.color),
            "freq": torch.stack((angle.cos(), angle.sin()), -1) * magnitude[..., None],
            "phase": self._uniform(n, k, low=0.0, high=2 * math.pi),
            "speed": self._uniform(n, k) * speed,
            "tex_color": self._uniform(n, k, 3, low=0.0, high=255.0),
            "camera": self._uniform(n, 4) * view_scale * s.camera,
        }
        if s.camera > 0:
            fresh["source"] = self._source_pixels(fresh["camera"])
        for key, value in fresh.items():
            m = mask.view(-1, *([1] * (value.ndim - 1)))
            self.params[key] = torch.where(m, value, self.params[key])

    def _source_pixels(self, camera: torch.Tensor) -> torch.Tensor:
        """Flat index ``[N, H·W]`` of the pixel each output pixel shows under the view change ``camera
        [N, 4]`` (a similarity transform about the image centre; nearest pixel, the border extended)."""
        roll, tx, ty, log_zoom = camera.unbind(-1)  # [N] each
        scale = torch.exp(-log_zoom)  # the sampling grid shrinks when zooming in
        cos, sin = roll.cos() * scale, roll.sin() * scale
        theta = torch.stack((torch.stack((cos, -sin, tx), -1), torch.stack((sin, cos, ty), -1)), 1)
        grid = F.affine_grid(theta, [camera.shape[0], 1, self.size, self.size], align_corners=False)
        pixel = ((grid + 1) * self.size / 2).floor().long().clamp_(0, self.size - 1)  # [N, H, W, 2] (x, y)
        return (pixel[..., 1] * self.size + pixel[..., 0]).reshape(camera.shape[0], -1)

    # ----------------------------------------------------------------------------------- rendering
    def texture(self, elapsed: torch.Tensor) -> torch.Tensor:
        """Each copy's background texture at step ``elapsed [N]``: float ``[N, 3, H, W]`` in [0, 255].

        ``Σ_k c_k·(½ + ½·sin(a_k·x + b_k·y + φ_k))`` with ``sin(u + v) = sin u·cos v + cos u·sin v``: a
        ``[N, 3·H, 2K] @ [N, 2K, W]`` product instead of ``K·H·W`` sines per copy.
        """
        p, n, size = self.params, self.num_envs, self.size
        phase = p["phase"] + p["speed"] * elapsed.float()[:, None]  # [N, K]
        u = p["freq"][..., 0, None] * self.coords  # [N, K, W]: a·x
        v = p["freq"][..., 1, None] * self.coords + phase[..., None]  # [N, K, H]: b·y + φ
        color = p["tex_color"] * (1.0 / GRATINGS)  # [N, K, 3]: the 1/K average and the ½ amplitude x 2
        left = torch.cat((v.cos(), v.sin()), 1)  # [N, 2K, H]
        left = (color.transpose(1, 2).repeat(1, 1, 2)[..., None] * left[:, None]).reshape(
            n, 3, 2 * GRATINGS, size
        )
        left = left.transpose(2, 3).reshape(n, 3 * size, 2 * GRATINGS)  # [N, 3·H, 2K]
        right = torch.cat((u.sin(), u.cos()), 1)  # [N, 2K, W]
        base = color.sum(1)[..., None, None]  # [N, 3, 1, 1]
        return torch.bmm(left, right).view(n, 3, size, size).add_(base)

    def render(self, scene, physics: torch.Tensor, elapsed: torch.Tensor) -> torch.Tensor:
        """The distracted frames ``uint8 [N, 3, H, W]`` of ``physics [N, P]`` at steps ``elapsed [N]``."""
        s, p = self.spec, self.params
        backdrop = self.static  # [1, 3, H, W] float in [0.5, 255.5]
        # in-place ops on a full [N, 3, H, W] buffer: 5x faster on a CPU than out-of-place ones whose first
        # operand is broadcast from [1, 3, H, W]
        if s.background > 0:
            backdrop = self.texture(elapsed).add_(0.5).mul_(self.tex_weight).add_(self.keep)
        if s.color > 0:
            if s.background == 0:
                backdrop = torch.empty_like(self.static.expand(self.num_envs, -1, -1, -1)).copy_(self.static)
            backdrop.add_(p["bg_shift"].view(-1, 3, 1, 1))  # [N, 3, H, W]
        scene.background = backdrop
        try:
            with render.tinted(p["fg_shift"] if s.color > 0 else None):
                frame = scene(physics)  # uint8 [N, 3, H, W]: bodies painted over the backdrop
        finally:
            scene.background = self.static
        if s.camera > 0:
            flat = frame.reshape(self.num_envs, 3, -1)
            frame = flat.gather(2, p["source"][:, None].expand(-1, 3, -1)).view_as(frame)
        return frame

    # --------------------------------------------------------------------------------- checkpoints
    def state(self) -> dict:
        return {"generator": self.generator.get_state(), **{k: v.cpu() for k, v in self.params.items()}}

    def load_state(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.params = {k: state[k].to(self.device) for k in self.params}
