"""``argparse`` types for counts, so a benchmark given ``--threads 0`` is argparse's one-line usage error
(exit 2) instead of a traceback from deep inside torch."""

from __future__ import annotations

import argparse


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    parse.__name__ = f"int>={low}"
    return parse


positive_int = _int_at_least(1)
"""An integer >= 1 (threads, updates, repeats, copies, jobs)."""

nonnegative_int = _int_at_least(0)
"""An integer >= 0 (warm-up steps, optional stages where 0 skips them)."""
