"""MinAtar Seaquest, batched in torch: a two-cell submarine (front and back, so its heading shows) fires
sideways (cool-down 5 steps); enemy fish and submarines enter from either side of rows 1-8 and cross,
the submarines shooting every 10 moves' worth of steps; +1 per enemy shot. Divers cross too: touching
one takes it aboard (at most 6). Oxygen (200) runs down below the surface; surfacing with a diver aboard
refills it and drops one diver, surfacing with all 6 drops them all and pays one point per tenth of
oxygen left, and each surfacing speeds up the enemies (ramping). The episode ends when the submarine is
hit by an enemy or an enemy bullet, runs out of oxygen, or surfaces with no diver aboard.

The reference keeps its entities in Python lists whose order decides who is hit first; here each kind is
a list of ``K`` slots per copy, kept in the reference's order (appended at the end, removals closing
the gaps), so the batched rules resolve every contest as the reference's loops do.

State (batch ``[N]``): ``x``, ``y``, ``facing_right`` (the submarine), ``oxygen``, ``divers`` (aboard;
the reference's count, which goes negative after a full surfacing), ``spawn_speed``, ``spawn_timer``,
``diver_spawn_timer``, ``move_speed``, ``ramp_index``, ``cool_down``, ``surface`` (at the surface since the
last dive); lists ``[N, K]`` with ``<list>_alive``: ``bullet_*`` (ours: x, y, right), ``fish_*`` (x, y,
right, timer), ``sub_*`` (x, y, right, timer, shot), ``enemy_bullet_*`` (x, y, right), ``diver_*`` (x, y,
right, timer). Random draws: 5 uniforms per step (an enemy's side, kind (a submarine with probability
1/3) and row; a diver's side and row), used when an enemy or a diver is due.
"""

from __future__ import annotations

import torch
from torch import Tensor

from envs.minatar.grid import paint

CHANNELS = (
    "sub_front", "sub_back", "friendly_bullet", "trail", "enemy_bullet", "enemy_fish", "enemy_sub",
    "oxygen_gauge", "diver_gauge", "diver",
)  # fmt: skip
RESET_DRAWS = 0
STEP_DRAWS = 5
LEFT, UP, RIGHT, DOWN, FIRE = 1, 2, 3, 4, 5
MAX_OXYGEN, SPAWN_SPEED, DIVER_SPAWN_SPEED, MOVE_INTERVAL = 200, 20, 30, 5
COOL_DOWN, ENEMY_SHOT_INTERVAL, DIVER_MOVE_INTERVAL, MAX_DIVERS = 5, 10, 5, 6
# list capacities: fully ramped, an enemy spawns every step and lives 10 moves of 3 steps (at most 31 at
# once, the one due included); a submarine shoots every 11 steps and its bullet lives at most 10 steps;
# our bullets: one per 6 steps, 10 moves; divers: one per 31 steps, 10 moves of 6 steps
LISTS = {
    "bullet": (3, ("x", "y", "right")),
    "fish": (32, ("x", "y", "right", "timer")),
    "sub": (32, ("x", "y", "right", "timer", "shot")),
    "enemy_bullet": (32, ("x", "y", "right")),
    "diver": (4, ("x", "y", "right", "timer")),
}


def reset(draws: Tensor, ramping: bool) -> dict[str, Tensor]:
    n, device = draws.shape[0], draws.device
    full = lambda v: torch.full((n,), v, device=device)  # noqa: E731
    state = {
        "x": full(5), "y": full(0), "facing_right": full(False), "oxygen": full(MAX_OXYGEN),
        "divers": full(0), "spawn_speed": full(SPAWN_SPEED), "spawn_timer": full(SPAWN_SPEED),
        "diver_spawn_timer": full(DIVER_SPAWN_SPEED), "move_speed": full(MOVE_INTERVAL),
        "ramp_index": full(0), "cool_down": full(0), "surface": full(True),
    }  # fmt: skip
    for name, (k, fields) in LISTS.items():
        state[f"{name}_alive"] = torch.zeros(n, k, dtype=torch.bool, device=device)
        for field in fields:
            dtype = torch.bool if field == "right" else torch.long
            state[f"{name}_{field}"] = torch.zeros(n, k, dtype=dtype, device=device)
    return state


def _append_many(s: dict, name: str, add: Tensor, values: dict[str, Tensor]) -> None:
    """Append the entities ``add [N, J]`` to list ``name`` in the order ``J-1 .. 0`` (the order of the
    reference's reversed loop that creates them); ``values`` ``[N, J]``."""
    alive = s[f"{name}_alive"]
    k = alive.shape[1]
    later = add.flip(1).long().cumsum(1).flip(1) - add.long()  # how many of them come before each one
    dest = torch.where(add, alive.sum(1, keepdim=True) + later, k).clamp(max=k)  # [N, J]; column k: a bin
    for field, value in (*values.items(), ("alive", add)):
        old = s[f"{name}_{field}"]
        s[f"{name}_{field}"] = torch.cat((old, old[:, :1]), 1).scatter(1, dest, value)[:, :k]


def _append(s: dict, name: str, add: Tensor, values: dict[str, Tensor]) -> None:
    """Append one entity to list ``name`` where ``add [N]``; ``values`` ``[N]``."""
    _append_many(s, name, add[:, None], {field: value[:, None] for field, value in values.items()})


def _compact(s: dict, name: str) -> None:
    """Close the gaps of list ``name``, keeping its order."""
    alive = s[f"{name}_alive"]
    order = torch.sort((~alive).to(torch.uint8), dim=1, stable=True).indices
    for field in ("alive", *LISTS[name][1]):
        s[f"{name}_{field}"] = s[f"{name}_{field}"].gather(1, order)


def _first(mask: Tensor) -> Tensor:
    """The first true entry of each row of ``mask [N, K]`` (list order), as a mask."""
    return mask & (mask.long().cumsum(1) == 1)


def _last(mask: Tensor) -> Tensor:
    return _first(mask.flip(1)).flip(1)


def _drop(alive: Tensor, k: int, where: Tensor) -> Tensor:
    """``alive [N, K]`` with slot ``k`` cleared where ``where [N]``."""
    return alive & ~(where[:, None] & (torch.arange(alive.shape[1], device=alive.device) == k))


def _step_x(x: Tensor, right: Tensor) -> Tensor:
    return x + torch.where(right, 1, -1)


def _outside(x: Tensor) -> Tensor:
    return (x < 0) | (x > 9)


def _enemies_move(s: dict, name: str, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """The reference's enemy loop (fish or submarines) but for friendly bullets: touching the player,
    moving on its timer, leaving the screen, moving onto the player. Returns ``(terminal [N], moved
    [N, K])``: the enemies that moved and stayed clear of the player, which a bullet may now hit."""
    alive, ex, ey = s[f"{name}_alive"], s[f"{name}_x"], s[f"{name}_y"]
    on_player = lambda cx: alive & (cx == x[:, None]) & (ey == y[:, None])  # noqa: E731
    terminal = on_player(ex).any(1)
    move = alive & (s[f"{name}_timer"] == 0)
    s[f"{name}_timer"] = torch.where(move, s["move_speed"][:, None], s[f"{name}_timer"] - alive.long())
    ex = torch.where(move, _step_x(ex, s[f"{name}_right"]), ex)
    gone = move & _outside(ex)
    hits_player = move & ~gone & on_player(ex)
    s[f"{name}_x"], s[f"{name}_alive"] = ex, alive & ~gone
    return terminal | hits_player.any(1), move & ~gone & ~hits_player


def _bullets_hit_movers(s: dict, name: str, moved: Tensor, reward: Tensor) -> Tensor:
    """Each enemy that moved, from the list's end (the reference's reversed loop), is removed with the
    first of our bullets on its cell: equivalently each bullet in list order takes the last such enemy
    on its cell."""
    for k in range(LISTS["bullet"][0]):
        b = s["bullet_alive"][:, k]
        on = moved & s[f"{name}_alive"] & (s[f"{name}_x"] == s["bullet_x"][:, k, None])
        on = on & (s[f"{name}_y"] == s["bullet_y"][:, k, None]) & b[:, None]
        pick = _last(on)
        hit = pick.any(1)
        s[f"{name}_alive"] = s[f"{name}_alive"] & ~pick
        s["bullet_alive"] = _drop(s["bullet_alive"], k, hit)
        reward = reward + hit.long()
    return reward


def step(s: dict[str, Tensor], action: Tensor, draws: Tensor, ramping: bool) -> tuple[dict, Tensor, Tensor]:
    s = dict(s)
    n, device = action.shape[0], action.device
    reward = torch.zeros(n, dtype=torch.long, device=device)
    terminal = torch.zeros(n, dtype=torch.bool, device=device)

    # an enemy is due: side, kind and row drawn; none if an enemy in that row heads the other way
    due = s["spawn_timer"] == 0
    from_left, is_sub = draws[:, 0] < 0.5, draws[:, 1] < 1 / 3
    row = 1 + (draws[:, 2] * 8).long()
    clash = torch.zeros_like(due)
    for name in ("sub", "fish"):
        heading = s[f"{name}_right"] != from_left[:, None]
        clash |= (s[f"{name}_alive"] & (s[f"{name}_y"] == row[:, None]) & heading).any(1)
    enemy = {"x": torch.where(from_left, 0, 9), "y": row, "right": from_left, "timer": s["move_speed"]}
    _append(s, "sub", due & ~clash & is_sub, enemy | {"shot": torch.full_like(row, ENEMY_SHOT_INTERVAL)})
    _append(s, "fish", due & ~clash & ~is_sub, enemy)
    s["spawn_timer"] = torch.where(due, s["spawn_speed"], s["spawn_timer"])
    due = s["diver_spawn_timer"] == 0
    side = draws[:, 3] < 0.5
    diver = {"x": torch.where(side, 0, 9), "y": 1 + (draws[:, 4] * 8).long(), "right": side,
             "timer": torch.full_like(row, DIVER_MOVE_INTERVAL)}  # fmt: skip
    _append(s, "diver", due, diver)
    s["diver_spawn_timer"] = torch.where(due, DIVER_SPAWN_SPEED, s["diver_spawn_timer"])

    # the player: fire (when cooled down) or move; left and right turn the submarine
    x, y, facing = s["x"], s["y"], s["facing_right"]
    fire = (action == FIRE) & (s["cool_down"] == 0)
    _append(s, "bullet", fire, {"x": x, "y": y, "right": facing})
    s["cool_down"] = torch.where(fire, COOL_DOWN, s["cool_down"])
    x = torch.where(
        action == LEFT, (x - 1).clamp(min=0), torch.where(action == RIGHT, (x + 1).clamp(max=9), x)
    )
    facing = torch.where(action == LEFT, False, torch.where(action == RIGHT, True, facing))
    y = torch.where(action == UP, (y - 1).clamp(min=0), torch.where(action == DOWN, (y + 1).clamp(max=8), y))
    s["x"], s["y"], s["facing_right"] = x, y, facing

    # our bullets, from the list's end: move, leave, or take the first fish (else submarine) on the cell
    alive = s["bullet_alive"]
    s["bullet_x"] = torch.where(alive, _step_x(s["bullet_x"], s["bullet_right"]), s["bullet_x"])
    alive = alive & ~_outside(s["bullet_x"])
    for k in reversed(range(alive.shape[1])):
        bx, by, b = s["bullet_x"][:, k, None], s["bullet_y"][:, k, None], alive[:, k, None]
        fish = _first(s["fish_alive"] & (s["fish_x"] == bx) & (s["fish_y"] == by) & b)
        got_fish = fish.any(1, keepdim=True)
        sub = _first(s["sub_alive"] & (s["sub_x"] == bx) & (s["sub_y"] == by) & b & ~got_fish)
        hit = got_fish | sub.any(1, keepdim=True)  # [N, 1]
        s["fish_alive"], s["sub_alive"] = s["fish_alive"] & ~fish, s["sub_alive"] & ~sub
        alive = _drop(alive, k, hit[:, 0])
        reward = reward + hit[:, 0].long()
    s["bullet_alive"] = alive

    # divers, from the list's end: taken aboard on the player's cell (room permitting), else moved
    divers = s["divers"]
    for key in ("diver_alive", "diver_x", "diver_timer"):  # written slot by slot below
        s[key] = s[key].clone()
    for k in reversed(range(s["diver_alive"].shape[1])):
        a, dx, dy = s["diver_alive"][:, k], s["diver_x"][:, k], s["diver_y"][:, k]
        take = a & (dx == x) & (dy == y) & (divers < MAX_DIVERS)
        divers = divers + take.long()
        rest = a & ~take
        move = rest & (s["diver_timer"][:, k] == 0)
        s["diver_timer"][:, k] = torch.where(move, DIVER_MOVE_INTERVAL, s["diver_timer"][:, k] - rest.long())
        dx = torch.where(move, _step_x(dx, s["diver_right"][:, k]), dx)
        gone = move & _outside(dx)
        take_after = move & ~gone & (dx == x) & (dy == y) & (divers < MAX_DIVERS)
        divers = divers + take_after.long()
        s["diver_x"][:, k] = dx
        s["diver_alive"][:, k] = rest & ~gone & ~take_after
    s["divers"] = divers

    # enemy submarines: touch, move, leave; a bullet may hit the moved; each shoots on its own timer
    # (the reference lets a submarine removed in this step shoot too)
    subs = s["sub_alive"]
    hit_player, moved = _enemies_move(s, "sub", x, y)
    terminal |= hit_player
    reward = _bullets_hit_movers(s, "sub", moved, reward)
    shoot = subs & (s["sub_shot"] == 0)
    s["sub_shot"] = torch.where(shoot, ENEMY_SHOT_INTERVAL, s["sub_shot"] - subs.long())
    _append_many(s, "enemy_bullet", shoot, {"x": s["sub_x"], "y": s["sub_y"], "right": s["sub_right"]})

    # enemy bullets: touch, move, leave or move onto the player
    alive, ex, ey = s["enemy_bullet_alive"], s["enemy_bullet_x"], s["enemy_bullet_y"]
    terminal |= (alive & (ex == x[:, None]) & (ey == y[:, None])).any(1)
    ex = torch.where(alive, _step_x(ex, s["enemy_bullet_right"]), ex)
    alive = alive & ~_outside(ex)
    terminal |= (alive & (ex == x[:, None]) & (ey == y[:, None])).any(1)
    s["enemy_bullet_x"], s["enemy_bullet_alive"] = ex, alive

    # enemy fish: as the submarines, without shooting
    hit_player, moved = _enemies_move(s, "fish", x, y)
    terminal |= hit_player
    reward = _bullets_hit_movers(s, "fish", moved, reward)

    # timers, oxygen and the surface
    for key in ("spawn_timer", "diver_spawn_timer", "cool_down"):
        s[key] = s[key] - (s[key] > 0).long()
    terminal |= s["oxygen"] <= 0
    below = y > 0
    arriving = ~below & ~s["surface"]
    terminal |= arriving & (divers == 0)
    surfacing = arriving & (divers != 0)
    full = surfacing & (divers == MAX_DIVERS)
    reward = reward + torch.where(full, s["oxygen"] * 10 // MAX_OXYGEN, 0)
    divers = torch.where(full, 0, divers)
    s["divers"] = torch.where(surfacing, divers - 1, divers)
    s["oxygen"] = torch.where(below, s["oxygen"] - 1, torch.where(surfacing, MAX_OXYGEN, s["oxygen"]))
    s["surface"] = torch.where(below, False, s["surface"] | surfacing)
    if ramping:
        spawn_speed, move_speed, ramp_index = s["spawn_speed"], s["move_speed"], s["ramp_index"]
        ramp = surfacing & ((spawn_speed > 1) | (move_speed > 2))
        s["move_speed"] = move_speed - (ramp & (move_speed > 2) & (ramp_index % 2 == 1)).long()
        s["spawn_speed"] = spawn_speed - (ramp & (spawn_speed > 1)).long()
        s["ramp_index"] = ramp_index + ramp.long()
    for name in LISTS:
        _compact(s, name)
    return s, reward.float(), terminal


def observe(s: dict[str, Tensor]) -> Tensor:
    n, device = s["x"].shape[0], s["x"].device
    obs = torch.zeros(n, len(CHANNELS), 10, 10, dtype=torch.bool, device=device)
    x, y = s["x"], s["y"]
    cols = torch.arange(10, device=device)
    obs[:, 7, 9] = cols < (s["oxygen"].clamp(min=0) * 10 // MAX_OXYGEN)[:, None]
    obs[:, 8, 9] = (cols >= 9 - s["divers"][:, None]) & (cols < 9)
    # every object in one scatter: (channel, row, column, drawn) per object [N, *]
    objects = [
        (0, y[:, None], x[:, None], None),
        (1, y[:, None], torch.where(s["facing_right"], x - 1, x + 1)[:, None], None),
    ]
    for name, channel in (("bullet", 2), ("enemy_bullet", 4), ("fish", 5), ("sub", 6), ("diver", 9)):
        alive, ex, ey = s[f"{name}_alive"], s[f"{name}_x"], s[f"{name}_y"]
        objects.append((channel, ey, ex, alive))
        if name in ("fish", "sub", "diver"):  # the trail behind
            objects.append((3, ey, ex - torch.where(s[f"{name}_right"], 1, -1), alive))
    channel = torch.cat([torch.full_like(ey, c) for c, ey, _, _ in objects], 1)
    drawn = torch.cat(
        [torch.ones_like(ey, dtype=torch.bool) if m is None else m for _, ey, _, m in objects], 1
    )
    paint(obs, channel, torch.cat([o[1] for o in objects], 1), torch.cat([o[2] for o in objects], 1), drawn)
    return obs
