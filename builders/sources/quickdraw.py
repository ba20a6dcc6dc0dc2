"""QuickDraw from Google's simplified ndjson download: one file per category, drawings rendered stroke by stroke.

Accepted layout (`--raw-dir`): a folder of `<word>.ndjson` files (the bucket's `full/simplified/` names) or of
`full_simplified_<word>.ndjson` files (the web console's names), either directly or under `full/simplified/`.

Split rule, per category file, in file order: the *eligible* drawings (recognized, at least two strokes, well
formed) are numbered 0, 1, 2, ...; the test split takes numbers 0..TEST_PER_CLASS-1, the train split the next
TRAIN_PER_CLASS. So the two splits never share a drawing (`key_id`) and neither depends on the seed. A malformed
line is reported (as a failed item) by the split whose stretch of the file holds it. Only the head of each file
is read, so the full 50M-drawing download costs seconds.

An episode shows the drawing growing: frame k holds the first strokes up to step k (one step per stroke, at most
MAX_FRAMES steps, grouped evenly beyond that), the complete drawing is the last frame and the reference. Frames
are rendered here (black on white, 256 px, PNG). The 4 categories are the answer plus 3 other categories of the
download (random, as in the paper), so a download needs at least 4 category files.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from proactivebench.seeding import rng_for

from ..raw import BuildConfig, RawSource, WorkItem, register
from ..build_runner import ItemDropped
from ..scenarios import Entry, EntryError
from ._common import choose_categories, sentence

SUFFIX = ".ndjson"
CONSOLE_PREFIX = "full_simplified_"
TEST_PER_CLASS = 10  # the paper: 10 samples per class
# The paper's GRPO data holds ~17k single-turn QuickDraw examples, ~5 states each: ~10 drawings per class.
TRAIN_PER_CLASS = 10
MIN_STROKES = 2  # one stroke gives a single, already complete frame: nothing to ask for
MAX_FRAMES = 8
CANVAS = 256
MARGIN = 8
LINE_WIDTH = 3
MAX_INT64 = 2**63 - 1

QUESTIONS = (
    "What is depicted in this drawing?",
    "What object does this sketch represent?",
    "What is this drawing of?",
    "Which object is being drawn here?",
    "What does this sketch show?",
    "Can you tell what this drawing is?",
    "What is the subject of this sketch?",
    "What is the person trying to draw?",
    "Which category does this drawing belong to?",
    "What thing is illustrated in this sketch?",
)
# [paper] 13 proactive options; each holds exactly one of the reference's DETAILS keys (details, quickdraw,
# drawing, sketch), because the reference's parser asserts on two (docs/protocol.md §10.9).
PROACTIVE = (
    "Make this drawing more complete.",
    "Add more strokes to the drawing.",
    "Please finish the sketch.",
    "Complete the drawing.",
    "Continue the sketch.",
    "Add more details.",
    "Keep drawing.",
    "Draw more of the sketch.",
    "Show me a more complete drawing.",
    "Let the artist add more details.",
    "Extend the quickdraw with more strokes.",
    "Show a later stage of the sketch.",
    "Wait until the drawing is finished.",
)
ABSTAIN = (
    "I cannot answer this question.",
    "I cannot tell.",
    "I do not know what this is.",
)



@dataclass(frozen=True)
class Drawing:
    key_id: int
    word: str
    countrycode: str
    recognized: bool
    strokes: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]


def parse_drawing(line: str, word: str, where: str) -> Drawing:
    """One ndjson record, checked; an `EntryError` naming `where` (file:line) when it is malformed."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise EntryError(f"{where}: malformed ndjson line: {error.msg} (column {error.colno})") from None
    if not isinstance(record, dict):
        raise EntryError(f"{where}: malformed ndjson line: expected a JSON object")
    key_id = record.get("key_id")
    if not (isinstance(key_id, str) and key_id.isdigit() and int(key_id) <= MAX_INT64):
        raise EntryError(f"{where}: malformed ndjson line: bad key_id {key_id!r}")
    if record.get("word") != word:
        raise EntryError(f"{where}: word {record.get('word')!r} does not match the file's category {word!r}")
    drawing = record.get("drawing")
    if not isinstance(drawing, list):
        raise EntryError(f"{where}: malformed ndjson line: 'drawing' should be a list of strokes")
    strokes = []
    for number, stroke in enumerate(drawing):
        # simplified: [xs, ys]; raw also has a third list of times, which is ignored
        ok = isinstance(stroke, list) and len(stroke) in (2, 3)
        ok = ok and all(isinstance(c, list) for c in stroke) and len(stroke[0]) == len(stroke[1]) > 0
        ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for c in stroke[:2] for v in c)
        if not ok:
            raise EntryError(f"{where}: malformed ndjson line: stroke {number} is not [[x...], [y...]]")
        strokes.append((tuple(int(round(v)) for v in stroke[0]), tuple(int(round(v)) for v in stroke[1])))
    return Drawing(int(key_id), word, str(record.get("countrycode", "")), record.get("recognized") is True,
                   tuple(strokes))


def eligible(drawing: Drawing) -> bool:
    return drawing.recognized and len(drawing.strokes) >= MIN_STROKES


def frame_stroke_counts(n_strokes: int) -> list[int]:
    """How many strokes each frame shows: 1, 2, ..., n, or MAX_FRAMES even groups ending at n."""
    if n_strokes <= MAX_FRAMES:
        return list(range(1, n_strokes + 1))
    return [round(n_strokes * (k + 1) / MAX_FRAMES) for k in range(MAX_FRAMES)]


def render(strokes, count: int) -> bytes:
    """The first `count` strokes, black on a white CANVAS px square, as PNG (deterministic bytes)."""
    from PIL import Image, ImageDraw

    scale = (CANVAS - 2 * MARGIN) / 255
    image = Image.new("L", (CANVAS, CANVAS), 255)
    draw = ImageDraw.Draw(image)
    for xs, ys in strokes[:count]:
        points = [(MARGIN + x * scale, MARGIN + y * scale) for x, y in zip(xs, ys)]
        if len(points) == 1:
            (x, y), r = points[0], LINE_WIDTH / 2
            draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
        else:
            draw.line(points, fill=0, width=LINE_WIDTH, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class RenderedFrames:
    """The FrameReader of one drawing: frame paths → PNG bytes, rendered on first use."""

    def __init__(self, template: str, drawing: Drawing):
        self.counts = frame_stroke_counts(len(drawing.strokes))
        self.paths = {template.format(image=str(i).zfill(4)): c for i, c in enumerate(self.counts)}
        self.strokes = drawing.strokes

    def read(self, path: str, where: str) -> bytes:
        if path not in self.paths:
            raise EntryError(f"{where}: no rendered frame {path!r}")
        return render(self.strokes, self.paths[path])


@dataclass(frozen=True)
class Candidate:
    """A work item's payload: the line of one drawing (parsed in `to_entry`, where errors are reported)."""

    word: str
    file: str  # relative to the root
    line_number: int  # 0: the item stands for the whole file, which holds no eligible drawing
    line: str
    empty: bool = False  # (line_number 0) the file has no line at all: a broken download


def word_of(path: Path) -> str:
    stem = path.name[: -len(SUFFIX)]
    return stem[len(CONSOLE_PREFIX):] if stem.startswith(CONSOLE_PREFIX) else stem


class QuickDrawSource(RawSource):
    name = "quickdraw"
    LAYOUTS = (".", "full/simplified", "simplified", "quickdraw", "QuickDraw")

    def locate(self, raw_dir: Path) -> Path:
        for sub in self.LAYOUTS:
            candidate = raw_dir / sub
            if candidate.is_dir() and any(candidate.glob(f"*{SUFFIX}")):
                return candidate.resolve()
        raise EntryError(
            f"{raw_dir}: no QuickDraw files; expected <word>.ndjson or full_simplified_<word>.ndjson files "
            "(the simplified download) in it or in its full/simplified/ folder"
        )

    def category_files(self, root: Path) -> dict[str, Path]:
        files: dict[str, Path] = {}
        for path in sorted(root.glob(f"*{SUFFIX}")):
            if not path.is_file():  # a folder of that name, or a link that loops or leads nowhere
                raise EntryError(f"{path}: not a readable file (a folder, or a link that loops or is broken)")
            word = word_of(path)
            if word in files:
                raise EntryError(f"{path}: category {word!r} also comes from {files[word].name}")
            files[word] = path
        if len(files) < 4:
            raise EntryError(f"{root}: found {len(files)} category file(s); 4 categories per question need >= 4")
        return files

    def items(self, root: Path, config: BuildConfig) -> Iterator[WorkItem]:
        start = 0 if config.split == "test" else TEST_PER_CLASS
        stop = TEST_PER_CLASS if config.split == "test" else TEST_PER_CLASS + TRAIN_PER_CLASS
        for word, path in self.category_files(root).items():
            yield from self._file_items(root, word, path, start, stop)

    def _file_items(self, root: Path, word: str, path: Path, start: int, stop: int) -> Iterator[WorkItem]:
        """Candidates numbered start..stop-1 among the eligible drawings, and the malformed lines in that stretch."""
        rank = 0  # eligible drawings seen so far
        lines = 0
        relative = path.relative_to(root).as_posix()
        try:
            handle = open(path, encoding="utf-8", errors="replace")
        except OSError as error:
            raise EntryError(f"{path}: cannot read: {error.strerror}") from None
        with handle:
            for number, line in enumerate(handle, start=1):
                if rank >= stop:
                    return
                lines += line.strip() != ""
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                item = WorkItem(f"{relative}:{number}", Candidate(word, relative, number, line))
                try:
                    drawing = parse_drawing(line, word, where)
                except EntryError:
                    if rank >= start:
                        yield item  # `to_entry` raises the same error, so the runner fails or records it
                    continue
                if eligible(drawing):
                    if rank >= start:
                        yield item
                    rank += 1
        if rank == 0:  # the whole file was read: the class would vanish from the build without a word
            yield WorkItem(relative, Candidate(word, relative, 0, "", empty=lines == 0))

    def to_entry(self, root: Path, item: WorkItem, config: BuildConfig):
        candidate: Candidate = item.payload
        if candidate.line_number == 0:
            if candidate.empty:
                raise EntryError(f"{root / candidate.file}: empty file: category {candidate.word!r} has no drawing")
            raise ItemDropped(f"{root / candidate.file}: no eligible drawing (recognized, {MIN_STROKES}+ strokes) "
                              f"for category {candidate.word!r}")
        where = f"{root / candidate.file}:{candidate.line_number}"
        drawing = parse_drawing(candidate.line, candidate.word, where)
        rng = rng_for(config.seed, self.name, drawing.key_id)
        # [paper] random other classes as negatives
        others = [sentence(w) for w in _words(root)]
        categories = choose_categories(rng, sentence(drawing.word), (), others)
        options = [rng.choice(PROACTIVE), rng.choice(ABSTAIN)]
        rng.shuffle(options)
        template = f"quickdraw/{drawing.word}/{drawing.key_id}/{{image}}.png"
        reader = RenderedFrames(template, drawing)
        entry = Entry(
            id=drawing.key_id,
            image_template=template,
            first_image=0,
            num_images=len(reader.counts),
            reference_image=len(reader.counts) - 1,
            prompt=rng.choice(QUESTIONS),
            options=options,
            categories=categories,
            answer=sentence(drawing.word),
            extra={
                "key_id": str(drawing.key_id), "word": drawing.word, "countrycode": drawing.countrycode,
                "num_strokes": len(drawing.strokes), "strokes_per_frame": reader.counts,
                "file": candidate.file, "line": candidate.line_number, "split": config.split,
            },
            where=where,
        )
        return entry, reader

    def write_sample(self, out: Path, per_source: int, seed: int) -> None:
        """5 category files; the test split always takes 10 drawings per class, so `per_source` more per class
        feed the train split."""
        write_ndjson_sample(out, TEST_PER_CLASS + max(1, per_source), seed)


@lru_cache(maxsize=8)
def _words(root: Path) -> tuple[str, ...]:
    return tuple(QuickDrawSource().category_files(root))


# --- sample data: the native layout with stroke drawings made from simple templates ------------------------

Stroke = list[tuple[float, float]]


def _arc(cx: float, cy: float, rx: float, ry: float, start: float = 0.0, end: float = 360.0, n: int = 14) -> Stroke:
    import math

    return [(cx + rx * math.cos(math.radians(start + (end - start) * k / (n - 1))),
             cy + ry * math.sin(math.radians(start + (end - start) * k / (n - 1)))) for k in range(n)]


def _template(word: str) -> list[Stroke]:
    """Unit-square strokes in the order a person might draw them."""
    if word == "apple":
        return [_arc(0.5, 0.58, 0.38, 0.36, -80, 250), [(0.5, 0.25), (0.52, 0.05)],
                [(0.53, 0.14), (0.7, 0.05), (0.8, 0.1), (0.62, 0.18), (0.53, 0.14)]]
    if word == "cat":
        return [_arc(0.5, 0.55, 0.38, 0.33), [(0.2, 0.35), (0.22, 0.05), (0.4, 0.24)],
                [(0.6, 0.24), (0.78, 0.05), (0.8, 0.35)], _arc(0.36, 0.5, 0.05, 0.05, n=6),
                _arc(0.64, 0.5, 0.05, 0.05, n=6), [(0.45, 0.66), (0.5, 0.7), (0.55, 0.66)],
                [(0.1, 0.62), (0.38, 0.66)], [(0.62, 0.66), (0.9, 0.62)]]
    if word == "house":
        return [[(0.1, 0.45), (0.1, 1.0), (0.9, 1.0), (0.9, 0.45), (0.1, 0.45)], [(0.05, 0.48), (0.5, 0.05)],
                [(0.5, 0.05), (0.95, 0.48)], [(0.42, 1.0), (0.42, 0.72), (0.58, 0.72), (0.58, 1.0)],
                [(0.18, 0.55), (0.32, 0.55), (0.32, 0.68), (0.18, 0.68), (0.18, 0.55)]]
    if word == "sun":
        rays = [[(0.5 + 0.3 * c, 0.5 + 0.3 * s), (0.5 + 0.48 * c, 0.5 + 0.48 * s)]
                for c, s in ((1, 0), (0.7, 0.7), (0, 1), (-0.7, 0.7), (-1, 0), (-0.7, -0.7), (0, -1), (0.7, -0.7))]
        return [_arc(0.5, 0.5, 0.24, 0.24), *rays]
    if word == "The Eiffel Tower":
        return [[(0.5, 0.0), (0.38, 0.55), (0.15, 1.0)], [(0.5, 0.0), (0.62, 0.55), (0.85, 1.0)],
                [(0.3, 0.75), (0.7, 0.75)], [(0.4, 0.45), (0.6, 0.45)], _arc(0.5, 1.0, 0.15, 0.12, 180, 360, 8)]
    raise KeyError(word)


SAMPLE_WORDS = ("apple", "cat", "house", "sun", "The Eiffel Tower")
COUNTRIES = ("US", "GB", "DE", "BR", "JP", "IT", "FR", "CA", "AE", "IN")


def _simplify(strokes: list[Stroke]) -> list[list[list[int]]]:
    """The simplified format: aligned to the top left, scaled to 0..255, integer points, repeats dropped."""
    xs = [x for s in strokes for x, _ in s]
    ys = [y for s in strokes for _, y in s]
    scale = 255 / max(max(xs) - min(xs), max(ys) - min(ys), 1e-6)
    result = []
    for stroke in strokes:
        points: list[tuple[int, int]] = []
        for x, y in stroke:
            p = (min(255, round((x - min(xs)) * scale)), min(255, round((y - min(ys)) * scale)))
            if not points or points[-1] != p:
                points.append(p)
        result.append([[p[0] for p in points], [p[1] for p in points]])
    return result


def _sample_drawing(word: str, rng) -> list[list[list[int]]]:
    sx, sy, tilt = rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2), rng.uniform(-0.1, 0.1)
    strokes = [[(x * sx + tilt * y + rng.gauss(0, 0.015), y * sy + rng.gauss(0, 0.015)) for x, y in s]
               for s in _template(word)]
    if rng.random() < 0.3:  # people skip details now and then
        strokes = strokes[: max(2, len(strokes) - 1)]
    return _simplify(strokes)


def write_ndjson_sample(out: Path, per_class: int, seed: int) -> None:
    """`<word>.ndjson` files as in the bucket's full/simplified/ folder, `per_class` eligible drawings each,
    with an unrecognized and a one-stroke drawing among them as in the real files."""
    out.mkdir(parents=True, exist_ok=True)
    for word in SAMPLE_WORDS:
        rng = rng_for(seed, "quickdraw-sample", word)
        lines = []
        for number in range(per_class + 2):
            drawing = _sample_drawing(word, rng)
            recognized = number != 3
            if number == 6:
                drawing = drawing[:1]
            record = {
                "word": word, "countrycode": rng.choice(COUNTRIES),
                "timestamp": f"2017-03-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
                             f"{rng.uniform(0, 59.99):08.5f} UTC",
                "recognized": recognized,
                "key_id": str(rng.randrange(4_500_000_000_000_000, 6_700_000_000_000_000)),
                "drawing": drawing,
            }
            lines.append(json.dumps(record, separators=(",", ":")) + "\n")
        (out / f"{word}{SUFFIX}").write_text("".join(lines), encoding="utf-8")


register(QuickDrawSource())
