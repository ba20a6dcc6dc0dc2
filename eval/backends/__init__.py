"""Model backends behind one interface: a batch of chat requests (text + images) in, texts out.

SPEC: `hf:<id or dir>[+<adapter dir>]`, `openai:<model>` (with base_url / $OPENAI_BASE_URL),
`baseline:random|oracle|oracle-proactive|always-proactive|always-abstain`.
"""

from .base import (
    BACKENDS, Backend, BackendUnavailable, DerivedImage, Generation, Request, StoredImage, frame_source, load_backend,
    parse_spec, register_backend, single_turn,
)

__all__ = [
    "BACKENDS", "Backend", "BackendUnavailable", "DerivedImage", "Generation", "Request", "StoredImage", "frame_source", "load_backend",
    "parse_spec", "register_backend", "single_turn",
]
