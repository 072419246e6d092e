"""Name -> environment registry.

Names are ``"<family>/<task>"``. Each family lives in its own module that defines

* ``NAMES: tuple[str, ...]`` -- the task names of the family (without the family prefix);
* ``make(task, num_envs, seed, device, **options) -> torchrl.envs.EnvBase``;
* optionally ``relabel(task, physics) -> rewards`` -- rewards recomputed from physics states.

Family modules must be cheap to import (heavy imports such as ``dm_control`` or ``ale_py`` happen
inside ``make``), so that listing names never needs the optional simulators.

Every environment follows one TensorDict contract (batch size ``[num_envs]``):

* ``pixels``: uint8 ``[N, C, H, W]`` (frames stacked along C) when rendering is on;
* ``state``: float32 ``[N, S]`` proprioceptive/physical state, when available;
* ``physics``: float32 ``[N, P]`` raw simulator state, enough for ``relabel``, when available;
* ``reward``: float32 ``[N, 1]``; ``done``, ``terminated``, ``truncated``: bool ``[N, 1]``.

Resets follow torchrl: after a step whose ``done`` is set, ``env.reset(td)`` with a boolean
``_reset`` mask ``[N, 1]`` resets only those copies (``EnvBase.step_and_maybe_reset`` does it).
"""

from __future__ import annotations

import difflib
import importlib
from types import ModuleType

import torch

_FAMILIES: dict[str, str] = {
    "torch": "envs.torch_control",
    "dmc": "envs.dmc",
    "atari": "envs.atari",
    "minatar": "envs.minatar",
}


def _family(name: str) -> tuple[ModuleType, str]:
    if "/" not in name:
        raise ValueError(_unknown_message(name))
    family, task = name.split("/", 1)
    if family not in _FAMILIES:
        raise ValueError(_unknown_message(name))
    module = importlib.import_module(_FAMILIES[family])
    if task not in module.NAMES:
        raise ValueError(_unknown_message(name))
    return module, task


def list_envs(family: str | None = None) -> list[str]:
    """All registered names (``family/task``), sorted; only those of ``family`` when given."""
    names = []
    for fam, path in _FAMILIES.items():
        if family is not None and fam != family:
            continue
        try:
            module = importlib.import_module(path)
        except ModuleNotFoundError as err:  # a family whose module is not written yet
            if err.name != path:
                raise
            continue
        names.extend(f"{fam}/{task}" for task in module.NAMES)
    return sorted(names)


def _unknown_message(name: str) -> str:
    names = list_envs()
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.4)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    families = ", ".join(sorted(_FAMILIES))
    return (
        f"Unknown environment {name!r}.{hint} Names are '<family>/<task>' with family in "
        f"{{{families}}}; `jepa-agents envs` lists all {len(names)} of them."
    )


def make(name: str, num_envs: int = 1, seed: int = 0, device: str | torch.device = "cpu", **options):
    """Build ``num_envs`` batched copies of environment ``name`` on ``device``.

    ``options`` are family-specific (``action_repeat``, ``image_size``, ``frame_stack``,
    ``from_pixels``, ...); an option the family does not know is an error, not ignored.
    """
    if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
        raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
    module, task = _family(name)
    return module.make(task, num_envs=num_envs, seed=seed, device=torch.device(device), **options)


def default_action_repeat(name: str) -> int:
    """The action repeat a training config uses for ``name`` when it does not set one (per domain, as
    in the PlaNet/DrQ benchmark for DMC; the protocol's frameskip for Atari)."""
    module, task = _family(name)
    return int(module.default_action_repeat(task))


def relabel(name: str, physics: torch.Tensor, task: str | None = None) -> torch.Tensor:
    """Rewards of ``task`` (default: the env's own task) for physics states ``[..., P]`` -> ``[...]``."""
    module, env_task = _family(name)
    if not hasattr(module, "relabel"):
        raise ValueError(f"Environment family of {name!r} does not support relabeling.")
    return module.relabel(task or env_task, physics)
