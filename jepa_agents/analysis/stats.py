"""Aggregate statistics over runs and tasks, with stratified bootstrap confidence intervals.

Follows Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the Statistical Precipice"
(the ``rliable`` library, re-implemented here on numpy alone: ``rliable`` pulls pandas, statsmodels,
arch and seaborn).

Scores are given per task as ``{task: 1-D array of the final scores of independent runs}``; tasks may
have different numbers of runs. Every statistic is written for a batch: it takes a list with one array
of shape ``[B, n_task]`` per task and returns ``[B]``, so that the bootstrap evaluates all of its
resamples at once.

* **mean**: the mean over tasks of the per-task mean score.
* **median**: the median over tasks of the per-task mean score.
* **IQM** (interquartile mean): the mean of the middle 50% of all run-task scores pooled together,
  after dropping ``floor(0.25 n)`` scores from each end (``scipy.stats.trim_mean(x, 0.25)``, as in
  ``rliable``). Robust to outlier runs, far less noisy than the median.
* **optimality gap** (threshold ``gamma``, 1 for normalized scores): ``gamma - mean(min(x, gamma))``,
  averaged per task then over tasks; the amount by which the runs fall short of ``gamma``.
* **stratified bootstrap**: each resample draws, *for every task separately*, as many runs as that task
  has, with replacement; the statistic of the resample is recorded. The ``(1-alpha)`` percentile
  interval of those values is the confidence interval.
* **performance profile** (run-score distribution): ``F(tau)``, the fraction of runs whose score exceeds
  ``tau``, averaged over tasks, with stratified-bootstrap bands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

BatchStatistic = Callable[[list[np.ndarray]], np.ndarray]


def _task_means(samples: list[np.ndarray]) -> np.ndarray:
    return np.stack([s.mean(axis=-1) for s in samples], axis=-1)


def batch_mean(samples: list[np.ndarray]) -> np.ndarray:
    """Mean over tasks of the per-task mean (``[B]``)."""
    return _task_means(samples).mean(axis=-1)


def batch_median(samples: list[np.ndarray]) -> np.ndarray:
    """Median over tasks of the per-task mean (``[B]``)."""
    return np.median(_task_means(samples), axis=-1)


def batch_iqm(samples: list[np.ndarray]) -> np.ndarray:
    """Interquartile mean of the pooled run-task scores (``[B]``); ``floor(n/4)`` trimmed at each end."""
    pooled = np.sort(np.concatenate(samples, axis=-1), axis=-1)
    cut = pooled.shape[-1] // 4
    return pooled[..., cut : pooled.shape[-1] - cut].mean(axis=-1)


def batch_optimality_gap(samples: list[np.ndarray], gamma: float = 1.0) -> np.ndarray:
    """``gamma - mean(min(x, gamma))``, averaged per task then over tasks (``[B]``)."""
    return gamma - batch_mean([np.minimum(s, gamma) for s in samples])


STATISTICS: dict[str, BatchStatistic] = {
    "median": batch_median,
    "mean": batch_mean,
    "iqm": batch_iqm,
    "optimality_gap": batch_optimality_gap,
}


def _as_samples(scores: Mapping[str, np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """``{task: runs}`` or a single array of runs of one task -> list of ``[1, n_task]`` arrays."""
    arrays = list(scores.values()) if isinstance(scores, Mapping) else [scores]
    samples = [np.asarray(a, dtype=np.float64).reshape(1, -1) for a in arrays]
    if not samples or any(s.shape[1] == 0 for s in samples):
        raise ValueError("every task needs at least one score")
    return samples


def iqm(scores: Mapping[str, np.ndarray] | np.ndarray) -> float:
    """Interquartile mean (see the module docstring)."""
    return float(batch_iqm(_as_samples(scores))[0])


def mean(scores: Mapping[str, np.ndarray] | np.ndarray) -> float:
    """Mean over tasks of the per-task mean."""
    return float(batch_mean(_as_samples(scores))[0])


def median(scores: Mapping[str, np.ndarray] | np.ndarray) -> float:
    """Median over tasks of the per-task mean."""
    return float(batch_median(_as_samples(scores))[0])


def optimality_gap(scores: Mapping[str, np.ndarray] | np.ndarray, gamma: float = 1.0) -> float:
    """``gamma - mean(min(x, gamma))`` (see the module docstring)."""
    return float(batch_optimality_gap(_as_samples(scores), gamma)[0])


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its ``[low, high]`` confidence interval."""

    value: float
    low: float
    high: float


def stratified_resamples(
    scores: Mapping[str, np.ndarray] | np.ndarray, reps: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``reps`` stratified bootstrap resamples: per task an array ``[reps, n_task]`` drawn with replacement
    from that task's runs only."""
    out = []
    for sample in _as_samples(scores):
        n = sample.shape[1]
        out.append(sample[0][rng.integers(0, n, size=(reps, n))])
    return out


def bootstrap_ci(
    scores: Mapping[str, np.ndarray] | np.ndarray,
    statistic: BatchStatistic,
    reps: int = 2000,
    alpha: float = 0.05,
    rng: np.random.Generator | int | None = 0,
) -> Estimate:
    """The statistic of ``scores`` and its stratified-bootstrap percentile interval at level ``1-alpha``."""
    rng = np.random.default_rng(rng)
    value = float(statistic(_as_samples(scores))[0])
    boot = statistic(stratified_resamples(scores, reps, rng))
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return Estimate(value, float(low), float(high))


def aggregate_estimates(
    scores: Mapping[str, np.ndarray],
    names: Sequence[str] = ("median", "iqm", "mean", "optimality_gap"),
    reps: int = 2000,
    alpha: float = 0.05,
    rng: np.random.Generator | int | None = 0,
) -> dict[str, Estimate]:
    """:func:`bootstrap_ci` for each statistic in ``names`` (keys of :data:`STATISTICS`)."""
    rng = np.random.default_rng(rng)
    return {name: bootstrap_ci(scores, STATISTICS[name], reps, alpha, rng) for name in names}


def performance_profile(
    scores: Mapping[str, np.ndarray],
    taus: np.ndarray,
    reps: int = 2000,
    alpha: float = 0.05,
    rng: np.random.Generator | int | None = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-score distribution ``F(tau)``: fraction of runs with score ``> tau``, averaged over tasks.

    Returns ``(fraction, low, high)``, each shaped like ``taus``, the band being the stratified-bootstrap
    percentile interval at level ``1-alpha``.
    """
    rng = np.random.default_rng(rng)
    taus = np.asarray(taus, dtype=np.float64)

    def profile(samples: list[np.ndarray]) -> np.ndarray:
        per_task = [(s[..., None] > taus).mean(axis=-2) for s in samples]
        return np.mean(per_task, axis=0)

    value = profile(_as_samples(scores))[0]
    boot = profile(stratified_resamples(scores, reps, rng))
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    return value, low, high
