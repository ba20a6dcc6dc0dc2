"""The first-turn prediction file: one parquet per model, the contract between `first-turn` and `filter`."""

from __future__ import annotations

import re

import pyarrow as pa

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


def model_slug(spec: str) -> str:
    """A file name for a model SPEC: `hf:Qwen/Qwen2.5-VL-7B-Instruct` -> `hf--Qwen--Qwen2.5-VL-7B-Instruct`."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", spec.strip()).strip("-.")
    if not slug:
        raise ValueError(f"model spec {spec!r} gives an empty file name")
    return slug
