"""MinAtar Freeway, batched in torch: the chicken crosses eight lanes of cars from the bottom row to the
top (+1 per crossing, then the cars get new speeds); a car hitting it sends it back to the bottom; it
moves at most every 3 steps; the episode lasts 2,500 steps.

State (batch ``[N]``): ``pos`` (the chicken's row, column 4), ``car_x`` ``[N, 8]`` (car ``i`` in row
``i + 1``), ``car_timer`` ``[N, 8]``, ``car_speed`` ``[N, 8]`` (signed: right when > 0; it moves every
``|speed|`` steps), ``move_timer``, ``time_left``. Random draws: 16 uniforms each time the cars get new
speeds (``1 + ⌊5u⌋``, direction ``sign(u' - 1/2)``): at reset and after each crossing.
"""

from __future__ import annotations

import torch
from torch import Tensor

from envs.minatar.grid import clamp, paint

CHANNELS = ("chicken", "car", "speed1", "speed2", "speed3", "speed4", "speed5")
RESET_DRAWS = 16
STEP_DRAWS = 16
UP, DOWN = 2, 4
PLAYER_SPEED, TIME_LIMIT = 3, 2500


def _speeds(draws: Tensor) -> Tensor:
    """``[N, 8]`` signed speeds from ``draws`` ``[N, 16]``."""
    magnitude = 1 + (draws[:, :8] * 5).long()  # randint(1, 6)
    return magnitude * torch.sign(draws[:, 8:16] - 0.5).long()


def reset(draws: Tensor, ramping: bool) -> dict[str, Tensor]:
    n, device = draws.shape[0], draws.device
    speed = _speeds(draws)
    return {
        "pos": torch.full((n,), 9, device=device),
        "car_x": torch.zeros(n, 8, dtype=torch.long, device=device),
        "car_timer": speed.abs(),
        "car_speed": speed,
        "move_timer": torch.full((n,), PLAYER_SPEED, device=device),
        "time_left": torch.full((n,), TIME_LIMIT, device=device),
    }  # fmt: skip


def step(s: dict[str, Tensor], action: Tensor, draws: Tensor, ramping: bool) -> tuple[dict, Tensor, Tensor]:
    ready = s["move_timer"] == 0
    up, down = ready & (action == UP), ready & (action == DOWN)
    move_timer = torch.where(up | down, PLAYER_SPEED, s["move_timer"])
    pos = torch.where(up, clamp(s["pos"] - 1, 0, 9), torch.where(down, clamp(s["pos"] + 1, 0, 9), s["pos"]))
    crossed = pos == 0
    new_speed = _speeds(draws)
    speed = torch.where(crossed[:, None], new_speed, s["car_speed"])
    timer = torch.where(crossed[:, None], new_speed.abs(), s["car_timer"])
    pos = torch.where(crossed, 9, pos)
    lanes = torch.arange(1, 9, device=pos.device)  # [8] the row of each car
    x = s["car_x"]
    in_lane = lanes[None, :] == pos[:, None]  # [N, 8]
    hit = in_lane & (x == 4)  # before the cars move
    due = timer == 0
    x = torch.where(due, (x + torch.where(speed > 0, 1, -1)) % 10, x)  # wraps around the road
    hit = hit | (in_lane & due & (x == 4))  # after
    timer = torch.where(due, speed.abs(), timer - 1)
    pos = torch.where(hit.any(1), 9, pos)
    time_left = s["time_left"] - 1
    state = {
        "pos": pos, "car_x": x, "car_timer": timer, "car_speed": speed,
        "move_timer": move_timer - (move_timer > 0).long(), "time_left": time_left,
    }  # fmt: skip
    return state, crossed.float(), time_left < 0


def observe(s: dict[str, Tensor]) -> Tensor:
    n, device = s["pos"].shape[0], s["pos"].device
    obs = torch.zeros(n, len(CHANNELS), 10, 10, dtype=torch.bool, device=device)
    paint(obs, 0, s["pos"], torch.full_like(s["pos"], 4))
    x, speed = s["car_x"], s["car_speed"]  # [N, 8]
    back = (x - torch.where(speed > 0, 1, -1)) % 10
    rows = torch.arange(1, 9, device=x.device).expand_as(x)
    paint(obs, 1, rows, x)
    paint(obs, 1 + speed.abs(), rows, back, speed != 0)  # the trail's channel tells the speed
    return obs
