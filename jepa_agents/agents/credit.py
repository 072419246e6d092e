"""The update-to-data schedule of the off-policy learners: how many gradient updates are due now."""

from __future__ import annotations


def due_updates(counters: dict, step: int, num_envs: int, action_repeat: int, utd: float, every: int) -> int:
    """Credit ``utd`` updates per transition collected since the last call and return how many are due.

    ``counters`` (``step``: the env-frame counter at the last call, -1 before the first; ``calls``;
    ``credit``: fractional updates carried over) is updated in place; ``step`` is the env-frame counter
    now, ``num_envs`` the transitions of the first call. The whole credit is paid every ``every`` calls.
    """
    new = num_envs if counters["step"] < 0 else (step - counters["step"]) // action_repeat
    counters["step"], counters["calls"] = step, counters["calls"] + 1
    counters["credit"] += utd * new
    if counters["calls"] % every:
        return 0
    count = int(counters["credit"])
    counters["credit"] -= count
    return count
