"""Atomic checkpoints: ``checkpoints/ckpt_<step>.pt`` written through a temp file and a rename.

A checkpoint is a dict with ``format``, ``step``, ``config_hash`` and whatever state the loop adds
(agent networks and optimizers, replay buffer, RNG states, env state, counters). A crash while writing
leaves only a ``.tmp`` file behind; the previous checkpoint stays loadable.

A data-parallel run writes, besides rank 0's checkpoint (shared state and rank 0's own), one shard per
other rank (``ckpt_<step>.rank<r>.pt``: its replay, environments, RNG streams) first; the main file is
renamed into place last, so a main checkpoint always has its shards.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

FORMAT = "jepa_agents.checkpoint.v1"
_NAME = re.compile(r"^ckpt_(\d{12})\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read, or that belongs to another config."""


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"ckpt_{step:012d}.pt"


def shard_path(checkpoint: Path, rank: int) -> Path:
    """Rank ``rank``'s own part of a data-parallel checkpoint: ``ckpt_<step>.rank<r>.pt`` beside it."""
    return checkpoint.with_name(f"{checkpoint.stem}.rank{rank}.pt")


def _atomic_save(payload: dict[str, Any], final: Path) -> None:
    tmp = final.with_name(final.name + ".tmp")
    with tmp.open("wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)


def save_shard(directory: Path, step: int, rank: int, state: dict[str, Any]) -> Path:
    """Write rank ``rank``'s part of the checkpoint of ``step`` atomically (before rank 0's main file)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = shard_path(checkpoint_path(directory, step), rank)
    _atomic_save({"format": FORMAT, "step": step, "rank": rank, **state}, final)
    return final


def load_shard(checkpoint: Path, rank: int) -> dict[str, Any]:
    """Rank ``rank``'s part of ``checkpoint`` (missing or damaged: :class:`CheckpointError`)."""
    path = shard_path(checkpoint, rank)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: {checkpoint} was written by ranks that this launch lacks")
    payload = load_checkpoint(path)
    if payload.get("rank") != rank or payload["step"] != checkpoint_step(checkpoint):
        raise CheckpointError(f"{path} does not belong to rank {rank} of {checkpoint}")
    return payload


def list_checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first (temporary files are not checkpoints)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _NAME.match(p.name))


def save_checkpoint(directory: Path, step: int, state: dict[str, Any], config_hash: str, keep: int) -> Path:
    """Write ``state`` atomically as the checkpoint of ``step``; keep the ``keep`` most recent ones."""
    directory.mkdir(parents=True, exist_ok=True)
    final = checkpoint_path(directory, step)
    _atomic_save({"format": FORMAT, "step": step, "config_hash": config_hash, **state}, final)
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink()
        for shard in directory.glob(f"{old.stem}.rank*.pt"):
            shard.unlink()
    return final


def load_checkpoint(path: Path, config_hash: str | None = None) -> dict[str, Any]:
    """Load and check one checkpoint; a missing file or any damage raises :class:`CheckpointError` naming
    the file."""
    if not Path(path).is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist; name a file ckpt_<step>.pt of the run.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for damaged files
        raise CheckpointError(
            f"Checkpoint {path} is truncated or corrupt ({type(err).__name__}: {err}). Delete it to resume "
            "from the previous checkpoint; nothing was modified."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a jepa_agents checkpoint (format {FORMAT} expected).")
    if config_hash is not None and payload["config_hash"] != config_hash:
        raise CheckpointError(
            f"Checkpoint {path} was written by a run with another config (hash {payload['config_hash']} "
            f"!= {config_hash}); resume it with its own config.yaml."
        )
    return payload


def checkpoint_step(path: Path) -> int:
    """The env step in a checkpoint's file name (``ckpt_<step>.pt``)."""
    match = _NAME.match(Path(path).name)
    if match is None:
        raise CheckpointError(f"{path} is not named like a checkpoint (ckpt_<12 digits>.pt)")
    return int(match.group(1))


def finished_step(directory: Path, total: int) -> int | None:
    """The step of the latest checkpoint in ``directory`` when it reached ``total`` (a complete run),
    else None."""
    last = latest_checkpoint(directory)
    step = checkpoint_step(last) if last is not None else None
    return step if step is not None and step >= total else None


def latest_checkpoint(directory: Path) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1] if found else None
