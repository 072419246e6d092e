"""``jepa-agents <command>``: the command-line entry point.

Commands that take a config (``train``) accept Hydra overrides (``env=dmc/cartpole_swingup
agent.lr=3e-4 seed=1``) and ``-m`` for sweeps (``-m seed=0,1,2``: one run per value, through Hydra's
launchers: ``hydra/launcher=joblib`` runs them in parallel processes; see ``jepa_agents/train/sweep.py``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import runpy
import sys
from pathlib import Path

from jepa_agents import __version__
from jepa_agents.user_errors import user_errors

BENCHMARKS = {
    "envs": ["bench_envs.py", "bench_torch_envs.py"],
    "torch-envs": ["bench_torch_envs.py"],
    "world-model": ["bench_world_model.py"],
    "ppo-cartpole": ["bench_ppo_cartpole.py"],
    "update": ["bench_update.py"],
    "minatar": ["bench_minatar.py"],
}


def _groups_help() -> str:
    from jepa_agents.config.load import group_choices

    lines = ["config groups (choose with <group>=<preset>):"]
    for group in ("env", "world_model", "agent", "train", "eval", "logging"):
        lines.append(f"  {group:12s} {', '.join(group_choices(group))}")
    lines += [
        "",
        "examples:",
        "  jepa-agents train                                   # SAC+JEPA on torch/cartpole_swingup (pixels)",
        "  jepa-agents train env=dmc/cartpole_swingup agent.lr_critic=3e-4 seed=1",
        "  jepa-agents train env=dmc/reacher_easy              # any task by name (its own action repeat)",
        "  jepa-agents train -m seed=0,1,2                     # one run per seed, one after another",
        "  jepa-agents train -m seed=0,1 run_dir=sweeps/s hydra/launcher=joblib hydra.launcher.n_jobs=2",
        "  jepa-agents train resume=runs/<...>                 # continue a run from its last checkpoint",
        "  jepa-agents train --cfg env=torch/cartpole_balance  # print the resolved config and exit",
    ]
    return "\n".join(lines)


def _cmd_train(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from jepa_agents.train import sweep
    from jepa_agents.train.config import compose
    from jepa_agents.train.run import train

    if not args.multirun:
        cfg = compose(args.overrides)
        if args.cfg:
            print(OmegaConf.to_yaml(cfg))
            return 0
        train(cfg)
        return 0
    root, jobs, hydra_overrides = sweep.plan(args.overrides)  # every job validated before any runs
    if args.cfg:
        for job in jobs:
            print(OmegaConf.to_yaml(compose(job)))
        return 0
    return sweep.launch(root, jobs, hydra_overrides)


def _scripts_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "scripts"


def _cmd_bench(args: argparse.Namespace) -> int:
    for script in BENCHMARKS[args.name]:
        path = _scripts_dir() / script
        if not path.is_file():
            print(f"benchmark script {path} is missing (install from the repository with pip install -e .)")
            return 2
        sys.argv = [str(path), *args.args]
        runpy.run_path(str(path), run_name="__main__")
    return 0


def _cmd_envs(args: argparse.Namespace) -> int:
    import envs

    for name in envs.list_envs(args.family):
        print(name)
    return 0


# command -> (help, "module:function" taking the remaining arguments and returning an exit code)
DELEGATED = {
    "collect": (
        "collect a reward-free dataset (random or RND exploration)",
        "jepa_agents.zero_shot.cli:collect_main",
    ),
    "train-zero-shot": (
        "train TD-JEPA or FB offline on a reward-free dataset",
        "jepa_agents.zero_shot.cli:train_main",
    ),
    "eval-zero-shot": (
        "infer task vectors from rewards and evaluate a zero-shot run",
        "jepa_agents.zero_shot.cli:eval_main",
    ),
    "plot": ("learning curves, aggregate statistics and result tables", "jepa_agents.analysis.plot_cli:main"),
}


# Commands that import the simulators (torchrl imports MuJoCo, which reads MUJOCO_GL at import time).
NEEDS_SIMULATORS = ("train", "collect", "train-zero-shot", "eval-zero-shot", "bench", "envs")


def _check_gl() -> None:
    """Default ``MUJOCO_GL`` to ``egl`` (headless) and turn a broken backend into one clear error."""
    from envs.dmc_tasks import gl_error

    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        import mujoco.rendering.classic.gl_context  # noqa: F401  (what torchrl triggers)
    except (RuntimeError, ImportError, AttributeError, OSError) as err:
        raise gl_error(err) from None


def _delegate(command: str, argv: list[str]) -> int:
    module, function = DELEGATED[command][1].split(":")
    return getattr(importlib.import_module(module), function)(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jepa-agents",
        description="Reinforcement learning with JEPA world models regularized by SIGReg.",
    )
    parser.add_argument("--version", action="version", version=f"jepa-agents {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")

    fmt = argparse.RawDescriptionHelpFormatter
    train = sub.add_parser(
        "train",
        help="train an agent (Hydra overrides: key=value)",
        formatter_class=fmt,
        description="Train an agent; writes a run directory (config.yaml, TensorBoard events, scalars.csv, "
        "checkpoints/, videos/, curve.png).",
        epilog=_groups_help(),
    )
    train.add_argument(
        "-m",
        "--multirun",
        action="store_true",
        help="a sweep (seed=0,1,2): one run per job under run_dir, by Hydra's launcher (hydra/launcher=...)",
    )
    train.add_argument("--cfg", action="store_true", help="print the resolved config(s) and exit")
    train.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. env=dmc/walker_walk seed=1")
    train.set_defaults(func=_cmd_train)

    # Commands that own their argument parsing (and --help): the rest of the line goes to them.
    for name, (helptext, _) in DELEGATED.items():
        delegated = sub.add_parser(name, help=helptext, add_help=False)
        delegated.add_argument("args", nargs=argparse.REMAINDER)

    bench = sub.add_parser(
        "bench",
        help="benchmarks (scripts/bench_*.py)",
        add_help=True,
        description="Run a benchmark script; arguments after the name go to the script (try `-- --help`).",
    )
    bench.add_argument("name", choices=sorted(BENCHMARKS))
    bench.add_argument("args", nargs=argparse.REMAINDER)
    bench.set_defaults(func=_cmd_bench)

    env_list = sub.add_parser("envs", help="list registered environments")
    env_list.add_argument("family", nargs="?", choices=["torch", "dmc", "atari"])
    env_list.set_defaults(func=_cmd_envs)
    return parser


def main(argv: list[str] | None = None) -> int:
    from envs.dmc_tasks import GLBackendError

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in NEEDS_SIMULATORS:  # before anything imports torchrl (and MuJoCo)
        try:
            _check_gl()
        except GLBackendError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    import torch.distributed as dist

    from jepa_agents.infra import distributed

    try:
        if argv[:1] and argv[0] in DELEGATED:
            return _delegate(argv[0], argv[1:])
        args = build_parser().parse_args(argv)
        return args.func(args)
    except user_errors() as err:
        print(f"error: {_rank_tag()}{err}", file=sys.stderr)
        return 2
    except dist.DistError as err:  # a collective failed: another rank died or stopped answering
        print(
            f"error: {_rank_tag()}a collective operation failed: another rank died or did not answer within "
            f"distributed.timeout_s (torchrun's report names the failed rank; its own error is above). "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
            file=sys.stderr,
        )
        return 3
    finally:
        distributed.shutdown()


def _rank_tag() -> str:
    """``[rank r/W] `` in a data-parallel run, empty otherwise."""
    from jepa_agents.infra import distributed

    ctx = distributed.context()
    return f"[rank {ctx.rank}/{ctx.world_size}] " if ctx.world_size > 1 else ""


if __name__ == "__main__":
    sys.exit(main())
