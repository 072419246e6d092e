"""Entry points of ``jepa-agents collect``, ``train-zero-shot`` and ``eval-zero-shot``.

Each takes ``argv`` (the arguments after the command) and returns an exit status. Config values are Hydra
overrides validated by :func:`jepa_agents.config.load.compose` (roots ``collect`` and ``zero_shot``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from jepa_agents.config.errors import ConfigError
from jepa_agents.config.load import compose, group_choices, validate
from jepa_agents.zero_shot.config import COLLECT, ZERO_SHOT

EVAL_KEYS = ("eval.", "device", "num_threads")


def _check_tasks(cfg) -> None:
    """An unknown ``eval.tasks`` entry (it lists the domain's tasks), an ``eval.reward`` that does not
    import and an ``eval.goal`` outside the arena are config errors, found before any work."""
    from jepa_agents.zero_shot.evaluate import check_tasks
    from jepa_agents.zero_shot.tasks import goal_task, load_reward_fn

    try:
        if list(cfg.eval.tasks) or not (cfg.eval.reward or list(cfg.eval.goal)):
            check_tasks(cfg.env.name, list(cfg.eval.tasks))
        if cfg.eval.reward:
            load_reward_fn(str(cfg.eval.reward))
        if list(cfg.eval.goal):
            goal_task(cfg.env.name, list(cfg.eval.goal), "state", ())
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _parser(prog: str, description: str, epilog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cfg", action="store_true", help="print the resolved config and exit")
    return parser


def collect_main(argv: list[str]) -> int:
    """``jepa-agents collect [overrides]``: write a reward-free dataset."""
    epilog = (
        f"explorers (zs_explorer=<preset>): {', '.join(group_choices('zs_explorer'))}\n\nexamples:\n"
        "  jepa-agents collect num_transitions=100000 dataset=datasets/maze_rnd\n"
        "  jepa-agents collect zs_explorer=random env.name=dmc/walker_walk num_envs=4\n"
        "  jepa-agents collect dataset=datasets/maze_rnd num_transitions=200000 append=true  # continue"
    )
    parser = _parser("jepa-agents collect", "Collect reward-free transitions into a dataset.", epilog)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides key=value")
    args = parser.parse_args(argv)
    cfg = compose(args.overrides, COLLECT)
    if args.cfg:
        print(OmegaConf.to_yaml(cfg))
        return 0
    from jepa_agents.zero_shot.collect import collect

    root = collect(cfg)
    print(f"dataset: {root}")
    return 0


def train_main(argv: list[str]) -> int:
    """``jepa-agents train-zero-shot dataset=<dir> [overrides]``: train TD-JEPA / FB, then evaluate."""
    epilog = (
        f"agents (zs_agent=<preset>): {', '.join(group_choices('zs_agent'))}\n"
        f"schedules (zs_train=<preset>): {', '.join(group_choices('zs_train'))}\n\nexamples:\n"
        "  jepa-agents train-zero-shot dataset=datasets/maze_rnd zs_agent=td_jepa_sigreg seed=1\n"
        "  jepa-agents train-zero-shot dataset=datasets/maze_rnd zs_agent=fb train.num_updates=50000\n"
        "  jepa-agents train-zero-shot resume=runs/<...>   # continue from the last checkpoint"
    )
    parser = _parser(
        "jepa-agents train-zero-shot", "Train a zero-shot agent on a reward-free dataset.", epilog
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides key=value")
    args = parser.parse_args(argv)
    cfg = compose(args.overrides, ZERO_SHOT)
    if args.cfg:
        print(OmegaConf.to_yaml(cfg))
        return 0
    if not cfg.dataset:
        raise ConfigError("dataset=<directory> is required (write one with `jepa-agents collect`).")
    _check_tasks(cfg)
    from jepa_agents.infra.distributed import context
    from jepa_agents.zero_shot.train_offline import train_zero_shot

    run_dir = train_zero_shot(cfg)
    if context().is_main:
        print(f"run directory: {run_dir}")
    return 0


def load_run_config(run_dir: Path) -> DictConfig:
    """The validated config of a ``train-zero-shot`` run directory; a missing config or an online run's
    directory raises :class:`ConfigError` saying what the directory is."""
    saved_path = Path(run_dir) / "config.yaml"
    if not saved_path.is_file():
        raise ConfigError(f"{saved_path} does not exist: is {run_dir} a train-zero-shot run directory?")
    raw = OmegaConf.load(saved_path)
    if "world_model" in raw or "dataset" not in raw:
        raise ConfigError(
            f"{run_dir} is an online training run (jepa-agents train), not a zero-shot one: "
            "eval-zero-shot evaluates runs of `jepa-agents train-zero-shot`; see an online run's scores "
            f"with `jepa-agents plot {run_dir}`."
        )
    return validate(raw, ZERO_SHOT)


def eval_main(argv: list[str]) -> int:
    """``jepa-agents eval-zero-shot RUN_DIR [eval.*/device/num_threads overrides]``: evaluate a run."""
    epilog = (
        "The model, dataset and domain come from RUN_DIR/config.yaml; overrides may set eval.*, device and\n"
        "num_threads only.\n\nexamples:\n"
        "  jepa-agents eval-zero-shot runs/<...>\n"
        "  jepa-agents eval-zero-shot runs/<...> eval.tasks=[reach_top_right] eval.episodes=20\n"
        "  jepa-agents eval-zero-shot runs/<...> eval.goal=[0.5,0.5]               # a goal of one's own\n"
        "  jepa-agents eval-zero-shot runs/<...> eval.reward=my_rewards:near_door  # a reward of one's own\n"
        "  jepa-agents eval-zero-shot runs/<...> --checkpoint runs/<...>/checkpoints/ckpt_000000010000.pt"
    )
    parser = _parser("jepa-agents eval-zero-shot", "Zero-shot evaluation of a trained run.", epilog)
    parser.add_argument("run_dir", type=Path, help="run directory of `jepa-agents train-zero-shot`")
    parser.add_argument("--checkpoint", type=Path, default=None, help="checkpoint file (default: the latest)")
    parser.add_argument("overrides", nargs="*", help="eval.*, device, num_threads overrides")
    args = parser.parse_intermixed_args(argv)  # `RUN --checkpoint F key=value` too
    bad = [o for o in args.overrides if not o.split("=", 1)[0].startswith(EVAL_KEYS)]
    if bad:
        raise ConfigError(
            f"eval-zero-shot takes only eval.*, device and num_threads overrides, got {bad}; the model comes "
            f"from {args.run_dir / 'config.yaml'}."
        )
    saved = load_run_config(args.run_dir)
    asked = compose(args.overrides, ZERO_SHOT)
    for override in args.overrides:
        key = override.split("=", 1)[0]
        OmegaConf.update(saved, key, OmegaConf.select(asked, key), merge=False)
    saved = validate(saved, ZERO_SHOT)  # the range checks again, on the merged settings
    _check_tasks(saved)
    if args.cfg:
        print(OmegaConf.to_yaml(saved))
        return 0
    from jepa_agents.zero_shot.evaluate import evaluate_run

    evaluate_run(saved, args.run_dir, args.checkpoint)
    return 0
