"""One module per raw source; importing this package registers them all in `builders.raw.RAW_SOURCES`."""

from __future__ import annotations

from . import imagenet_c, mvpn, rod, vsod  # noqa: F401,E402
from . import changeit, coco, quickdraw  # noqa: F401,E402
