"""MinAtar Space Invaders, batched in torch: a cannon on the bottom row fires upwards (cool-down 5 steps);
a 4x6 block of aliens moves sideways and down a row at each edge, faster as fewer remain; the nearest
alien shoots every 10 steps; +1 per alien hit; a cleared wave comes back faster (ramping). The episode
ends when an alien bullet or an alien reaches the cannon, or the aliens reach the bottom row.

State (batch ``[N]``): ``pos``, ``friendly``, ``enemy``, ``aliens`` ``[N, 10, 10]`` bool, ``direction``
(-1 left, +1 right), ``move_interval``, ``move_timer``, ``shot_timer`` (aliens), ``cool_down`` (cannon),
``ramp_index``. No random draws.
"""

from __future__ import annotations

import torch
from torch import Tensor

from envs.minatar.grid import Grid, clamp, paint

CHANNELS = ("cannon", "alien", "alien_left", "alien_right", "friendly_bullet", "enemy_bullet")
RESET_DRAWS = 0
STEP_DRAWS = 0
LEFT, RIGHT, FIRE = 1, 3, 5
COOL_DOWN, MOVE_INTERVAL, SHOT_INTERVAL = 5, 12, 10


def _wave(n: int, device: torch.device) -> Tensor:
    return Grid(device).block((0, 4), (2, 8)).expand(n, 10, 10).clone()


def reset(draws: Tensor, ramping: bool) -> dict[str, Tensor]:
    n, device = draws.shape[0], draws.device
    full = lambda v: torch.full((n,), v, device=device)  # noqa: E731
    empty = torch.zeros(n, 10, 10, dtype=torch.bool, device=device)
    return {
        "pos": full(5), "friendly": empty, "enemy": empty.clone(), "aliens": _wave(n, device),
        "direction": full(-1), "move_interval": full(MOVE_INTERVAL), "move_timer": full(MOVE_INTERVAL),
        "shot_timer": full(SHOT_INTERVAL), "cool_down": full(0), "ramp_index": full(0),
    }  # fmt: skip


def _nearest_alien(aliens: Tensor, pos: Tensor) -> tuple[Tensor, Tensor]:
    """The lowest alien of the column nearest to ``pos`` (ties: the left one): ``(row, col)`` ``[N]``."""
    cols = torch.arange(10, device=pos.device)
    occupied = aliens.any(1)  # [N, 10] columns with an alien
    key = (cols - pos[:, None]).abs() * 10 + cols  # distance first, then the column (a stable sort)
    col = torch.where(occupied, key, 1000).argmin(1)
    column = aliens.gather(2, col.view(-1, 1, 1).expand(-1, 10, 1)).squeeze(2)  # [N, 10]
    row = torch.where(column, cols, -1).max(1).values
    return row, col


def step(s: dict[str, Tensor], action: Tensor, draws: Tensor, ramping: bool) -> tuple[dict, Tensor, Tensor]:
    g = Grid(action.device)
    pos, cool_down = s["pos"], s["cool_down"]
    fire = (action == FIRE) & (cool_down == 0)
    friendly = s["friendly"] | g.cell(torch.full_like(pos, 9), pos, fire)
    cool_down = torch.where(fire, COOL_DOWN, cool_down)
    pos = torch.where(
        action == LEFT, clamp(pos - 1, 0, 9), torch.where(action == RIGHT, clamp(pos + 1, 0, 9), pos)
    )
    friendly = torch.roll(friendly, -1, 1) & ~g.rows(9, 10)  # bullets move up
    enemy = torch.roll(s["enemy"], 1, 1) & ~g.rows(0, 1)  # and down
    bottom_row = torch.full_like(pos, 9)
    aliens = s["aliens"]
    terminal = g.at(enemy, bottom_row, pos) | g.at(aliens, bottom_row, pos)
    move = s["move_timer"] == 0
    count = aliens.flatten(1).sum(1)
    move_timer = torch.where(move, torch.minimum(count, s["move_interval"]), s["move_timer"])
    direction = s["direction"]
    at_edge = (aliens[:, :, 0].any(1) & (direction < 0)) | (aliens[:, :, 9].any(1) & (direction > 0))
    down = move & at_edge
    side = move & ~at_edge
    terminal = terminal | (down & aliens[:, 9, :].any(1))
    direction = torch.where(down, -direction, direction)
    moved = torch.where(
        down.view(-1, 1, 1),
        torch.roll(aliens, 1, 1),
        torch.where((direction > 0).view(-1, 1, 1), torch.roll(aliens, 1, 2), torch.roll(aliens, -1, 2)),
    )
    aliens = torch.where((down | side).view(-1, 1, 1), moved, aliens)
    terminal = terminal | (move & g.at(aliens, bottom_row, pos))
    shoot = s["shot_timer"] == 0
    shot_timer = torch.where(shoot, SHOT_INTERVAL, s["shot_timer"])
    row, col = _nearest_alien(aliens, pos)
    enemy = enemy | g.cell(row, col, shoot)
    kill = aliens & friendly
    reward = kill.flatten(1).sum(1).float()
    aliens, friendly = aliens & ~kill, friendly & ~kill
    cool_down = cool_down - (cool_down > 0).long()
    move_timer, shot_timer = move_timer - 1, shot_timer - 1
    cleared = ~aliens.flatten(1).any(1)
    faster = cleared & (s["move_interval"] > 6) & ramping
    aliens = aliens | (cleared.view(-1, 1, 1) & _wave(1, action.device))
    state = {
        "pos": pos, "friendly": friendly, "enemy": enemy, "aliens": aliens, "direction": direction,
        "move_interval": s["move_interval"] - faster.long(), "move_timer": move_timer,
        "shot_timer": shot_timer, "cool_down": cool_down, "ramp_index": s["ramp_index"] + faster.long(),
    }  # fmt: skip
    return state, reward, terminal


def observe(s: dict[str, Tensor]) -> Tensor:
    n, device = s["pos"].shape[0], s["pos"].device
    obs = torch.zeros(n, len(CHANNELS), 10, 10, dtype=torch.bool, device=device)
    paint(obs, 0, torch.full_like(s["pos"], 9), s["pos"])
    obs[:, 1] = s["aliens"]
    left = (s["direction"] < 0).view(-1, 1, 1)
    obs[:, 2] = s["aliens"] & left
    obs[:, 3] = s["aliens"] & ~left
    obs[:, 4] = s["friendly"]
    obs[:, 5] = s["enemy"]
    return obs
