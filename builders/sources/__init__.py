"""One module per raw source; importing this package registers them all in `builders.raw.RAW_SOURCES`."""

from __future__ import annotations
