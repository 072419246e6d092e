"""The DMC-100k table of docs/dmc100k.md as one resumable sweep, two runs at a time.

Every row is a `jepa-agents train train=dmc_100k ...` run in ``<root>/<row>_s<seed>``. A run directory
that holds a final checkpoint is skipped, one with an earlier checkpoint is continued with
``resume=<dir>`` (bit-exact), a missing one is started; so the sweep can be cut at any time and run
again. At the end (or with ``--report-only``) the curves of the complete runs with the published references
are drawn when ``--figure`` is given (only the runs under ``--root``: a root holding part of the table draws
part of it) and their per-seed rows merged into ``--csv`` (the rows of runs whose directories
are elsewhere stay)::

    python scripts/dmc100k_sweep.py --root /work/runs/dmc100k                 # everything left to do
    python scripts/dmc100k_sweep.py --root /work/runs/dmc100k --rows sigreg   # only the main result
    python scripts/dmc100k_sweep.py --root /work/runs/dmc100k --report-only
"""

from __future__ import annotations

import argparse
import concurrent.futures
import subprocess
import sys
import time
from pathlib import Path

from jepa_agents.infra.checkpoint import finished_step

TOTAL = 100_000
ROWS: dict[str, tuple[list[str], list[int]]] = {
    # the main result (the defaults) and its ablation
    "sigreg": ([], [0, 1, 2]),
    "spr_ema": (["world_model=spr_ema"], [0, 1]),
    "vicreg": (["world_model=jepa_vicreg"], [0, 1]),
    "no_regularizer": (["world_model.regularizer=none"], [0, 1]),
    "no_world_model": (["world_model=none"], [0, 1]),
    # a hyperparameter: DrQ's learning rate 1e-3 instead of 3e-4
    "sigreg_lr1e3": (["agent=sac_drq"], [0, 1, 2]),
    # the update-to-data ratio: two updates per agent step (24k updates in 100k frames), the best result,
    # and its ablation at the same budget
    "sigreg_utd2": (["agent.utd=2"], [0, 1, 2]),
    "spr_ema_utd2": (["agent.utd=2", "world_model=spr_ema"], [0, 1]),
    "vicreg_utd2": (["agent.utd=2", "world_model=jepa_vicreg"], [0, 1]),
    "no_regularizer_utd2": (["agent.utd=2", "world_model.regularizer=none"], [0, 1]),
    "no_world_model_utd2": (["agent.utd=2", "world_model=none"], [0, 1]),
    # the MuJoCo task with the same config
    "dmc_sigreg": (["env=dmc/cartpole_swingup"], [0]),
    # actor-critic in imagination on the same protocol
    "imagination": (["agent=imagination", "world_model=imagination"], [0, 1, 2]),
}
"""Row name -> (overrides on top of the defaults, seeds)."""


def command(root: Path, row: str, seed: int, threads: int = 1) -> list[str] | None:
    """The command that brings run ``row``/``seed`` forward, or None when it is complete."""
    run_dir = root / f"{row}_s{seed}"
    if finished_step(run_dir / "checkpoints", TOTAL) is not None:
        return None
    base = [sys.executable, "-m", "jepa_agents.cli", "train"]
    if run_dir.exists():
        return [*base, f"resume={run_dir}", "logging.progress_bar=false"]
    overrides, _ = ROWS[row]
    return [
        *base, "train=dmc_100k", f"seed={seed}", *overrides, f"num_threads={threads}",
        "logging.progress_bar=false", f"run_dir={run_dir}",
    ]  # fmt: skip


def run(cmd: list[str], log: Path) -> tuple[int, float]:
    start = time.perf_counter()
    with log.open("a") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    return code, time.perf_counter() - start


def report(root: Path, figure: Path | None, rows: Path) -> None:
    """The curves of the complete runs under ``root`` (with the published references) to ``figure``, and
    their per-seed rows merged into ``rows`` (rows of runs that are not under ``root`` are kept)."""
    runs = sorted(str(p) for p in root.iterdir() if finished_step(p / "checkpoints", TOTAL) is not None)
    if not runs:
        print(f"no complete runs under {root}")
        return
    # the env is the panel; the learning rate and the update ratio tell those rows from the defaults
    group = "agent.name,world_model.name,world_model.regularizer,world_model.target,agent.lr_critic,agent.utd"
    figure_args = ["--reference", "drqv2,dreamerv3", "--out", str(figure)] if figure is not None else []
    cmd = [
        sys.executable, "-m", "jepa_agents.cli", "plot", *runs, "--group-by", group, *figure_args,
        "--seeds-out", str(rows), "--seeds-merge",
    ]  # fmt: skip
    subprocess.call(cmd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="folder of the run directories")
    parser.add_argument("--rows", nargs="+", choices=sorted(ROWS), default=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, help="only these seeds of each row (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (2 on 2 cores, 1 thread each)")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per new run (--jobs 1 --threads 2: alone)"
    )
    parser.add_argument(
        "--figure",
        type=Path,
        default=None,
        help="draw the complete runs under --root here (only those: a root with part of the runs draws part)",
    )
    parser.add_argument(
        "--csv",
        type=Path,
        default=Path("docs/results/dmc100k.csv"),
        help="per-seed rows, merged (kept rows of runs not under --root)",
    )
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        todo = [
            (r, s)
            for r in args.rows
            for s in ROWS[r][1]
            if (args.seeds is None or s in args.seeds) and command(args.root, r, s, args.threads) is not None
        ]
        print(f"{len(todo)} runs to start or continue: {todo}", flush=True)
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futures = {}
            for r, s in todo:
                futures[
                    pool.submit(run, command(args.root, r, s, args.threads), args.root / f"{r}_s{s}.log")
                ] = (r, s)
            for future in concurrent.futures.as_completed(futures):
                code, seconds = future.result()
                print(f"{futures[future]}: exit {code} after {seconds / 60:.1f} min", flush=True)
    report(args.root, args.figure, args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
