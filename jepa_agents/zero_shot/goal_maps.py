"""Two diagnostics of a maze model from states: where a goal's implicit reward peaks, and how much its
critic tells actions apart.

For a goal ``g`` the model's task vector is ``z = infer_z_from_goal(g)``; its implicit reward is
``r_z(s) = f(s)ᵀz`` with ``f`` the task features (ψ, FB's ``B``). On a grid of rest states covering the free
arena (``G`` states, :func:`envs.torch_control.point_mass_maze.is_free`)::

    peak_error = |argmax_s r_z(s) - g|                                   (0: the reward peaks at the goal)
    Q(s, a) = successor(s, a, z)ᵀ z
    action_gap = mean_s [max_a Q(s, a) - min_a Q(s, a)] / mean_s |Q(s, π(s, z))|
    push_at_goal = |π(g at rest, z)|_∞                     (0: the policy stays; 1: full force away)

over the nine actions ``a ∈ {-1, 0, 1}²``. A reward whose peak lies beyond the goal (unnormalized
embeddings: ``ψ(s)ᵀz`` grows along ``z`` up to the arena's wall) drives the policy into a corner; an
``action_gap`` of a few thousandths leaves the actor following noise; a ``push_at_goal`` near 1 is a
saturated (bang-bang) policy, which holds a goal only by chattering around it.

:func:`settle_points` runs the policy: where ``N`` episodes from the domain's start end after ``T`` steps
with ``π(·, z_g)``, and how far that is from ``g`` (a policy that settles beside a goal its reward map
gets right has a critic that is off).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from envs.torch_control import point_mass_maze as maze
from jepa_agents.zero_shot.td_jepa import ZeroShotModel

ACTIONS = torch.tensor([[x, y] for x in (-1.0, 0.0, 1.0) for y in (-1.0, 0.0, 1.0)])
"""The nine actions ``{-1, 0, 1}²`` ``[9, 2]`` over which the action gap is taken."""


def rest_grid(points: int) -> torch.Tensor:
    """Maze states at rest ``[G, 4]`` on a ``points × points`` grid of the arena, free positions only."""
    xs = torch.linspace(-1.0 + maze.RADIUS, 1.0 - maze.RADIUS, points)
    pos = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), -1).reshape(-1, 2)  # [P², 2]
    pos = pos[maze.is_free(pos)]
    return torch.cat([pos, torch.zeros_like(pos)], dim=-1)  # [G, 4]


@torch.no_grad()
def goal_maps(
    model: ZeroShotModel, goals: Mapping[str, Sequence[float]], points: int = 39
) -> dict[str, dict[str, float]]:
    """``{goal name: {peak_x, peak_y, peak_error, action_gap, push_at_goal}}`` for a state-based maze model
    (above)."""
    if tuple(model.obs_shape) != (maze.STATE_DIM,):
        raise ValueError(
            f"goal maps need a point-mass maze model from states (obs_shape ({maze.STATE_DIM},)), got "
            f"{tuple(model.obs_shape)}"
        )
    device = next(model.parameters()).device
    states = rest_grid(points).to(device)  # [G, 4]
    n, k = states.shape[0], ACTIONS.shape[0]
    feats = model.task_features(states)  # [G, d]
    every = states.repeat(k, 1)  # [k·G, 4]: each state once per action
    actions = ACTIONS.to(device).repeat_interleave(n, 0)  # [k·G, 2]
    out = {}
    for name, (x, y) in goals.items():
        goal = torch.tensor([[x, y, 0.0, 0.0]], device=device)
        z = model.infer_z_from_goal(goal)[0]  # [d]
        peak = states[(feats @ z).argmax(), :2]
        q = (model.successor(every, actions, z.expand(k * n, -1)) @ z).reshape(k, n)  # [k, G]
        q_pi = model.successor(states, model.act(states, z), z.expand(n, -1)) @ z  # [G]
        gap = (q.max(0).values - q.min(0).values).mean() / q_pi.abs().mean().clamp_min(1e-12)
        push = model.act(goal, z.unsqueeze(0))[0].abs().max()  # the mean action resting on the goal
        out[name] = {
            "peak_x": float(peak[0]),
            "peak_y": float(peak[1]),
            "peak_error": float((peak - torch.tensor([x, y], device=device)).norm()),
            "action_gap": float(gap),
            "push_at_goal": float(push),
        }
    return out


@torch.no_grad()
def settle_points(
    model: ZeroShotModel, env, goals: Mapping[str, Sequence[float]], steps: int = 300
) -> dict[str, dict[str, float]]:
    """``{goal name: {settle_x, settle_y, settle_error}}``: the mean position of ``env``'s copies after
    ``steps`` steps of the mean policy ``π(·, z_g)`` from a reset (``env``: ``torch/point_mass_maze`` from
    states, ``[N]`` copies), and its distance to the goal."""
    device = next(model.parameters()).device
    out = {}
    for name, (x, y) in goals.items():
        z = model.infer_z_from_goal(torch.tensor([[x, y, 0.0, 0.0]], device=device))  # [1, d]
        td = env.reset()
        for _ in range(steps):
            obs = td["state"].to(device)  # [N, 4]
            td["action"] = model.act(obs, z.expand(obs.shape[0], -1)).to(td["state"].device)
            _, td = env.step_and_maybe_reset(td)
        end = td["state"][:, :2].to(device).mean(0)  # [2]
        out[name] = {
            "settle_x": float(end[0]),
            "settle_y": float(end[1]),
            "settle_error": float((end - torch.tensor([x, y], device=device)).norm()),
        }
    return out
