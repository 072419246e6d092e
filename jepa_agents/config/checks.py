"""The one range-check helper of the config schemas (called from their ``__post_init__``)."""

from __future__ import annotations

from typing import Any


def check_ranges(section: str, checks: dict[str, bool], obj: Any) -> None:
    """Raise ``ValueError("<section>.<key>=<value> is out of range")`` for the first failed check;
    ``checks`` maps field names of ``obj`` to whether their value is in range."""
    for key, ok in checks.items():
        if not ok:
            raise ValueError(f"{section}.{key}={getattr(obj, key)!r} is out of range")
