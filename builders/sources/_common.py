"""Helpers shared by the raw sources: candidate categories, frame readers, sample pictures, image encoding."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Sequence

from ..scenarios import EntryError

NUM_CATEGORIES = 4
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def sentence(text: str) -> str:
    """The paper's option/category style: sentence-capitalised, one trailing period ("Great_pyrenees.")."""
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:].lower() + "."


def choose_categories(
    rng: random.Random, answer: str, hard: Sequence[str], others: Sequence[str] = (), k: int = NUM_CATEGORIES
) -> list[str]:
    """`answer` plus k-1 distinct negatives, hard ones first (random among them), then `others`; shuffled."""
    negatives: list[str] = []
    for pool in (hard, others):
        candidates = sorted({c for c in pool if c != answer and c not in negatives})
        rng.shuffle(candidates)
        negatives.extend(candidates[: k - 1 - len(negatives)])
    if len(negatives) < k - 1:
        raise EntryError(f"only {len(negatives)} negative categories for {answer!r}; need {k - 1}")
    categories = [answer, *negatives]
    rng.shuffle(categories)
    return categories


class MappedFrameReader:
    """Serves an entry's template paths from the files they stand for (native names need not fit a template).

    `files` maps each path the scenario asks for to a real file under `root`; the frame keeps the template
    path as its name. A path outside the map is a bug in the builder, reported with the record named.
    """

    def __init__(self, root: Path, files: dict[str, str]):
        self.root, self.files = Path(root), files

    def origin(self, path: str) -> str:
        real = self.files.get(path)
        return str(self.root / real) if real is not None else path

    def read(self, path: str, where: str) -> bytes:
        real = self.files.get(path)
        if real is None:
            raise EntryError(f"{where}: no file stands for frame {path!r}")
        full = self.root / real
        try:
            return full.read_bytes()
        except FileNotFoundError:
            raise EntryError(f"{where}: missing image file {full}") from None


class FileReader:
    """Reads template paths under `root`. The paths come from the builder's own listing of `root`, so a plain
    join is enough (no `resolve()`: it costs a syscall per path component on every frame)."""

    def __init__(self, root: Path, origins: dict[str, str] | None = None):
        self.root = str(root)
        self.origins = origins or {}  # {file name: where it came from}, e.g. the archive member it was extracted from

    def origin(self, path: str) -> str:
        full = os.path.join(self.root, path)
        source = self.origins.get(os.path.basename(path))
        return f"{source} (extracted to {full})" if source else full

    def read(self, path: str, where: str) -> bytes:
        if path.startswith("/") or ".." in path.split("/"):
            raise EntryError(f"{where}: image path {path!r} leaves {self.root}")
        full = os.path.join(self.root, path)
        try:
            with open(full, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise EntryError(f"{where}: missing image file {full}") from None


class MemoryReader:
    """Serves frames a builder generated in memory (e.g. corruptions), by template path."""

    def __init__(self, frames: dict[str, bytes], made_from: str = ""):
        self.frames, self.made_from = frames, made_from

    def origin(self, path: str) -> str:
        return f"{path} (generated from {self.made_from})" if self.made_from else path

    def read(self, path: str, where: str) -> bytes:
        try:
            return self.frames[path]
        except KeyError:
            raise EntryError(f"{where}: no generated frame {path!r}") from None


def read_text(path: Path) -> str:
    """A small text file the user provides (CSV, JSON), decoded as UTF-8; a failure names the file."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise EntryError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8") from None
    except OSError as error:
        raise EntryError(f"{path}: cannot read: {error.strerror}") from None


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


# --- sample pictures: cheap procedural scenes, so samples look like photos rather than flat colours -----


def encode(image, fmt: str, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    if fmt.upper() in ("JPEG", "JPG"):
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    else:
        image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def scene(rng: random.Random, size: tuple[int, int], horizon: float = 0.6):
    """A table-top/room-like background: two soft gradients, a horizon, texture noise."""
    import numpy as np
    from PIL import Image

    width, height = size
    top = np.array([rng.randint(120, 230) for _ in range(3)], dtype=np.float32)
    bottom = np.array([rng.randint(60, 160) for _ in range(3)], dtype=np.float32)
    ground = np.array([rng.randint(70, 150), rng.randint(40, 110), rng.randint(20, 80)], dtype=np.float32)
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    pixels = top * (1 - ys) + bottom * ys
    pixels = np.broadcast_to(pixels, (height, width, 3)).copy()
    line = int(height * horizon)
    pixels[line:] = ground * (0.85 + 0.3 * ys[line:])
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype("uint8"))


def draw_object(draw, rng: random.Random, box: tuple[int, int, int, int], shape: str | None = None) -> None:
    """A coloured object with a highlight and an outline: an ellipse, a box or a bottle-like shape."""
    shape = shape or rng.choice(["ellipse", "box", "bottle"])
    colour = tuple(rng.randint(30, 240) for _ in range(3))
    left, top, right, bottom = box
    if shape == "ellipse":
        draw.ellipse(box, fill=colour, outline=(20, 20, 20), width=2)
    elif shape == "box":
        draw.rounded_rectangle(box, radius=max(2, (right - left) // 8), fill=colour, outline=(20, 20, 20), width=2)
    else:
        neck = (left + (right - left) // 3, top, right - (right - left) // 3, top + (bottom - top) // 3)
        draw.rectangle(neck, fill=colour, outline=(20, 20, 20))
        draw.rounded_rectangle((left, neck[3], right, bottom), radius=4, fill=colour, outline=(20, 20, 20), width=2)
    shine = tuple(min(255, c + 60) for c in colour)
    draw.ellipse((left + (right - left) // 5, top + (bottom - top) // 5, left + (right - left) // 3,
                  top + (bottom - top) // 3), fill=shine)


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)

