"""Compose a run's config with Hydra and validate it against the dataclass schemas.

``compose(overrides, root)`` returns a read-only ``DictConfig`` or raises :class:`ConfigError` with one
message that names the offending key and the valid choices. Nothing runs before this succeeds. The
schema comes from the caller (a :class:`RootSchema`: ``jepa_agents.train.config.TRAIN``,
``jepa_agents.zero_shot.config.COLLECT`` / ``ZERO_SHOT``), so this module imports nothing above it.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from jepa_agents.config.errors import ConfigError

# Keys that may differ between a run and its resumption (they do not change what is computed).
RUNTIME_KEYS = ("resume", "run_dir", "device", "compile", "logging.progress_bar", "distributed")


@dataclass(frozen=True)
class RootSchema:
    """A root config (``configs/<name>.yaml``) and the builder of its typed schema from the raw
    composed config (the schema may depend on it, e.g. the ``agent`` section on ``agent.name``)."""

    name: str
    build: Callable[[DictConfig], DictConfig]


def config_dir() -> Path:
    """The ``configs/`` directory of the repository (the package is installed in editable mode)."""
    path = Path(__file__).resolve().parents[2] / "configs"
    if not (path / "train.yaml").is_file():
        raise ConfigError(
            f"Config directory not found at {path}. Install jepa_agents from its repository with "
            "`pip install -e .` so that configs/ ships with it."
        )
    return path


def config_groups() -> list[str]:
    """Config groups: the sub-directories of ``configs/`` (``env``, ``agent``, ``train``, ...)."""
    return sorted(p.name for p in config_dir().iterdir() if p.is_dir())


def group_choices(group: str) -> list[str]:
    """Preset names available for a config group (``env`` -> ``['dmc/cartpole_swingup', ...]``)."""
    root = config_dir() / group
    names = (str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))
    return sorted(n for n in names if not Path(n).name.startswith("_"))  # _family presets are internal


def _env_by_name(overrides: list[str]) -> list[str]:
    """``env=<family>/<task>`` for a registered environment without a preset file becomes the family's
    preset (``configs/env/<family>/_family.yaml``) with ``env.name=<family>/<task>``; the action repeat
    then follows the task (see :func:`_fill_env_defaults`). Other overrides are returned unchanged."""
    import envs

    out = []
    for line in overrides:
        key, _, value = line.partition("=")
        if key == "env" and value and value not in group_choices("env") and "/" in value:
            family = value.split("/", 1)[0]
            if value in envs.list_envs() and (config_dir() / "env" / family / "_family.yaml").is_file():
                out += [f"env={family}/_family", f"++env.name={value}"]
                continue
            if family in {name.split("/", 1)[0] for name in envs.list_envs()}:
                try:  # a misspelt task of a known family: the registry's message with close matches
                    envs.default_action_repeat(value)
                except ValueError as err:
                    raise ConfigError(f"env={value}: {err}") from None
        out.append(line)
    return out


def _fill_env_defaults(cfg: DictConfig) -> None:
    """Check ``env.name`` against the registry (one line with close matches) and resolve an unset
    ``env.action_repeat`` to the task's default, so the saved config states what ran."""
    import envs

    if "env" not in cfg or "name" not in cfg.env:
        return
    try:
        default_repeat = envs.default_action_repeat(str(cfg.env.name))
    except ValueError as err:
        raise ConfigError(f"env.name: {err}") from None
    if "action_repeat" in cfg.env and cfg.env.action_repeat is None:
        cfg.env.action_repeat = default_repeat


def _valid_keys(node: DictConfig) -> str:
    return ", ".join(sorted(str(k) for k in node.keys()))


def _check_key(schema: DictConfig, override: Override) -> None:
    """Raise if ``override`` names a key that the schema does not have."""
    node = schema
    parts = override.key_or_group.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, DictConfig):
            break
        if OmegaConf.get_type(node) is dict:  # free-form mapping such as env.options
            return
        if part not in node:
            where = ".".join(parts[:depth]) or "the root config"
            raise ConfigError(
                f"Unknown config key {override.key_or_group!r}: {where} has no key {part!r}. "
                f"Valid keys of {where}: {_valid_keys(node)}."
            )
        node = node._get_node(part)


def parse_overrides(overrides: list[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise ConfigError(f"Malformed override: {err}") from None


def expand_sweeps(overrides: list[str]) -> list[list[str]]:
    """Cartesian product of sweep overrides: ``['seed=0,1', 'x=1']`` -> ``[['seed=0','x=1'], ...]``."""
    choices = []
    for ov in parse_overrides(overrides):
        key = ov.get_key_element()
        if ov.is_sweep_override():
            choices.append([f"{key}={v}" for v in ov.sweep_string_iterator()])
        else:
            choices.append([f"{key}={ov.get_value_element_as_str()}"])
    return [list(combo) for combo in itertools.product(*choices)]


@contextlib.contextmanager
def _own_global_hydra():
    """Compose with our own Hydra instance, also inside a job that Hydra's launcher runs (whose instance is
    set aside and put back)."""
    global_hydra = GlobalHydra.instance()
    outer = global_hydra.hydra if global_hydra.is_initialized() else None
    global_hydra.clear()
    try:
        yield
    finally:
        GlobalHydra.instance().clear()
        if outer is not None:
            GlobalHydra.instance().initialize(outer)


def _hydra(config_name: str, overrides: list[str]) -> DictConfig:
    try:
        with _own_global_hydra(), initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            return hydra_compose(config_name=config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        message = str(err).strip()
        for group in config_groups():
            if f"'{group}/" in message or f"in '{group}'" in message:
                message += f"\nValid choices for {group}: {', '.join(group_choices(group))}"
                break
        raise ConfigError(message) from None


def validate(raw: DictConfig, root: RootSchema) -> DictConfig:
    """Merge ``raw`` into the typed schema: unknown keys and wrong types raise :class:`ConfigError`."""
    schema = root.build(raw)
    try:
        merged = OmegaConf.merge(schema, raw)
        OmegaConf.resolve(merged)
    except ConfigKeyError as err:
        key = err.full_key
        parent = schema
        *head, last = key.split(".")
        for part in head:
            parent = parent[part]
        raise ConfigError(f"Unknown config key {key!r}. Valid keys there: {_valid_keys(parent)}.") from None
    except ValidationError as err:
        first = str(err).splitlines()[0]
        raise ConfigError(f"Wrong type for config key {err.full_key!r}: {first}") from None
    try:  # instantiate the dataclasses once so that their own range checks (__post_init__) run
        OmegaConf.to_object(merged)
    except ValueError as err:
        raise ConfigError(f"Invalid config value: {err}") from None
    return merged


def _default_run_dir(cfg: DictConfig) -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return str(Path("runs") / cfg.env.name.replace("/", "-") / cfg.agent.name / f"{stamp}_seed{cfg.seed}")


def config_hash(cfg: DictConfig) -> str:
    """Hash of everything that determines what a run computes (runtime-only keys excluded)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    for key in RUNTIME_KEYS:
        *head, last = key.split(".")
        node = data
        for part in head:
            node = node[part]
        node.pop(last, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def saved_config_hash(run_dir: str | Path) -> str:
    """The hash that a run directory's checkpoints carry: :func:`config_hash` of its ``config.yaml`` as
    saved, with the keys of the version that started the run. A setting added to the schema later (with a
    default that keeps the old computation) is filled in when the run is resumed but does not orphan its
    checkpoints; a checkpoint of another run still fails the check."""
    return config_hash(OmegaConf.load(Path(run_dir) / "config.yaml"))


def _differences(a: DictConfig, b: DictConfig, keys: list[str]) -> list[str]:
    out = []
    for key in keys:
        va, vb = OmegaConf.select(a, key), OmegaConf.select(b, key)
        va = OmegaConf.to_container(va) if isinstance(va, DictConfig) else va
        vb = OmegaConf.to_container(vb) if isinstance(vb, DictConfig) else vb
        if va != vb:
            out.append(f"{key}: run has {vb!r}, command line asks for {va!r}")
    return out


def _is_runtime(key: str) -> bool:
    """``key`` is a runtime key or lies under one (``distributed.timeout_s``)."""
    return any(key == k or key.startswith(k + ".") for k in RUNTIME_KEYS)


def _resume_config(cfg: DictConfig, parsed: list[Override], root: RootSchema) -> DictConfig:
    """The saved config of the run being resumed; explicit overrides must agree with it."""
    resume = str(cfg.resume)
    run_dir = Path(cfg.run_dir if resume.lower() == "true" else resume)
    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        raise ConfigError(f"Cannot resume: {saved_path} does not exist (is {run_dir} a run directory?)")
    saved = validate(OmegaConf.load(saved_path), root)
    asked = []
    for ov in parsed:
        key = ov.key_or_group
        if _is_runtime(key):
            continue
        asked.append(key)
    diffs = _differences(cfg, saved, asked)
    if diffs:
        raise ConfigError(
            f"Cannot resume {run_dir}: its config differs from the command line:\n  "
            + "\n  ".join(diffs)
            + "\nStart a new run (another run_dir) or drop these overrides."
        )
    # runtime settings: the saved ones, unless the command line names them (then listed)
    explicit = {ov.key_or_group for ov in parsed}
    runtime = {k: OmegaConf.select(cfg, k) for k in sorted(explicit) if _is_runtime(k)}
    for key, value in runtime.items():
        before = OmegaConf.select(saved, key)
        if key not in ("run_dir", "resume") and before != value:
            print(f"resume: {key} = {value!r} (the run had {before!r})")
    runtime["run_dir"], runtime["resume"] = str(run_dir), "true"
    for key, value in runtime.items():
        OmegaConf.update(saved, key, value, merge=False)
    return saved


def compose(overrides: list[str] | None, root: RootSchema) -> DictConfig:
    """Compose ``configs/<root.name>.yaml`` with Hydra ``overrides`` and validate it against ``root``."""
    config_name = root.name
    overrides = list(overrides or [])
    parsed = parse_overrides(overrides)
    for ov in parsed:
        if ov.is_sweep_override():
            raise ConfigError(f"{ov.input_line!r} is a sweep: pass -m/--multirun to run one job per value.")
    groups = config_groups()
    overrides = _env_by_name(overrides)
    parsed = parse_overrides(overrides)
    group_overrides = [ov.input_line for ov in parsed if ov.key_or_group in groups]
    base = _hydra(config_name, group_overrides)
    schema = root.build(base)
    for ov in parsed:
        if ov.key_or_group not in groups and ov.key_or_group != "agent.name":
            _check_key(schema, ov)
    # Keys are checked against the schema above, so a schema key that a preset YAML leaves at its
    # default may be set too: Hydra's "add or override" form (++key=value).
    forced = [
        ov.input_line if ov.key_or_group in groups or ov.input_line[0] in "+~" else f"++{ov.input_line}"
        for ov in parsed
    ]
    cfg = validate(_hydra(config_name, forced), root)
    _fill_env_defaults(cfg)
    if cfg.get("resume"):
        cfg = _resume_config(cfg, parsed, root)
    elif "run_dir" in cfg and not cfg.run_dir:
        cfg.run_dir = _default_run_dir(cfg)
    OmegaConf.set_readonly(cfg, True)
    return cfg
