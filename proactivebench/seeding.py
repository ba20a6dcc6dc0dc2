"""Seeded randomness: every stream depends only on the seed and what it is drawn for, never on order, process,
batching or `--limit`.

Two derivations of a `random.Random` exist because outputs depend on both and must not change: the builders'
streams decide the published dataset bytes, the evaluator's decide which shots, ablated options and baseline
answers a run sees (its results). `rng_for(seed, *parts)` is the builders'; `rng_for(seed, *parts, hashed=True)`
the evaluator's. New code uses the default.
"""

from __future__ import annotations

import hashlib
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def stable_int(*parts: object) -> int:
    """A 64-bit integer that depends only on the parts (their `str`, joined by "/"): SHA-256's first 8 bytes."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


def stable_unit(*parts: object) -> float:
    """A number in [0, 1) that depends only on the parts."""
    return stable_int(*parts) / 2**64


def rng_for(seed: int, *parts: object, hashed: bool = False) -> random.Random:
    """A generator for one item of one seeded stream.

    By default the key text ("\\x1f"-joined) seeds `random.Random` itself, which hashes a string with SHA-512, so
    it is stable across processes and runs (the builders). `hashed=True` seeds it with `stable_int(seed, *parts)`
    instead (the evaluator).
    """
    if hashed:
        return random.Random(stable_int(seed, *parts))
    return random.Random("\x1f".join([str(seed), *map(str, parts)]))


def numpy_rng(seed: int, *parts: str) -> "np.random.Generator":
    """A numpy generator seeded by the seed and the parts' bytes ("\\0"-joined), for vectorised draws."""
    import numpy as np

    return np.random.default_rng([seed, *"\0".join(parts).encode()])
