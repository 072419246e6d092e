"""MinAtar Asterix, batched in torch: the player moves in rows 1-8; enemies and gold enter from either side
(one per row at most) and cross the screen; +1 per gold collected; touching an enemy ends the episode.
Spawning and movement speed up over time (ramping).

State (batch ``[N]``): ``x``, ``y`` (player), per row slot ``[N, 8]``: ``present``, ``ex`` (column),
``right`` (moving right), ``gold``; ``spawn_speed``, ``spawn_timer``, ``move_speed``, ``move_timer``,
``ramp_timer``, ``ramp_index``. Random draws: 3 uniforms per step (side, gold with probability 1/3, the
free slot), used when an entity spawns.
"""

from __future__ import annotations

import torch
from torch import Tensor

from envs.minatar.grid import clamp, paint

CHANNELS = ("player", "enemy", "trail", "gold")
RESET_DRAWS = 0
STEP_DRAWS = 3
LEFT, UP, RIGHT, DOWN = 1, 2, 3, 4
RAMP_INTERVAL, SPAWN_SPEED, MOVE_INTERVAL = 100, 10, 5


def reset(draws: Tensor, ramping: bool) -> dict[str, Tensor]:
    n, device = draws.shape[0], draws.device
    full = lambda v: torch.full((n,), v, device=device)  # noqa: E731
    slots = lambda dtype: torch.zeros(n, 8, dtype=dtype, device=device)  # noqa: E731
    return {
        "x": full(5), "y": full(5), "present": slots(torch.bool), "ex": slots(torch.long),
        "right": slots(torch.bool), "gold": slots(torch.bool), "spawn_speed": full(SPAWN_SPEED),
        "spawn_timer": full(SPAWN_SPEED), "move_speed": full(MOVE_INTERVAL),
        "move_timer": full(MOVE_INTERVAL), "ramp_timer": full(RAMP_INTERVAL), "ramp_index": full(0),
    }  # fmt: skip


def _collide(present, ex, gold, x, y):
    """Entities on the player: ``(collected gold [N, 8], touched enemy [N])``."""
    rows = torch.arange(1, 9, device=x.device)
    on = present & (ex == x[:, None]) & (rows[None, :] == y[:, None])
    return on & gold, (on & ~gold).any(1)


def step(s: dict[str, Tensor], action: Tensor, draws: Tensor, ramping: bool) -> tuple[dict, Tensor, Tensor]:
    present, ex, right, gold = s["present"], s["ex"], s["right"], s["gold"]
    # spawn: side and kind drawn first, then one free slot uniformly (none free: nothing spawns)
    spawn = s["spawn_timer"] == 0
    side_left = draws[:, 0] < 0.5
    is_gold = draws[:, 1] < 1 / 3
    free = ~present
    n_free = free.sum(1)
    choice = (draws[:, 2] * n_free).long()  # randint(n_free)
    rank = free.long().cumsum(1) - 1  # index of each free slot among the free ones
    new = spawn[:, None] & free & (rank == choice[:, None]) & (n_free > 0)[:, None]  # [N, 8]
    present = present | new
    ex = torch.where(new, torch.where(side_left, 0, 9)[:, None], ex)
    right = torch.where(new, side_left[:, None], right)
    gold = torch.where(new, is_gold[:, None], gold)
    spawn_timer = torch.where(spawn, s["spawn_speed"], s["spawn_timer"])
    x = torch.where(
        action == LEFT, clamp(s["x"] - 1, 0, 9), torch.where(action == RIGHT, clamp(s["x"] + 1, 0, 9), s["x"])
    )
    y = torch.where(
        action == UP, clamp(s["y"] - 1, 1, 8), torch.where(action == DOWN, clamp(s["y"] + 1, 1, 8), s["y"])
    )
    got, terminal = _collide(present, ex, gold, x, y)
    reward = got.sum(1)
    present = present & ~got
    move = s["move_timer"] == 0
    move_timer = torch.where(move, s["move_speed"], s["move_timer"])
    moving = present & move[:, None]
    ex = torch.where(moving, ex + torch.where(right, 1, -1), ex)
    present = present & ~(moving & ((ex < 0) | (ex > 9)))
    got, touched = _collide(present & move[:, None], ex, gold, x, y)
    reward = reward + got.sum(1)
    present = present & ~got
    terminal = terminal | (touched & move)
    spawn_timer, move_timer = spawn_timer - 1, move_timer - 1
    spawn_speed, move_speed = s["spawn_speed"], s["move_speed"]
    ramp_timer, ramp_index = s["ramp_timer"], s["ramp_index"]
    ramps = ramping & ((spawn_speed > 1) | (move_speed > 1))
    wait = ramps & (ramp_timer >= 0)
    level = ramps & ~wait
    ramp_timer = torch.where(wait, ramp_timer - 1, torch.where(level, RAMP_INTERVAL, ramp_timer))
    move_speed = move_speed - (level & (move_speed > 1) & (ramp_index % 2 == 1)).long()
    spawn_speed = spawn_speed - (level & (spawn_speed > 1)).long()
    ramp_index = ramp_index + level.long()
    state = {
        "x": x, "y": y, "present": present, "ex": ex, "right": right, "gold": gold,
        "spawn_speed": spawn_speed, "spawn_timer": spawn_timer, "move_speed": move_speed,
        "move_timer": move_timer, "ramp_timer": ramp_timer, "ramp_index": ramp_index,
    }  # fmt: skip
    return state, reward.float(), terminal


def observe(s: dict[str, Tensor]) -> Tensor:
    n, device = s["x"].shape[0], s["x"].device
    obs = torch.zeros(n, len(CHANNELS), 10, 10, dtype=torch.bool, device=device)
    paint(obs, 0, s["y"], s["x"])
    present, ex, right, gold = s["present"], s["ex"], s["right"], s["gold"]
    back = ex + torch.where(right, -1, 1)
    rows = torch.arange(1, 9, device=ex.device).expand_as(ex)  # [N, 8]
    paint(obs, torch.where(gold, 3, 1), rows, ex, present)
    paint(obs, 2, rows, back, present)  # outside the grid: nothing drawn
    return obs
