"""The zero-shot comparison of docs/zero_shot.md as one resumable sweep: data, training, results table.

1. ``<root>/data``: reward-free data that covers the tasks (maze: ``collect start=uniform``, uniform
   random actions; walker: RND), written once; a cut collection is continued (``append=true``).
2. ``<root>/<method>_s<seed>``: ``jepa-agents train-zero-shot`` per method and seed, ``--jobs`` at a time
   (1 thread each); a run with its final checkpoint is skipped, one with an earlier checkpoint continued
   with ``resume=`` (bit-exact), a missing one started. Each final evaluation adds its per-seed rows
   (and the zero-action / random baselines) to ``--csv`` itself (``eval.results_csv``).
3. Every finished TD-JEPA run evaluated again with ``eval.z_inference=mean`` (``z`` from the
   reward-weighted mean of ``ψ``, rows ``<method>+mean_z``), unless its rows are already there.
4. The summary: mean and 95 % bootstrap interval over seeds per method and task, from ``--csv``
   (printed, and written as Markdown to ``--summary``).

    python scripts/zero_shot_sweep.py --root /work/runs/zs_maze                   # everything left to do
    python scripts/zero_shot_sweep.py --root /work/runs/zs_maze --report-only
    python scripts/zero_shot_sweep.py --root /work/runs/zs_maze_pixels --domain maze_pixels   # from frames
    python scripts/zero_shot_sweep.py --root /tmp/zs_gpu --device cuda --updates 1000000 --jobs 6 \
        --set agent.batch_size=1024 train.checkpoint_every=5000     # a GPU budget (scripts/gpu_checks.sh)
"""

from __future__ import annotations

import argparse
import concurrent.futures
import subprocess
import sys
import time
from pathlib import Path

from jepa_agents.config.load import compose
from jepa_agents.data.offline import DatasetError, read_meta
from jepa_agents.infra.checkpoint import finished_step
from jepa_agents.zero_shot.config import ZERO_SHOT
from jepa_agents.zero_shot.results import method_label, read_rows, summary

PIXELS = ["env.from_pixels=true", "env.image_size=16", "+env.options.frame_stack=3"]
"""What the pixel domains render and store: 16x16 RGB frames, 3 stacked."""

DOMAINS: dict[str, dict] = {
    "maze": {
        "updates": 15_000,
        "transitions": 100_000,
        "collect": ["env.name=torch/point_mass_maze", "zs_explorer=random", "start=uniform", "num_envs=50"],
        # CPU budget (docs/zero_shot.md): the reference's point-mass discount, a faster target (tau 0.05)
        # so that 15k updates propagate the successor features (sf/ratio), the CPU-sized networks
        "train": ["env.name=torch/point_mass_maze", "agent.discount=0.99", "agent.tau_encoder=0.05",
                  "agent.tau_predictor=0.05", "train.checkpoint_every=5000", "train.sf_check_every=1500",
                  "eval.episodes=20"],
        "mean_z": True,
    },
    "maze_pixels": {
        # the maze comparison from 16x16 frames (3 stacked: the policy needs the velocity), the frame size
        # measured by scripts/zero_shot_pixel_resolution.py; the DrQ trunk (the TD-JEPA reference's pixel
        # encoder; small_cnn needs 46 pixels), random shift of 1 pixel (the reference: 2 at 64x64)
        "updates": 15_000,
        "transitions": 100_000,
        "collect": ["env.name=torch/point_mass_maze", "zs_explorer=random", "start=uniform", "num_envs=50",
                    *PIXELS],
        "train": ["env.name=torch/point_mass_maze", "agent.discount=0.99", "agent.tau_encoder=0.05",
                  "agent.tau_predictor=0.05", "train.checkpoint_every=2500", "train.sf_check_every=5000",
                  "eval.episodes=20", "agent.obs_key=pixels", "agent.cnn=drq", "agent.augment_pad=1",
                  *PIXELS],
        "mean_z": True,
    },
    "walker": {
        "updates": 15_000,
        # RND exploration (the TD-JEPA paper's walker data is RND from ExORL), 100k transitions
        "transitions": 100_000,
        "collect": ["env.name=dmc/walker_walk", "zs_explorer=rnd", "num_envs=8"],
        # the reference's walker discount (0.98), the maze's CPU budget otherwise; 5 episodes per task
        # (MuJoCo episodes of 1,000 steps are the evaluation's cost)
        "train": ["env.name=dmc/walker_walk", "agent.discount=0.98", "agent.tau_encoder=0.05",
                  "agent.tau_predictor=0.05", "train.checkpoint_every=5000", "train.sf_check_every=5000",
                  "eval.episodes=5"],
        "mean_z": False,  # dense rewards: the least-squares inference is well posed
    },
}  # fmt: skip
"""Domain -> the training budget (updates), the dataset's size (transitions), the collect and train
overrides of its comparison, and whether TD-JEPA runs are evaluated again with ``eval.z_inference=mean``."""
METHODS = {
    "td_jepa_ortho": "zs_agent=td_jepa_ortho",
    "td_jepa_sigreg_sphere": "zs_agent=td_jepa_sigreg",
    "fb": "zs_agent=fb",
}
"""Run-name prefix -> the preset."""


def collect_command(args) -> list[str] | None:
    """The command that collects ``<root>/data`` (or continues a cut collection), None when it is full."""
    data, domain = args.root / "data", DOMAINS[args.domain]
    meta = data / "meta.json"
    held = read_meta(data).transitions if meta.exists() else 0
    if held >= domain["transitions"]:
        return None
    return [
        sys.executable, "-m", "jepa_agents.cli", "collect", f"dataset={data}", "seed=0", *domain["collect"],
        f"num_transitions={domain['transitions']}", f"append={str(meta.exists()).lower()}", "num_threads=1",
        "device=cpu", "progress_bar=false",
    ]  # fmt: skip


def train_command(args, method: str, seed: int) -> list[str] | None:
    """The command that brings ``method``/``seed`` forward, or None when it is complete."""
    run_dir, domain = args.root / f"{method}_s{seed}", DOMAINS[args.domain]
    if finished_step(run_dir / "checkpoints", args.updates or domain["updates"]) is not None:
        return None
    base = [sys.executable, "-m", "jepa_agents.cli", "train-zero-shot"]
    if (run_dir / "config.yaml").exists():
        return [*base, f"resume={run_dir}", "logging.progress_bar=false"]
    return [
        *base, f"dataset={args.root / 'data'}", METHODS[method], f"seed={seed}",
        f"train.num_updates={args.updates or domain['updates']}", *domain["train"], *args.set,
        f"eval.results_csv={args.csv.resolve()}", "num_threads=1", f"device={args.device}",
        "logging.progress_bar=false", f"run_dir={run_dir}",
    ]  # fmt: skip


def mean_z_commands(args) -> list[tuple[list[str], Path]]:
    """``eval-zero-shot <run> eval.z_inference=mean`` for each finished TD-JEPA run without such rows."""
    if not DOMAINS[args.domain]["mean_z"]:
        return []
    done = {(r["method"], r["seed"]) for r in read_rows(args.csv)}
    out = []
    for method in args.methods:
        agent = compose(["dataset=unused", METHODS[method]], ZERO_SHOT).agent
        if agent.name != "td_jepa":
            continue
        label = method_label(agent, "mean")
        for seed in args.seeds:
            run_dir = args.root / f"{method}_s{seed}"
            if train_command(args, method, seed) is None and (label, str(seed)) not in done:
                cmd = [sys.executable, "-m", "jepa_agents.cli", "eval-zero-shot", str(run_dir),
                       "eval.z_inference=mean", "num_threads=1", f"device={args.device}"]  # fmt: skip
                out.append((cmd, args.root / f"{method}_s{seed}.log"))
    return out


def run(cmd: list[str], log: Path) -> tuple[int, float]:
    start = time.perf_counter()
    with log.open("a") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    return code, time.perf_counter() - start


def markdown(rows: list[dict]) -> str:
    """Tasks as rows, methods as columns: ``mean [low, high] (seeds)``."""
    methods = sorted({r["method"] for r in rows})
    tasks = sorted({r["task"] for r in rows}, key=lambda t: (t == "mean", t.endswith("@goal"), t))
    cell = {(r["task"], r["method"]): r for r in rows}
    lines = ["| task | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for task in tasks:
        cells = []
        for m in methods:
            r = cell.get((task, m))
            cells.append(f"{r['mean']:.1f} [{r['low']:.1f}, {r['high']:.1f}] ({r['seeds']})" if r else "")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def report(args) -> None:
    rows = read_rows(args.csv)
    if not rows:
        print(f"no rows in {args.csv}")
        return
    texts = []
    for domain, updates in sorted({(r["domain"], int(r["updates"])) for r in rows}):
        chosen = [r for r in summary(rows) if (r["domain"], r["updates"]) == (domain, updates)]
        title = f"## {domain}: mean [95 % bootstrap CI] (seeds) at {updates} updates\n\n"
        texts.append(title + markdown(chosen))
        print(texts[-1])
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text("\n".join(texts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="folder of the dataset and run directories")
    parser.add_argument("--domain", choices=sorted(DOMAINS), default="maze")
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (2 on 2 cores, 1 thread each)")
    parser.add_argument("--device", default="cpu", help="training and evaluation device (cpu, cuda)")
    parser.add_argument("--updates", type=int, default=None, help="training budget (default: the domain's)")
    parser.add_argument("--set", nargs="+", default=[], help="more train-zero-shot overrides for new runs")
    parser.add_argument("--csv", type=Path, default=Path("docs/results/zero_shot.csv"))
    parser.add_argument("--summary", type=Path, default=None, help="also write the summary (Markdown) here")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--mean-z-only", action="store_true", help="only step 3 (and the summary)")
    args = parser.parse_args(argv)
    if args.mean_z_only:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(lambda c: run(*c), mean_z_commands(args)))
    elif not args.report_only:
        args.root.mkdir(parents=True, exist_ok=True)
        try:
            cmd = collect_command(args)
        except DatasetError as err:  # a damaged meta.json: say so, touch nothing
            print(f"error: {err}", file=sys.stderr)
            return 2
        if cmd is not None and subprocess.call(cmd) != 0:
            return 1
        todo = [(m, s) for s in args.seeds for m in args.methods if train_command(args, m, s) is not None]
        print(f"{len(todo)} runs to start or continue: {todo}", flush=True)
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futures = {
                pool.submit(run, train_command(args, m, s), args.root / f"{m}_s{s}.log"): (m, s)
                for m, s in todo
            }
            for future in concurrent.futures.as_completed(futures):
                code, seconds = future.result()
                print(f"{futures[future]}: exit {code} after {seconds / 60:.1f} min", flush=True)
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            for code, _ in pool.map(lambda c: run(*c), mean_z_commands(args)):
                if code:
                    print(f"a mean-z evaluation exited with {code}", flush=True)
    report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
