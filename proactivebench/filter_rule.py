"""The paper's first-turn leakage rule (docs/protocol.md §1.3) and the prediction files it reads.

A sample is excluded when at least `threshold` of the roster answers it right at the first MCQA turn (paper: 25%,
i.e. 6 of 22 models); the rest is the benchmark. `curate first-turn` writes one prediction file per model,
`curate filter` applies the rule, and `report --predictions` shows what it would keep: all three read this
module, so the rule, its default and the file contract exist once.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_THRESHOLD = 0.25

# One parquet file per model: the contract between `curate first-turn`, `curate filter` and `report`.
PREDICTION_SCHEMA = pa.schema(
    [
        ("model", pa.string()),  # the model SPEC as given, e.g. "hf:Qwen/Qwen2.5-VL-7B-Instruct"
        ("sample_id", pa.string()),
        ("source", pa.string()),
        ("output", pa.string()),  # the raw generated text ("" when the backend failed)
        ("verdict", pa.string()),  # category verdict of the first turn: correct / wrong / mismatch / error
        ("correct", pa.bool_()),  # the episode ended correct on turn 1
    ]
)
PREDICTION_COLUMNS = tuple(PREDICTION_SCHEMA.names)


class PredictionsError(ValueError):
    """Prediction files, or a threshold, that the rule cannot be applied to as they are."""


def check_threshold(threshold: float) -> float:
    if not 0 < threshold <= 1:
        raise PredictionsError(f"threshold must be in (0, 1], got {threshold}")
    return float(threshold)


def solve_rate_sql(correct: str) -> str:
    """SQL aggregate over one row per roster model and sample: the share whose boolean `correct` is true."""
    return f"count(*) FILTER (WHERE {correct})::DOUBLE / count(*)"


def split_sql(rate: str, threshold: str) -> str:
    """SQL expression: the split the rule puts a sample in, 'test' (kept) or 'excluded'."""
    return f"CASE WHEN {rate} >= {threshold} THEN 'excluded' ELSE 'test' END"


def prediction_files(predictions: Path | str) -> list[Path]:
    """The `*.parquet` files of a predictions folder, each checked for the required columns."""
    predictions = Path(predictions)
    if not predictions.is_dir():
        raise PredictionsError(f"{predictions}: not a folder of prediction files")
    unfinished = sorted(p.name for p in predictions.glob(".*.parts") if any(p.glob("part-*.parquet")))
    if unfinished:
        # Those models have no file yet: filtering now would silently drop them from the roster.
        raise PredictionsError(
            f"{predictions}: unfinished first-turn run(s) {', '.join(unfinished)}: rerun `curate first-turn`"
        )
    files = sorted(predictions.glob("*.parquet"))
    if not files:
        raise PredictionsError(f"{predictions}: no *.parquet prediction files")
    for path in files:
        try:
            names = set(pq.read_schema(path).names)
        except Exception as error:  # pyarrow raises several types for a damaged file
            raise PredictionsError(f"{path}: not a readable parquet file ({error})") from None
        missing = [c for c in PREDICTION_COLUMNS if c not in names]
        if missing:
            raise PredictionsError(f"{path}: missing column(s) {', '.join(missing)}")
    return files
