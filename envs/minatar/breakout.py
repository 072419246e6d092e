"""MinAtar Breakout, batched in torch: a paddle on the bottom row, a ball moving diagonally, three rows of
bricks (refilled when cleared); +1 per brick; the episode ends when the ball passes the paddle.

State (batch ``[N]``): ``ball_x``, ``ball_y``, ``ball_dir`` (0 up-left, 1 up-right, 2 down-right,
3 down-left), ``last_x``, ``last_y`` (the trail), ``pos`` (paddle column), ``strike`` (a brick was hit on
the previous step: the ball passes through one brick per step), ``bricks`` ``[N, 10, 10]`` bool.
Random draws: one uniform at reset (the ball starts on the left, going down-right, or on the right).
"""

from __future__ import annotations

import torch
from torch import Tensor

from envs.minatar.grid import Grid, clamp, lookup, paint

CHANNELS = ("paddle", "ball", "trail", "brick")
RESET_DRAWS = 1
STEP_DRAWS = 0
LEFT, RIGHT = 1, 3
_DX, _DY = (-1, 1, 1, -1), (-1, -1, 1, 1)
_FLIP_X, _FLIP_Y, _PADDLE_EDGE = (1, 0, 3, 2), (3, 2, 1, 0), (2, 3, 0, 1)


def reset(draws: Tensor, ramping: bool) -> dict[str, Tensor]:
    """Fresh states from ``draws`` ``[N, RESET_DRAWS]`` uniforms."""
    right = (draws[:, 0] * 2).long() == 1  # randint(2)
    n, device = draws.shape[0], draws.device
    ball_x = torch.where(right, 9, 0)
    bricks = torch.zeros(n, 10, 10, dtype=torch.bool, device=device)
    bricks[:, 1:4, :] = True
    return {
        "ball_x": ball_x,
        "ball_y": torch.full((n,), 3, device=device),
        "ball_dir": torch.where(right, 3, 2),
        "last_x": ball_x.clone(),
        "last_y": torch.full((n,), 3, device=device),
        "pos": torch.full((n,), 4, device=device),
        "strike": torch.zeros(n, dtype=torch.bool, device=device),
        "bricks": bricks,
    }


def step(s: dict[str, Tensor], action: Tensor, draws: Tensor, ramping: bool) -> tuple[dict, Tensor, Tensor]:
    """One step of every copy: ``action`` ``[N]`` (0..5) -> ``(state, reward [N], terminal [N])``."""
    g = Grid(s["pos"].device)
    pos = torch.where(action == LEFT, clamp(s["pos"] - 1, 0, 9), s["pos"])
    pos = torch.where(action == RIGHT, clamp(pos + 1, 0, 9), pos)
    d = s["ball_dir"]
    last_x, last_y = s["ball_x"], s["ball_y"]
    new_x, new_y = last_x + lookup(_DX, d), last_y + lookup(_DY, d)
    out_x = (new_x < 0) | (new_x > 9)
    new_x = clamp(new_x, 0, 9)
    d = torch.where(out_x, lookup(_FLIP_X, d), d)
    top = new_y < 0
    new_y = torch.where(top, 0, new_y)
    d = torch.where(top, lookup(_FLIP_Y, d), d)
    bricks = s["bricks"]
    hit = ~top & g.at(bricks, new_y, new_x)
    scored = hit & ~s["strike"]  # one brick per step: the ball passes a second one
    bricks = bricks & ~g.cell(new_y, new_x, scored)
    new_y = torch.where(scored, last_y, new_y)
    d = torch.where(scored, lookup(_FLIP_Y, d), d)
    bottom = ~top & ~hit & (new_y == 9)
    cleared = bottom & ~bricks.flatten(1).any(1)
    bricks = bricks | (cleared[:, None, None] & g.rows(1, 4))
    straight = bottom & (last_x == pos)  # the paddle under the ball: straight back up
    edge = bottom & ~straight & (new_x == pos)  # the paddle where the ball goes: back the way it came
    d = torch.where(straight, lookup(_FLIP_Y, d), torch.where(edge, lookup(_PADDLE_EDGE, d), d))
    new_y = torch.where(straight | edge, last_y, new_y)
    terminal = bottom & ~straight & ~edge
    state = {
        "ball_x": new_x, "ball_y": new_y, "ball_dir": d, "last_x": last_x, "last_y": last_y, "pos": pos,
        "strike": hit, "bricks": bricks,
    }  # fmt: skip
    return state, scored.float(), terminal


def observe(s: dict[str, Tensor]) -> Tensor:
    """``[N, 4, 10, 10]`` bool channels (``CHANNELS``)."""
    n, device = s["pos"].shape[0], s["pos"].device
    obs = torch.zeros(n, len(CHANNELS), 10, 10, dtype=torch.bool, device=device)
    ys = torch.stack((torch.full_like(s["pos"], 9), s["ball_y"], s["last_y"]), 1)  # [N, 3]
    xs = torch.stack((s["pos"], s["ball_x"], s["last_x"]), 1)
    paint(obs, torch.arange(3, device=device), ys, xs)  # paddle, ball, trail
    obs[:, 3] = s["bricks"]
    return obs
