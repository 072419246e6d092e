"""Reward-free offline datasets on disk: memory-mapped TensorDicts, one directory per episode.

Layout::

    <dataset>/
      meta.json                 format, env name, observation spec, action/physics sizes, counts, info
      episodes/ep_000000/       one episode of T transitions (TensorDict.memmap, batch [T])
        observation/<key>.memmap     obs key (``state`` float32 [T, S] and/or ``pixels`` uint8 [T, C, H, W])
        physics.memmap               float32 [T, P] simulator state of s (for relabeling)
        action.memmap                float32 [T, A]
        next/observation/<key>.memmap, next/physics.memmap
        next/terminated.memmap, next/truncated.memmap   bool [T, 1] (episode boundaries)
        episode.json                 {length, files: {relative path: [bytes, crc32]}}
        meta.json (written by tensordict)

Writing is atomic per episode (a ``.tmp`` directory renamed into place), so a crash leaves complete
episodes only; ``DatasetWriter(append=True)`` continues the numbering. Loading sorts episode names (never
filesystem order), checks their numbering has no gap, and checks every file's size (truncation) and
CRC-32 (corruption) against ``episode.json``; a bad file raises :class:`DatasetError` naming it.
Rewards are never stored: tasks are relabeled from ``next/physics`` (``envs.relabel``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDict

from jepa_agents.infra.run_dir import atomic_write_text

FORMAT = "jepa_agents.offline.v1"
_EPISODE = re.compile(r"^ep_(\d{6})$")
_CHUNK = 1 << 22


class DatasetError(ValueError):
    """A dataset that is missing, damaged, or does not match what reads it."""


@dataclass
class DatasetMeta:
    """What ``meta.json`` holds."""

    env: str
    """Registry name of the environment the data comes from."""
    obs_spec: dict[str, dict[str, Any]]
    """Observation key -> ``{"shape": [...], "dtype": "float32" | "uint8"}`` (no batch dim)."""
    action_dim: int
    """Action size ``A``."""
    physics_dim: int
    """Physics state size ``P``."""
    episodes: int = 0
    """Complete episodes on disk."""
    transitions: int = 0
    """Transitions over all episodes."""
    info: dict[str, Any] = field(default_factory=dict)
    """Free-form collection info (explorer, seed, ...)."""
    format: str = FORMAT
    """Format tag of this layout."""


def _crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.memmap"))


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def read_meta(root: Path) -> DatasetMeta:
    """The dataset's ``meta.json`` (checked: present, complete, this format) without opening episodes."""
    path = Path(root) / "meta.json"
    if not path.is_file():
        raise DatasetError(
            f"{root} is not a dataset: {path} does not exist (collect one with `jepa-agents collect`)."
        )
    try:
        raw = json.loads(path.read_text())
        meta = DatasetMeta(**raw)
    except (json.JSONDecodeError, TypeError) as err:
        raise DatasetError(f"{path} is truncated or corrupt ({type(err).__name__}: {err}).") from None
    if meta.format != FORMAT:
        raise DatasetError(f"{path}: format {meta.format!r}, this version reads {FORMAT!r}.")
    return meta


def _episode_dirs(root: Path) -> list[Path]:
    """Complete episode directories in numeric order; a gap in the numbering is an error."""
    base = root / "episodes"
    found = sorted(p for p in base.iterdir() if _EPISODE.match(p.name)) if base.is_dir() else []
    for i, path in enumerate(found):
        if int(_EPISODE.match(path.name).group(1)) != i:
            raise DatasetError(f"{root}: episode ep_{i:06d} is missing (next on disk: {path.name}).")
    return found


def _check_episode(path: Path, checksum: bool) -> int:
    """Verify sizes (and CRC-32) of an episode's files against ``episode.json``; return its length."""
    manifest_path = path / "episode.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DatasetError(
            f"{manifest_path} is missing, truncated or corrupt ({type(err).__name__})."
        ) from None
    for rel, (size, crc) in manifest["files"].items():
        file = path / rel
        if not file.is_file():
            raise DatasetError(f"{file} is missing from the dataset.")
        actual = file.stat().st_size
        if actual != size:
            raise DatasetError(f"{file} is truncated: {actual} bytes on disk, {size} expected.")
        if checksum and _crc32(file) != crc:
            raise DatasetError(f"{file} is corrupt: its CRC-32 does not match the one written with it.")
    return int(manifest["length"])


def spec_of(episode: TensorDict) -> dict[str, dict[str, Any]]:
    """Observation spec ``{key: {"shape", "dtype"}}`` of an episode TensorDict ``[T]``."""
    return {
        key: {"shape": list(value.shape[1:]), "dtype": _dtype_name(value.dtype)}
        for key, value in sorted(episode["observation"].items())
    }


class DatasetWriter:
    """Append episodes to a dataset directory.

    ``add_episode(td)`` takes a TensorDict with batch ``[T]`` holding ``observation`` (sub-TensorDict of
    observation keys), ``physics`` ``[T, P]``, ``action`` ``[T, A]`` and ``next`` with ``observation``,
    ``physics``, ``terminated`` and ``truncated`` (bool ``[T, 1]``).
    """

    def __init__(self, root: str | Path, meta: DatasetMeta, append: bool = False):
        self.root = Path(root)
        if (self.root / "meta.json").exists():
            if not append:
                raise DatasetError(
                    f"{self.root} already holds a dataset. Pass append=true to add episodes to it, or choose "
                    "another dataset path."
                )
            old = read_meta(self.root)
            for name in ("env", "obs_spec", "action_dim", "physics_dim"):
                if getattr(old, name) != getattr(meta, name):
                    raise DatasetError(
                        f"Cannot append to {self.root}: its {name} is {getattr(old, name)!r}, "
                        f"the new data has {getattr(meta, name)!r}."
                    )
            meta.info = old.info
        (self.root / "episodes").mkdir(parents=True, exist_ok=True)
        for stale in (self.root / "episodes").glob("*.tmp"):  # a write killed before its rename
            shutil.rmtree(stale)
        dirs = _episode_dirs(self.root)
        meta.episodes = len(dirs)
        meta.transitions = sum(_check_episode(d, checksum=False) for d in dirs)
        self.meta = meta
        self._write_meta()

    def _write_meta(self) -> None:
        atomic_write_text(self.root / "meta.json", json.dumps(asdict(self.meta), indent=1))

    def _validate(self, td: TensorDict) -> None:
        keys = ["action", "physics", ("next", "physics"), ("next", "terminated"), ("next", "truncated")]
        missing = [k for k in keys if k not in td.keys(include_nested=True)]
        if missing or "observation" not in td.keys() or ("next", "observation") not in td.keys(True):
            raise DatasetError(
                f"episode lacks keys {missing or ['observation']}; it has {sorted(td.keys(True))}"
            )
        if td.batch_dims != 1 or td.batch_size[0] < 1:
            raise DatasetError(
                f"an episode is a TensorDict with batch [T >= 1], got batch {list(td.batch_size)}"
            )
        if spec_of(td) != self.meta.obs_spec or spec_of(td["next"]) != self.meta.obs_spec:
            raise DatasetError(f"episode observation spec {spec_of(td)} != dataset spec {self.meta.obs_spec}")
        if td["action"].shape[-1] != self.meta.action_dim or td["physics"].shape[-1] != self.meta.physics_dim:
            raise DatasetError(
                f"episode action/physics sizes {td['action'].shape[-1]}/{td['physics'].shape[-1]} != dataset "
                f"{self.meta.action_dim}/{self.meta.physics_dim}"
            )

    def add_episode(self, td: TensorDict) -> Path:
        """Write one episode atomically as ``episodes/ep_<index>``; return its directory."""
        self._validate(td)
        final = self.root / "episodes" / f"ep_{self.meta.episodes:06d}"
        tmp = final.with_name(final.name + ".tmp")
        td.detach().cpu().memmap(prefix=str(tmp), num_threads=0)
        files = {str(p.relative_to(tmp)): [p.stat().st_size, _crc32(p)] for p in _files(tmp)}
        atomic_write_text(tmp / "episode.json", json.dumps({"length": td.batch_size[0], "files": files}))
        os.replace(tmp, final)
        self.meta.episodes += 1
        self.meta.transitions += td.batch_size[0]
        self._write_meta()
        return final


class OfflineDataset:
    """A loaded dataset: ``data`` is one TensorDict ``[N]`` of all transitions on ``device`` (episode order,
    plus ``episode`` long ``[N]``); :meth:`sample` draws uniform random transition batches."""

    def __init__(self, root: Path, meta: DatasetMeta, data: TensorDict):
        self.root, self.meta, self.data = root, meta, data

    def __len__(self) -> int:
        return self.data.batch_size[0]

    @property
    def device(self) -> torch.device:
        return self.data.device

    def sample(
        self, batch_size: int, generator: torch.Generator | None = None, shard: tuple[int, int] = (0, 1)
    ) -> TensorDict:
        """``batch_size`` transitions drawn uniformly with replacement -> TensorDict ``[batch_size]``;
        ``shard = (r, W)`` draws from transitions ``r, r + W, r + 2W, ...`` only (rank ``r``'s part)."""
        rank, world = shard
        if not 0 <= rank < world or world > len(self):
            raise ValueError(f"shard {shard} of a dataset of {len(self)} transitions")
        idx = torch.randint((len(self) - rank + world - 1) // world, (batch_size,), generator=generator)
        return self.data[(rank + world * idx).to(self.device)]

    def check_obs(self, key: str, shape: tuple[int, ...] | None = None) -> None:
        """Raise :class:`DatasetError` unless observation ``key`` exists (with ``shape`` when given)."""
        spec = self.meta.obs_spec
        if key not in spec:
            raise DatasetError(
                f"dataset {self.root} has no observation {key!r} (it has {sorted(spec)}); "
                "collect from pixels with env.from_pixels=true or train on the key it has."
            )
        if shape is not None and tuple(spec[key]["shape"]) != tuple(shape):
            raise DatasetError(
                f"dataset {self.root} has {key} of shape {spec[key]['shape']}, "
                f"the model expects {list(shape)}."
            )


def load_dataset(
    root: str | Path, device: str | torch.device = "cpu", checksum: bool = True
) -> OfflineDataset:
    """Load every episode of ``root`` (sorted by index) into one TensorDict on ``device``.

    Raises :class:`DatasetError` for a missing/empty dataset, a gap in the episodes, a truncated or corrupt
    file (named), or counts that disagree with ``meta.json``.
    """
    root = Path(root)
    meta = read_meta(root)
    dirs = _episode_dirs(root)
    if not dirs:
        raise DatasetError(f"dataset {root} has no complete episode; collect data into it first.")
    if len(dirs) != meta.episodes:
        raise DatasetError(
            f"{root}/meta.json lists {meta.episodes} episodes but {len(dirs)} are on disk; reopen it with "
            "`jepa-agents collect ... append=true` to repair the counts."
        )
    episodes = []
    for i, path in enumerate(dirs):
        length = _check_episode(path, checksum)
        try:
            td = TensorDict.load_memmap(path)
        except Exception as err:  # tensordict raises many types for damaged metadata
            raise DatasetError(f"episode {path} cannot be read ({type(err).__name__}: {err}).") from None
        if td.batch_size[0] != length:
            raise DatasetError(
                f"episode {path} has {td.batch_size[0]} transitions, episode.json says {length}."
            )
        td = td.clone()  # out of the memory map
        td["episode"] = torch.full((length,), i, dtype=torch.long)
        episodes.append(td)
    data = torch.cat(episodes).to(device)
    return OfflineDataset(root, meta, data)
