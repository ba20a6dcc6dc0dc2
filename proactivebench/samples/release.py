"""A tiny release in the authors' format (jsonl + image folders), for tests, the demo and trying `import-official`.

The entries are the synthetic ones of the golden traces of docs/protocol.md §12, so their behaviour is known.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any, Mapping

from proactivebench.sources import SOURCES
from proactivebench.sources.spec import Entry


def golden_entries() -> dict[str, list[dict[str, Any]]]:
    """The synthetic entries of docs/protocol.md §12 (each spec's `release_sample`), keyed by our source names."""
    return {name: spec.release_sample() for name, spec in SOURCES.items()}


def release_image_paths(source: str, entry: dict[str, Any]) -> list[str]:
    """Every image file the release would hold for an entry."""
    return SOURCES[source].release_images(Entry.from_json(entry, f"{source} sample id {entry.get('id')}"))


def synthetic_image(path: str, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small image whose colours derive from its path, so every frame differs; format from the extension."""
    from PIL import Image, ImageDraw

    digest = hashlib.sha256(path.encode()).digest()
    image = Image.new("RGB", size, tuple(digest[:3]))
    draw = ImageDraw.Draw(image)
    draw.rectangle([size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2], fill=tuple(digest[3:6]))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG" if path.lower().endswith((".jpg", ".jpeg")) else "PNG")
    return buffer.getvalue()


def write_release(
    data_dir: Path | str, entries: dict[str, list[dict[str, Any]]], sizes: Mapping[str, tuple[int, int]] | None = None,
) -> Path:
    """Write `<Name>_preprocessed.jsonl` files and every image they reference under `data_dir`.

    Images are `release_image_size` of their source's spec, or `sizes[source]` where given."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    for source, records in entries.items():
        spec = SOURCES[source]
        size = (sizes or {}).get(source, spec.release_image_size)
        name = spec.official_name
        with open(data_dir / f"{name}_preprocessed.jsonl", "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record) + "\n")
        for record in records:
            for path in release_image_paths(source, record):
                target = data_dir / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(synthetic_image(path, size))
    return data_dir


def write_sample_release(data_dir: Path | str) -> Path:
    return write_release(data_dir, golden_entries())
