"""ChangeIt from the repository's annotations plus the videos a user downloaded (or frames they extracted).

Accepted layout (`--raw-dir`, or its `ChangeIt/` subfolder), as in github.com/soCzech/ChangeIt:

    categories.csv                       DIR_NAME,ACTION_NAME,CENTERING_PARAM (header)
    videos/<category>.csv                <youtube id>,<relevance> (no header; not needed by the build)
    annotations/<category>/<id>.fps1.csv <second>,<label> (no header; 0 background, 1 state 1, 2 action, 3 state 2)
    and, per annotated video, the first of:
    frames/<category>/<id>/<second>.jpg  frames extracted at 1 fps, unpadded second numbers (kept byte-exact)
    downloads/<category>/<id>.<ext>      the README's youtube-dl layout (mp4, webm, mkv, avi, mov)
    videos/<category>/<id>.<ext>

Annotated videos without any of these are listed as dropped in the build report (YouTube videos disappear).
Videos are decoded with OpenCV at one frame per annotated second (the frame in the middle of the second) and
stored as JPEG (quality 90).

Each annotated video gives two episodes (the paper's two question types): an object question (the object is
visible once a state or action label starts) and an action question (label 2). A question qualifies when its
first relevant segment [a, b] starts after second 0; the others are listed as dropped. The episode starts at
second 0; the seed picks how many waits k (1..MAX_WAITS) lead into the segment, step_size = ceil(a / k), so k
waits land on second k * step_size inside [a, b], which is the reference frame; max_steps = k + 2 leaves room for
one detour. The 4 categories are the answer plus 3 random other categories of categories.csv (objects are the
DIR_NAMEs, actions the ACTION_NAMEs). Only the annotated (test) videos have labels, so there is no train split
(the paper trains on QuickDraw and COCO only).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from proactivebench.seeding import rng_for

from ..official import DirFrameReader
from ..raw import BuildConfig, RawSource, WorkItem, register
from ..build_runner import ItemDropped
from ..scenarios import Entry, EntryError
from proactivebench.sources.changeit import REWIND
from ._common import choose_categories, read_text, sentence

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov")
LABELS = {0: "background/noannotation", 1: "state1", 2: "action", 3: "state2"}
MAX_WAITS = 4
JPEG_QUALITY = 90

ABSTAIN = ("I cannot answer this question.", "I cannot tell.", "I do not know.")


@dataclass(frozen=True)
class QuestionType:
    name: str
    relevant: frozenset[int]  # labels whose frames answer the question
    wait_option: str  # must start with "Wait for the" (the reference's FORWARD key and pruning)
    questions: tuple[str, ...]


QUESTION_TYPES = (
    QuestionType(
        "object", frozenset({1, 2, 3}), "Wait for the object to appear.",
        (  # [paper] 15 object questions
            "What object is shown in the video?",
            "Which object is the video about?",
            "What object is the person working with?",
            "What is the main object in this video?",
            "Which item is being handled in the video?",
            "What object does this video show?",
            "Which object will be changed in this video?",
            "What is the object of interest in this video?",
            "Can you name the object in the video?",
            "What object is being prepared?",
            "Which object appears in this clip?",
            "What kind of object is used in this video?",
            "What is the person going to work on?",
            "Which thing is manipulated in the video?",
            "What object is featured in this clip?",
        ),
    ),
    QuestionType(
        "action", frozenset({2}), "Wait for the action to start.",
        (  # [paper] 11 action questions
            "What action is being performed in the video?",
            "What is the person doing in this video?",
            "Which activity is shown in this video?",
            "What task is carried out in this clip?",
            "What action does this video show?",
            "What is happening in this video?",
            "Which action is the person performing?",
            "What kind of activity is this?",
            "Can you name the action in this video?",
            "What is being done in this clip?",
            "What procedure does the video show?",
        ),
    ),
)


def category_text(name: str) -> str:
    """The paper's style from a DIR_NAME or ACTION_NAME: boil_milk → "Boil milk."."""
    return sentence(name.replace("_", " "))


@dataclass(frozen=True)
class Category:
    dir_name: str
    action_name: str


def read_categories(root: Path) -> list[Category]:
    path = root / "categories.csv"
    with io.StringIO(read_text(path), newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"DIR_NAME", "ACTION_NAME"} - set(reader.fieldnames or ())
        if missing:
            raise EntryError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        result = []
        for number, row in enumerate(reader, start=2):
            if None in row or not row.get("DIR_NAME") or not row.get("ACTION_NAME"):
                raise EntryError(f"{path}:{number}: malformed CSV line {row!r}")
            result.append(Category(row["DIR_NAME"].strip(), row["ACTION_NAME"].strip()))
    if len(result) < 4:
        raise EntryError(f"{path}: {len(result)} categories; 4 per question need at least 4")
    return result


def read_labels(path: Path) -> list[int]:
    """Per-second labels of a `.fps1.csv`; `EntryError` naming file and line when a line is malformed."""
    labels: list[int] = []
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row:
                continue
            try:
                second, label = (int(v) for v in row)
            except ValueError:
                text = ",".join(row)
                raise EntryError(f"{path}:{number}: malformed CSV line {text!r}; expected <second>,<label>") from None
            if second != len(labels) or label not in LABELS:
                raise EntryError(f"{path}:{number}: malformed CSV line {','.join(row)!r}; expected second "
                                 f"{len(labels)} and a label in 0..3")
            labels.append(label)
    if not labels:
        raise EntryError(f"{path}: empty annotation")
    return labels


def first_segment(labels: list[int], relevant: frozenset[int]) -> tuple[int, int] | None:
    start = next((i for i, label in enumerate(labels) if label in relevant), None)
    if start is None:
        return None
    end = start
    while end + 1 < len(labels) and labels[end + 1] in relevant:
        end += 1
    return start, end


def plan_walk(segment: tuple[int, int], rng) -> tuple[int, int]:
    """(waits, step_size) such that `waits` steps from second 0 land inside the segment."""
    a, b = segment
    feasible = [k for k in range(1, MAX_WAITS + 1) if k <= a and k * math.ceil(a / k) <= b]
    waits = rng.choice(feasible)  # k = 1 is always feasible
    return waits, math.ceil(a / waits)


def walk_seconds(waits: int, step: int, length: int) -> set[int]:
    """Every second a walk can show within its turn budget (max_steps = waits + 2)."""
    return {k * step for k in range(waits + 2) if k * step < length}


def decode_seconds(path: Path, seconds: set[int], where: str) -> dict[int, bytes]:
    """JPEG bytes of the frame in the middle of each second, in one sequential pass (seeking is unreliable)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise EntryError(f"{where}: cannot open video {path}")
        fps = capture.get(cv2.CAP_PROP_FPS)
        if not fps or fps <= 0 or math.isnan(fps):
            raise EntryError(f"{where}: video {path} has no frame rate")
        wanted = {int((s + 0.5) * fps): s for s in seconds}
        result: dict[int, bytes] = {}
        index = 0
        while len(result) < len(seconds):
            if not capture.grab():
                missing = min(s for s in seconds if s not in result)
                raise EntryError(f"{where}: video {path} ends after {index} frames ({index / fps:.1f} s) but "
                                 f"second {missing} is needed")
            if index in wanted:
                ok, frame = capture.retrieve()
                if not ok:
                    raise EntryError(f"{where}: video {path}: frame {index} does not decode")
                ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise EntryError(f"{where}: video {path}: frame {index} cannot be encoded")
                result[wanted[index]] = data.tobytes()
            index += 1
        return result
    finally:
        capture.release()


class VideoFrames:
    """The FrameReader of one video: `<prefix>/<second>.jpg` → JPEG bytes, decoded together on first use.

    A video serves two episodes (object and action question), built one after the other: the first decodes
    the seconds of both walks (`shared`) and leaves them in `_DECODED`, so the second reuses them instead of
    decoding the video again. A frame's bytes do not depend on which other seconds were decoded with it.
    """

    def __init__(self, video: Path, template: str, seconds: set[int], shared: set[int] = frozenset()):
        self.video, self.template, self.seconds = video, template, set(seconds)
        self.shared = self.seconds | set(shared)
        self.cache: dict[str, bytes] | None = None

    def origin(self, path: str) -> str:
        second = next((s for s in self.seconds if self.template.format(image=str(s)) == path), None)
        return f"{self.video} (second {second})" if second is not None else str(self.video)

    def read(self, path: str, where: str) -> bytes:
        if self.cache is None:
            decoded = self._decode(where)
            self.cache = {self.template.format(image=str(s)): decoded[s] for s in self.seconds}
        if path not in self.cache:
            raise EntryError(f"{where}: frame {path!r} was not planned for {self.video}")
        return self.cache[path]

    def _decode(self, where: str) -> dict[int, bytes]:
        try:
            stat = self.video.stat()
        except OSError:
            raise EntryError(f"{where}: cannot open video {self.video}") from None
        key = (str(self.video), stat.st_size, stat.st_mtime_ns)  # a video replaced in place is decoded again
        cached = _DECODED.get(key)
        if cached is not None and self.seconds <= cached.keys():
            return cached
        try:
            decoded = decode_seconds(self.video, self.shared, where)
        except EntryError:
            if self.shared == self.seconds:
                raise
            # The other walk's seconds fail (e.g. a video shorter than its annotation): this episode's own
            # seconds decide, exactly as if it were decoded alone.
            decoded = decode_seconds(self.video, self.seconds, where)
        _DECODED.clear()  # one video at a time: memory stays flat
        _DECODED[key] = decoded
        return decoded


# The last decoded video's frames, {(path, size, mtime): {second: JPEG bytes}}, per process (see VideoFrames).
_DECODED: dict[tuple[str, int, int], dict[int, bytes]] = {}


@dataclass(frozen=True)
class Candidate:
    category: Category
    video_id: str
    annotation: str  # relative to the root
    media: str  # relative to the root: a video file or a frames folder
    question_type: str
    index: int  # of the annotated video, over all categories: ids are 2 * index + question type


class ChangeItSource(RawSource):
    name = "changeit"
    LAYOUTS = (".", "ChangeIt", "changeit")

    def locate(self, raw_dir: Path) -> Path:
        for sub in self.LAYOUTS:
            candidate = raw_dir / sub
            if (candidate / "categories.csv").is_file() and (candidate / "annotations").is_dir():
                return candidate.resolve()
        raise EntryError(f"{raw_dir}: no ChangeIt folder; expected categories.csv and annotations/ in it or in "
                         "its ChangeIt/ folder")

    def find_media(self, root: Path, category: str, video_id: str) -> Path | None:
        frames = root / "frames" / category / video_id
        if frames.is_dir():
            return frames
        for folder in ("downloads", "videos"):
            for extension in VIDEO_EXTENSIONS:
                path = root / folder / category / f"{video_id}{extension}"
                if path.is_file():
                    return path
        return None

    def items(self, root: Path, config: BuildConfig) -> Iterator[WorkItem]:
        if config.split != "test":
            raise EntryError("changeit has only a test split: its labels exist for the test videos alone, and the "
                             "paper's GRPO data comes from QuickDraw and COCO")
        index = 0
        for category in read_categories(root):
            for annotation in sorted((root / "annotations" / category.dir_name).glob("*.fps1.csv")):
                video_id = annotation.name[: -len(".fps1.csv")]
                media = self.find_media(root, category.dir_name, video_id)
                for question_type in QUESTION_TYPES:
                    yield WorkItem(
                        f"{category.dir_name}/{video_id}/{question_type.name}",
                        Candidate(category, video_id, annotation.relative_to(root).as_posix(),
                                  media.relative_to(root).as_posix() if media else "", question_type.name, index),
                    )
                index += 1

    def to_entry(self, root: Path, item: WorkItem, config: BuildConfig):
        c: Candidate = item.payload
        where = f"{root / c.annotation}"
        if not c.media:  # YouTube videos disappear: a rule, not bad input
            raise ItemDropped(f"{where}: no video under downloads/ or videos/ and no frames/ folder")
        qtype_number, qtype = next((i, q) for i, q in enumerate(QUESTION_TYPES) if q.name == c.question_type)
        labels = read_labels(root / c.annotation)
        segment = first_segment(labels, qtype.relevant)
        if segment is None or segment[0] == 0:  # the first frame must not answer the question yet
            state = "never labelled" if segment is None else "labelled from second 0"
            raise ItemDropped(f"{where}: the {qtype.name} is {state}")
        rng = rng_for(config.seed, self.name, c.category.dir_name, c.video_id, qtype.name)
        waits, step = plan_walk(segment, rng)
        max_steps = waits + 2
        seconds = walk_seconds(waits, step, len(labels))
        names = [x.dir_name if qtype.name == "object" else x.action_name for x in _categories(root)]
        answer_name = c.category.dir_name if qtype.name == "object" else c.category.action_name
        categories = choose_categories(rng, category_text(answer_name), (), [category_text(n) for n in names])
        options = [REWIND, qtype.wait_option, rng.choice(ABSTAIN)]
        rng.shuffle(options)
        media = root / c.media
        if media.is_dir():
            template, reader = f"{c.media}/{{image}}.jpg", DirFrameReader(root)
        else:
            template = f"changeit/{c.category.dir_name}/{c.video_id}/{{image}}.jpg"
            reader = VideoFrames(media, template, seconds, self._all_walks_seconds(labels, c, config))
        entry = Entry(
            id=2 * c.index + qtype_number,
            image_template=template,
            first_image=0,
            num_images=len(labels),
            reference_image=waits * step,
            prompt=rng.choice(qtype.questions),
            options=options,
            categories=categories,
            answer=category_text(answer_name),
            extra={
                "step_size": step, "max_steps": max_steps, "question_type": qtype.name,
                "category": c.category.dir_name, "video_id": c.video_id, "annotation": c.annotation,
                "media": c.media, "segment": list(segment), "frame_rate": "1 frame per annotated second",
            },
            where=where,
        )
        return entry, reader

    def _all_walks_seconds(self, labels: list[int], c: Candidate, config: BuildConfig) -> set[int]:
        """The seconds every question of this video shows, so that one decoding serves both episodes."""
        seconds: set[int] = set()
        for qtype in QUESTION_TYPES:
            segment = first_segment(labels, qtype.relevant)
            if segment is None or segment[0] == 0:
                continue
            # plan_walk is the first draw of the question's generator, as in to_entry
            rng = rng_for(config.seed, self.name, c.category.dir_name, c.video_id, qtype.name)
            seconds |= walk_seconds(*plan_walk(segment, rng), len(labels))
        return seconds

    def write_sample(self, out: Path, per_source: int, seed: int) -> None:
        """`per_source` annotated videos, two episodes each (object and action question)."""
        write_changeit_sample(out, max(1, per_source), seed)


@lru_cache(maxsize=8)
def _categories(root: Path) -> tuple[Category, ...]:
    return tuple(read_categories(root))


# --- sample data: the repository's CSVs and short videos written with OpenCV --------------------------------

SAMPLE_CATEGORIES = (
    ("apple", "Apple Peeling/Cutting", "0.309"),
    ("avocado", "Avocado Cutting", "0.247"),
    ("bacon", "Bacon Frying", "0.412"),
    ("candle", "Candle Lighting", "0.356"),
    ("onion", "Onion Chopping", "0.288"),
)
SAMPLE_FPS = 4
SAMPLE_SIZE = (128, 96)  # width, height
YOUTUBE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _sample_labels(rng) -> list[int]:
    """Background, state 1, action, state 2, background: the shape of a ChangeIt annotation."""
    lengths = [rng.randint(2, 5), rng.randint(1, 3), rng.randint(2, 4), rng.randint(1, 3), rng.randint(1, 2)]
    return [label for label, n in zip((0, 1, 2, 3, 0), lengths) for _ in range(n)]


def _write_video(path: Path, labels: list[int], rng) -> None:
    """A table seen from above: the object enters in state 1, a knife works on it, it ends cut in two."""
    import cv2
    import numpy as np

    w, h = SAMPLE_SIZE
    noise = np.random.default_rng(rng.randrange(2**32))
    table = np.array([rng.randint(60, 110), rng.randint(90, 140), rng.randint(130, 190)], dtype=float)  # BGR
    shade = np.linspace(0.8, 1.15, w)[None, :, None]
    colour = tuple(rng.randint(30, 220) for _ in range(3))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), SAMPLE_FPS, (w, h))
    try:
        for second, label in enumerate(labels):
            for tick in range(SAMPLE_FPS):
                frame = np.clip(table * shade + noise.normal(0, 5, (h, w, 3)), 0, 255).astype(np.uint8)
                centre = (w // 2 + rng.randint(-1, 1), h // 2 + rng.randint(-1, 1))
                if label in (1, 2):
                    cv2.ellipse(frame, centre, (22, 18), 0, 0, 360, colour, -1)
                    cv2.ellipse(frame, centre, (22, 18), 0, 0, 360, (20, 20, 20), 1)
                if label == 2:  # the knife moves across the object
                    progress = ((second - labels.index(2)) * SAMPLE_FPS + tick) / (SAMPLE_FPS * labels.count(2))
                    x = centre[0] - 30 + round(60 * progress)
                    cv2.rectangle(frame, (x - 2, 10), (x + 2, h - 30), (200, 200, 205), -1)
                    cv2.rectangle(frame, (x - 4, h - 30), (x + 4, h - 8), (30, 40, 70), -1)
                if label == 3:
                    for dx in (-14, 14):
                        cv2.ellipse(frame, (centre[0] + dx, centre[1]), (10, 17), 0, 0, 360, colour, -1)
                writer.write(frame)
    finally:
        writer.release()


def write_changeit_sample(out: Path, videos: int, seed: int) -> None:
    """The repository's files (categories.csv, labels.csv, videos/*.csv, annotations/) for `videos` annotated
    videos spread over the categories, with their videos under downloads/<category>/<id>.mp4."""
    rng = rng_for(seed, "changeit-sample")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "categories.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["DIR_NAME", "ACTION_NAME", "CENTERING_PARAM"])
        writer.writerows(SAMPLE_CATEGORIES)
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["LABEL_ID", "MEANING"])
        writer.writerows(LABELS.items())
    annotated = {name: 0 for name, _, _ in SAMPLE_CATEGORIES}
    for k in range(videos):
        annotated[SAMPLE_CATEGORIES[k % len(SAMPLE_CATEGORIES)][0]] += 1
    for name, _, _ in SAMPLE_CATEGORIES:
        ids = ["".join(rng.choice(YOUTUBE_ALPHABET) for _ in range(11)) for _ in range(annotated[name] + 3)]
        (out / "videos").mkdir(exist_ok=True)
        with open(out / "videos" / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([video_id, f"{rng.uniform(0.2, 0.9):.3f}"] for video_id in ids)
        for video_id in ids[: annotated[name]]:  # only the test videos are annotated and downloaded here
            labels = _sample_labels(rng)
            (out / "annotations" / name).mkdir(parents=True, exist_ok=True)
            with open(out / "annotations" / name / f"{video_id}.fps1.csv", "w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerows(enumerate(labels))
            (out / "downloads" / name).mkdir(parents=True, exist_ok=True)
            _write_video(out / "downloads" / name / f"{video_id}.mp4", labels, rng)


register(ChangeItSource())
