"""Final scores of runs, grouped, and their normalization across environments.

* **final score** of a run: the mean of its last ``last_k`` finite values of the metric (``last_k=1``:
  the last evaluation).
* **human-normalized score** (Atari): ``(score - random) / (human - random)``, computed by
  ``envs.atari_scores.human_normalized(game, score)`` where ``game`` is the env name without its
  ``atari/`` prefix.
* **DMC normalized score**: ``return / 1000`` (DMC episodes return at most 1000).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from jepa_agents.analysis.errors import AnalysisWarning
from jepa_agents.analysis.runs import Run, finite_series, group_label, require_metric

Normalizer = Callable[[str, float], float]
DMC_MAX_RETURN = 1000.0


@dataclass(frozen=True)
class FinalScore:
    """The final score of one run: ``value`` reached at ``step`` env frames."""

    run: Run
    env: str
    group: str
    value: float
    step: float


def final_score(run: Run, metric: str, last_k: int = 1) -> tuple[float, float] | None:
    """``(mean of the last last_k finite values, last step)``, or None when there is no finite value."""
    series = finite_series(run, metric)
    if len(series) == 0:
        return None
    return float(series.values[-last_k:].mean()), float(series.steps[-1])


def final_scores(
    runs: Sequence[Run], metric: str, group_by: Sequence[str], last_k: int = 1
) -> list[FinalScore]:
    """The :class:`FinalScore` of every run that has a finite value of ``metric``."""
    out = []
    for run in require_metric(runs, metric):
        score = final_score(run, metric, last_k)
        if score is None:
            warnings.warn(
                f"run {run.path} has no finite {metric!r} value; skipped", AnalysisWarning, stacklevel=2
            )
            continue
        out.append(FinalScore(run, run.env(), group_label(run, group_by), *score))
    return out


def by_group_and_env(scores: Sequence[FinalScore]) -> dict[str, dict[str, np.ndarray]]:
    """``{group: {env: array of the final scores of its runs}}``, sorted by name."""
    nested: dict[str, dict[str, list[float]]] = {}
    for s in scores:
        nested.setdefault(s.group, {}).setdefault(s.env, []).append(s.value)
    return {g: {e: np.array(v) for e, v in sorted(envs.items())} for g, envs in sorted(nested.items())}


def family(env: str) -> str:
    """``"atari"`` for ``"atari/pong"``; the part before the first ``/``."""
    return env.split("/", 1)[0]


def task(env: str) -> str:
    """``"pong"`` for ``"atari/pong"``; the part after the first ``/``."""
    return env.split("/", 1)[-1]


def atari_normalizer() -> Normalizer | None:
    """``envs.atari_scores.human_normalized``, imported on first use; None (with a warning) if missing."""
    try:
        from envs.atari_scores import human_normalized
    except ImportError as err:
        warnings.warn(f"no human-normalized Atari scores ({err})", AnalysisWarning, stacklevel=2)
        return None
    return human_normalized


def normalize(scores: Sequence[FinalScore], atari: Normalizer | None) -> tuple[list[FinalScore], str]:
    """Put scores of different environments on one scale for profiles: Atari human-normalized, DMC
    ``return / 1000``, anything else raw. Returns the scores and a label of the scale used."""
    out, scales = [], set()
    for s in scores:
        fam = family(s.env)
        if fam == "atari" and atari is not None:
            try:
                value, scale = atari(task(s.env), s.value), "human-normalized score"
            except (KeyError, ValueError):
                warnings.warn(
                    f"no human/random reference for {s.env}; raw score used", AnalysisWarning, stacklevel=2
                )
                value, scale = s.value, "raw score"
        elif fam == "dmc":
            value, scale = s.value / DMC_MAX_RETURN, "DMC return / 1000"
        else:
            value, scale = s.value, "raw score"
        scales.add(scale)
        out.append(FinalScore(s.run, s.env, s.group, float(value), s.step))
    if len(scales) > 1:
        warnings.warn(
            f"environments on different scales ({', '.join(sorted(scales))}) are pooled",
            AnalysisWarning,
            stacklevel=2,
        )
    return out, " + ".join(sorted(scales))
