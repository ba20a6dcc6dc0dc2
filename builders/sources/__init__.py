"""One module per raw source; importing this package imports them all, and each registers its builder in
`builders.raw.RAW_SOURCES` (no list to keep: a new module is found, docs/adding_a_source.md)."""

from __future__ import annotations

from proactivebench.discovery import import_submodules

import_submodules(__name__)
