"""Step schedules: does an event with period ``every`` fall between two counter values?"""

from __future__ import annotations


def crossed(before: int, after: int, every: int) -> bool:
    """``True`` when a multiple of ``every`` lies in ``(before, after]`` (``every <= 0``: never).

    Counters advance in chunks (``N`` copies x action repeat, or a rollout), so a schedule fires once at
    the first counter value at or past each multiple of its period."""
    return every > 0 and before // every != after // every
