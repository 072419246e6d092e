"""``jepa-agents plot``: learning curves, result tables and performance profiles from run directories.

Example::

    jepa-agents plot runs/*/ --metric eval/return --group-by agent.name --agg iqm \\
        --out curves.png curves.pdf --table --table-out results.md --profile
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from jepa_agents.analysis.curves import AGGREGATES, compute_curves, plot_curves
from jepa_agents.analysis.errors import AnalysisError, AnalysisWarning
from jepa_agents.analysis.figures import X_LABELS, check_outputs
from jepa_agents.analysis.profile import plot_performance_profiles
from jepa_agents.analysis.references import parse_methods
from jepa_agents.analysis.runs import check_group_keys, load_runs
from jepa_agents.analysis.scores import atari_normalizer, by_group_and_env, final_scores, normalize
from jepa_agents.analysis.tables import all_tables, write_seed_rows, write_tables


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jepa-agents plot",
        description="Plot learning curves aggregated over seeds (one panel per environment), and "
        "optionally final-score tables and performance profiles, from run directories.",
    )
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN_OR_GLOB",
        help="run directories, globs (quote '**' patterns), or folders containing runs",
    )
    p.add_argument("--metric", default="eval/return", help="scalar tag to plot (default: %(default)s)")
    p.add_argument(
        "--x",
        choices=sorted(X_LABELS),
        default="step",
        help="x axis: env frames (step) or hours since the run started (default: %(default)s)",
    )
    p.add_argument(
        "--x-label",
        default=None,
        help="x-axis label when the step is not env frames (offline zero-shot runs count gradient updates)",
    )
    p.add_argument(
        "--group-by",
        default="agent.name",
        help="dotted config key(s), comma-separated, whose values form the groups (default: %(default)s)",
    )
    p.add_argument(
        "--agg",
        choices=sorted(AGGREGATES),
        default="iqm",
        help="aggregate over seeds at each x (default: %(default)s)",
    )
    _add_output_options(p)
    return p


def _add_output_options(p: argparse.ArgumentParser) -> None:
    """Figures, tables, profiles and the bootstrap settings."""
    p.add_argument(
        "--out",
        nargs="+",
        default=["curves.png"],
        help="figure file(s); .png, .svg or .pdf (default: %(default)s)",
    )
    p.add_argument(
        "--reference",
        default="",
        metavar="METHODS",
        help="published DMC-from-pixels curves to draw as dashed lines, comma-separated: drqv2, dreamerv3, "
        "curl (tasks matched by name: torch/ and dmc/ runs alike)",
    )
    p.add_argument("--table", action="store_true", help="print final-score tables (Markdown)")
    p.add_argument(
        "--seeds-out",
        type=Path,
        metavar="PATH.csv",
        help="write one row per run: env,method,seed,frames,return,wall_s,updates (method = the group)",
    )
    p.add_argument(
        "--seeds-merge",
        action="store_true",
        help="with --seeds-out: replace the rows of these runs and keep the file's other rows",
    )
    p.add_argument(
        "--table-out",
        type=Path,
        metavar="PATH",
        help="write the tables to PATH.md and PATH.csv (plus _atari/_dmc/_zero_shot CSVs)",
    )
    p.add_argument(
        "--last-k",
        type=int,
        default=1,
        help="final score = mean of the last K values of the metric (default: %(default)s)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="also write performance profiles of the final scores to <out>_profile.<ext>",
    )
    p.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap random seed (default: %(default)s)")


def _run(args: argparse.Namespace) -> None:
    if args.last_k < 1 or args.reps < 1:
        raise AnalysisError("--last-k and --reps must be at least 1")
    if args.seeds_merge and not args.seeds_out:
        raise AnalysisError("--seeds-merge updates the file of --seeds-out; name it")
    outs = check_outputs(args.out)
    references = parse_methods(args.reference) if args.reference else []
    group_by = [k.strip() for k in args.group_by.split(",") if k.strip()]
    runs = load_runs(args.runs)
    check_group_keys(runs, group_by)
    curves = compute_curves(runs, args.metric, group_by, args.agg, args.x, args.reps, args.seed)
    if not curves:
        raise AnalysisError(f"no curve of {args.metric!r} could be drawn (see the warnings above)")
    for path in plot_curves(curves, outs, args.metric, args.agg, args.x, args.x_label, references):
        print(f"wrote {path}")
    if not (args.table or args.table_out or args.profile or args.seeds_out):
        return
    scores = final_scores(runs, args.metric, group_by, args.last_k)
    if args.seeds_out:
        print(f"wrote {write_seed_rows(scores, args.seeds_out, merge=args.seeds_merge)}")
    if args.table or args.table_out:
        tables = all_tables(runs, scores, args.metric, group_by, args.last_k, reps=args.reps, seed=args.seed)
        if args.table:
            print("\n".join(t.to_markdown() for t in tables))
        if args.table_out:
            for path in write_tables(tables, args.table_out):
                print(f"wrote {path}")
    if args.profile:
        normalized, scale = normalize(scores, atari_normalizer())
        profile_outs = [p.with_name(f"{p.stem}_profile{p.suffix}") for p in outs]
        for path in plot_performance_profiles(
            by_group_and_env(normalized), profile_outs, scale, reps=args.reps, seed=args.seed
        ):
            print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    """Run ``jepa-agents plot``; 0 on success, 1 on bad input (message on stderr), 2 on bad usage."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    default_show, shown = warnings.showwarning, set()

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, AnalysisWarning):
            if str(message) not in shown:
                shown.add(str(message))
                print(f"warning: {message}", file=sys.stderr)
        else:
            default_show(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", AnalysisWarning)
        warnings.showwarning = show
        try:
            _run(args)
        except AnalysisError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
