"""Result tables: final scores per environment x group, Atari human-normalized aggregates, DMC mean
return, zero-shot per-domain averages. Rendered as Markdown or CSV.

Every interval is a 95% stratified bootstrap confidence interval over runs (see
:mod:`jepa_agents.analysis.stats`); a single run gets no interval.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jepa_agents.analysis.errors import AnalysisError, AnalysisWarning
from jepa_agents.analysis.figures import si
from jepa_agents.analysis.runs import Run, group_label
from jepa_agents.analysis.scores import (
    FinalScore,
    Normalizer,
    atari_normalizer,
    by_group_and_env,
    family,
    final_score,
    task,
)
from jepa_agents.analysis.stats import Estimate, aggregate_estimates

ZERO_SHOT_PREFIX = "zero_shot/"


@dataclass
class Table:
    """A titled table. Cells are strings, numbers, :class:`Estimate` (a value with its CI) or
    ``(low, high)`` ranges; in CSV an Estimate column becomes three (value, ci_low, ci_high) and a range
    column two (min, max)."""

    title: str
    columns: list[str]
    rows: list[list[object]] = field(default_factory=list)
    note: str = ""

    def to_markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.note:
            lines += [self.note, ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def _csv_suffixes(self) -> list[tuple[str, ...]]:
        out = []
        for i in range(len(self.columns)):
            cells = [row[i] for row in self.rows]
            if any(isinstance(c, Estimate) for c in cells):
                out.append(("", " ci_low", " ci_high"))
            elif any(isinstance(c, tuple) for c in cells):
                out.append((" min", " max"))
            else:
                out.append(("",))
        return out

    def to_csv(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        suffixes = self._csv_suffixes()
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([name + sfx for name, sfxs in zip(self.columns, suffixes) for sfx in sfxs])
            for row in self.rows:
                cells: list[object] = []
                for cell, sfxs in zip(row, suffixes):
                    if isinstance(cell, Estimate):
                        cells += [cell.value, cell.low, cell.high]
                    elif isinstance(cell, tuple):
                        cells += list(cell)
                    else:
                        cells += [cell] + [""] * (len(sfxs) - 1)
                writer.writerow(cells)
        return path


def _number(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.4g}"


def _cell(cell: object) -> str:
    if isinstance(cell, Estimate):
        if cell.low == cell.high:
            return _number(cell.value)
        return f"{_number(cell.value)} [{_number(cell.low)}, {_number(cell.high)}]"
    if isinstance(cell, tuple):
        low, high = (_cell(c) for c in cell)
        return low if low == high else f"{low}–{high}"
    if isinstance(cell, bool | str):
        return str(cell)
    if isinstance(cell, int):
        return si(cell)
    if isinstance(cell, float):
        return _number(cell)
    return str(cell)


def final_score_table(
    scores: Sequence[FinalScore], metric: str, last_k: int = 1, reps: int = 2000, seed: int = 0
) -> Table:
    """Per environment x group: seeds, env frames reached (min-max over the seeds), mean, std and IQM
    of the final scores, with CIs."""
    what = "last value" if last_k == 1 else f"mean of the last {last_k} values"
    table = Table(
        f"Final {metric}",
        ["env", "group", "seeds", "env frames", "mean", "std", "IQM"],
        note=f"Final score of a run: {what} of `{metric}`. [..]: 95% bootstrap CI over seeds.",
    )
    cells: dict[tuple[str, str], list[FinalScore]] = {}
    for s in scores:
        cells.setdefault((s.env, s.group), []).append(s)
    for (env, group), members in sorted(cells.items()):
        values = np.array([m.value for m in members])
        est = aggregate_estimates({env: values}, ("mean", "iqm"), reps, rng=seed)
        std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        frames = (int(min(m.step for m in members)), int(max(m.step for m in members)))
        table.rows.append([env, group, len(members), frames, est["mean"], std, est["iqm"]])
    return table


def atari_table(
    scores: Sequence[FinalScore],
    normalizer: Normalizer | None = None,
    reps: int = 2000,
    seed: int = 0,
) -> Table | None:
    """Human-normalized aggregates over the Atari games of each group: median, IQM, mean, optimality
    gap (gamma = 1, i.e. human level). ``normalizer(game, score)`` defaults to
    ``envs.atari_scores.human_normalized``. None when there are no Atari runs (or no normalizer)."""
    atari = [s for s in scores if family(s.env) == "atari"]
    if not atari:
        return None
    normalizer = normalizer or atari_normalizer()
    if normalizer is None:
        return None
    normalized = []
    for s in atari:
        try:
            normalized.append(
                FinalScore(s.run, s.env, s.group, float(normalizer(task(s.env), s.value)), s.step)
            )
        except (KeyError, ValueError) as err:
            warnings.warn(
                f"{s.env}: no human-normalized score ({err}); left out", AnalysisWarning, stacklevel=2
            )
    table = Table(
        "Atari human-normalized scores",
        ["group", "games", "runs", "median", "IQM", "mean", "optimality gap"],
        note="(score - random) / (human - random); [..]: 95% stratified bootstrap CI (runs resampled "
        "within each game).",
    )
    for group, games in by_group_and_env(normalized).items():
        est = aggregate_estimates(games, ("median", "iqm", "mean", "optimality_gap"), reps, rng=seed)
        runs = sum(len(v) for v in games.values())
        table.rows.append(
            [group, len(games), runs, est["median"], est["iqm"], est["mean"], est["optimality_gap"]]
        )
    return table


def dmc_table(scores: Sequence[FinalScore], reps: int = 2000, seed: int = 0) -> Table | None:
    """Mean (over tasks of the per-task mean) and IQM of the final DMC returns of each group."""
    dmc = [s for s in scores if family(s.env) == "dmc"]
    if not dmc:
        return None
    table = Table(
        "DMC returns",
        ["group", "tasks", "runs", "mean return", "IQM return"],
        note="Mean: over tasks of the per-task mean over seeds. [..]: 95% stratified bootstrap CI.",
    )
    for group, tasks in by_group_and_env(dmc).items():
        est = aggregate_estimates(tasks, ("mean", "iqm"), reps, rng=seed)
        table.rows.append([group, len(tasks), sum(len(v) for v in tasks.values()), est["mean"], est["iqm"]])
    return table


def zero_shot_table(
    runs: Sequence[Run], group_by: Sequence[str], last_k: int = 1, reps: int = 2000, seed: int = 0
) -> Table | None:
    """Per group and domain: the mean over tasks of the per-task mean of the final
    ``zero_shot/<domain>/<task>`` values. None when no run logged such tags."""
    cells: dict[tuple[str, str], dict[str, list[float]]] = {}
    for run in runs:
        group = group_label(run, group_by)
        for tag in run.tags:
            parts = tag.split("/")
            if not tag.startswith(ZERO_SHOT_PREFIX) or len(parts) < 3:
                continue
            score = final_score(run, tag, last_k)
            if score is not None:
                domain, name = parts[1], "/".join(parts[2:])
                cells.setdefault((group, domain), {}).setdefault(name, []).append(score[0])
    if not cells:
        return None
    table = Table(
        "Zero-shot returns per domain",
        ["group", "domain", "tasks", "runs", "mean return"],
        note="Mean over the domain's tasks of the per-task mean over runs. "
        "[..]: 95% stratified bootstrap CI.",
    )
    for (group, domain), tasks in sorted(cells.items()):
        arrays = {name: np.array(v) for name, v in sorted(tasks.items())}
        est = aggregate_estimates(arrays, ("mean",), reps, rng=seed)["mean"]
        table.rows.append([group, domain, len(arrays), max(len(v) for v in arrays.values()), est])
    return table


def all_tables(
    runs: Sequence[Run],
    scores: Sequence[FinalScore],
    metric: str,
    group_by: Sequence[str],
    last_k: int = 1,
    normalizer: Normalizer | None = None,
    reps: int = 2000,
    seed: int = 0,
) -> list[Table]:
    """The final-score table followed by those of the Atari, DMC and zero-shot tables that apply."""
    tables = [
        final_score_table(scores, metric, last_k, reps, seed),
        atari_table(scores, normalizer, reps, seed),
        dmc_table(scores, reps, seed),
        zero_shot_table(runs, group_by, last_k, reps, seed),
    ]
    return [t for t in tables if t is not None]


def write_tables(tables: Sequence[Table], out: str | Path) -> list[Path]:
    """Write every table into ``<out>.md`` and one CSV per table: ``<out>.csv`` for the final scores,
    ``<out>_atari.csv``, ``<out>_dmc.csv``, ``<out>_zero_shot.csv`` for the others."""
    out = Path(out)
    md = out.with_suffix(".md")
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text("\n".join(t.to_markdown() for t in tables))
    written = [md]
    for i, t in enumerate(tables):
        stem = out.stem if i == 0 else f"{out.stem}_{t.title.split()[0].lower().replace('-', '_')}"
        written.append(t.to_csv(out.with_name(stem + ".csv")))
    return written


SEED_COLUMNS = ("env", "method", "seed", "frames", "return", "wall_s", "updates")


def _wall_seconds(run) -> float | str:
    """The run's training time in seconds, as :func:`write_seed_rows` documents it; '' when unknown."""
    train_s = run.scalars.get("perf/train_s")
    if train_s is not None and len(train_s):
        return round(float(train_s.values[-1]), 1)
    walls = [w for t in run.scalars.values() if len(t) for w in (min(t.wall_times), max(t.wall_times))]
    return round(max(walls) - min(walls), 1) if walls else ""


def write_seed_rows(scores: Sequence[FinalScore], out: str | Path, merge: bool = False) -> Path:
    """One CSV row per run (:data:`SEED_COLUMNS`): its environment, group (``method``), seed, the frames
    and value of its final score, its wall time (the training time summed over the run's sessions, its
    last ``perf/train_s``; for runs that predate that counter, first to last logged scalar) and its
    gradient updates (the last ``train/updates`` it logged; empty when it logs none).

    ``merge``: keep the rows already in ``out`` whose ``(env, method, seed)`` none of ``scores`` has (runs
    whose directories are elsewhere or gone), replace the others."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in scores:
        updates = s.run.scalars.get("train/updates")
        rows.append({
            "env": s.env, "method": s.group, "seed": str(s.run.get("seed", "")), "frames": int(s.step),
            "return": round(s.value, 2), "wall_s": _wall_seconds(s.run),
            "updates": int(updates.values[-1]) if updates is not None and len(updates) else "",
        })  # fmt: skip
    if merge and out.is_file():
        with out.open(newline="") as f:
            old = list(csv.DictReader(f))
        if old and set(old[0]) != set(SEED_COLUMNS):
            raise AnalysisError(f"{out} has columns {sorted(old[0])}, not {list(SEED_COLUMNS)}: not merged")
        new = {(r["env"], r["method"], r["seed"]) for r in rows}
        rows += [r for r in old if (r["env"], r["method"], r["seed"]) not in new]
    rows.sort(key=lambda r: (r["env"], r["method"], r["seed"]))
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, SEED_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out
