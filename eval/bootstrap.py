"""Seeded bootstrap 95% confidence intervals for Table 1 (acc and psr per source and their macro average).

The population is exactly the episodes behind `table1`: the analytics view `episode_results` (one episode per
setting and sample, the latest run wins) without the single-turn modes. Episodes are resampled with replacement
*within each source* (the sources are fixed by the benchmark's design, their sizes are not random); a replicate's
macro average is the mean of its per-source replicates, as `avg_*` in `table1`. Intervals are percentile
intervals. The point estimates stay those of the view: this module only adds `<column>_lo` / `<column>_hi`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from proactivebench.seeding import numpy_rng

from .analytics import SETTING_COLUMNS, SINGLE_TURN_MODES

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
LEVEL = 95.0
METRICS = ("acc", "psr")
KEY_COLUMNS = ("run", "dataset")  # identify a row of table1 (the run label spells every other setting column)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def _episodes(con):
    """(run, dataset) → source → (correct 0/1 array, proactive_suggestions array), from the analytics view."""
    modes = ", ".join(f"'{m}'" for m in SINGLE_TURN_MODES)
    rows = con.execute(
        f"SELECT {SETTING_COLUMNS}, source, list(correct::INTEGER ORDER BY sample_id), "
        f"list(proactive_suggestions ORDER BY sample_id) FROM episode_results "
        f"WHERE mode NOT IN ({modes}) GROUP BY ALL").fetchall()
    groups: dict[tuple, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for run, *_, dataset, source, correct, suggestions in rows:
        groups.setdefault((run, dataset), {})[source] = (np.asarray(correct, dtype=float),
                                                         np.asarray(suggestions, dtype=float))
    return groups


def _replicates(values: np.ndarray, indices: np.ndarray, scale: float) -> np.ndarray:
    return scale * values[indices].mean(axis=1)


def table1_intervals(con, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
                     ) -> dict[tuple, dict[str, Interval]]:
    """(run, dataset) of a table1 row → {"<source>_acc": Interval, …, "avg_acc": …, "avg_psr": …}.

    Seeded per setting (the seed and the setting's label), so adding a run to a file leaves the other runs'
    intervals unchanged.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    out: dict[tuple, dict[str, Interval]] = {}
    tail = (100 - LEVEL) / 2
    for key, sources in _episodes(con).items():
        rng = numpy_rng(seed, *key)
        per_metric: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
        intervals: dict[str, Interval] = {}
        for source in sorted(sources):
            correct, suggestions = sources[source]
            indices = rng.integers(0, len(correct), size=(resamples, len(correct)))
            for metric, values, scale in (("acc", correct, 100.0), ("psr", suggestions, 1.0)):
                reps = _replicates(values, indices, scale)
                per_metric[metric].append(reps)
                intervals[f"{source}_{metric}"] = _interval(reps, tail)
        for metric, reps in per_metric.items():
            intervals[f"avg_{metric}"] = _interval(np.mean(reps, axis=0), tail)
        out[key] = intervals
    return out


def _interval(replicates: np.ndarray, tail: float) -> Interval:
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return Interval(float(low), float(high))


def with_intervals(frame, intervals: dict[tuple, dict[str, Interval]]):
    """A copy of a table1 frame with `<column>_lo` and `<column>_hi` after every metric column it has."""
    out = frame.copy()
    metric_columns = [c for c in frame.columns if c.rsplit("_", 1)[-1] in METRICS and "_" in c]
    keys = [tuple(row) for row in frame[list(KEY_COLUMNS)].itertuples(index=False)]
    for column in metric_columns:
        found = [intervals.get(k, {}).get(column) for k in keys]
        position = list(out.columns).index(column) + 1
        out.insert(position, f"{column}_lo", [i.low if i else None for i in found])
        out.insert(position + 1, f"{column}_hi", [i.high if i else None for i in found])
    return out
