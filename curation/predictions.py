"""The first-turn prediction file: one parquet per model, the contract between `first-turn` and `filter`."""

from __future__ import annotations

import re

from proactivebench.filter_rule import PREDICTION_COLUMNS, PREDICTION_SCHEMA  # noqa: F401  (the contract lives in the core)


def model_slug(spec: str) -> str:
    """A file name for a model SPEC: `hf:Qwen/Qwen2.5-VL-7B-Instruct` -> `hf--Qwen--Qwen2.5-VL-7B-Instruct`."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", spec.strip()).strip("-.")
    if not slug:
        raise ValueError(f"model spec {spec!r} gives an empty file name")
    return slug
