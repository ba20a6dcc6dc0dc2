"""VSOD (OcclusionDataSet-MM20) from its download → temporal-occlusion episodes (docs/protocol.md §4.2).

Native layout (ICASSP22 `test.py`): `OcclusionDataSet-MM20/Data/<split>/<video>/<frame>.jpg` with one PASCAL-VOC
XML per frame in `Annotations/<split>/<video>/<frame>.xml`; an XML with an `<object>` marks an occluded frame
and its boxes the occluder. `--raw-dir` is the folder holding `OcclusionDataSet-MM20/`, or that folder.

One video = one episode over all its frames (rewind / wait move one frame, wrapping around). It starts on the
frame whose occluder boxes cover the largest share of the picture (the paper starts "fully occluded"); the
reference is the nearest frame without occluder. A video whose largest cover is under `STRONG_COVER` is a weak
occlusion, which the reference loader drops (docs/protocol.md §1.2): it is dropped here too, with its cover in the
report.

The questions (speaker name, number of people, event type) are ProactiveBench's own additions: the raw data
has no identity labels. They come from a labels file the user provides, `labels.csv` in the top folder or in
`--raw-dir`, header `video,question_type,answer`: `video` is `<split>/<video>`, `question_type` one of
`speaker`, `people`, `event`, `answer` the true label (e.g. `Ge you`, `2`, `Interview`). A video without a label
is dropped (reported); the three other categories come from the other labels of the same type, then from a
built-in pool.
"""

from __future__ import annotations

import csv
import io
import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator

from proactivebench.seeding import rng_for

from ..raw import BuildConfig, RawSource, WorkItem, register
from ..build_runner import ItemDropped
from ..scenarios import Entry, EntryError
from ._common import MappedFrameReader, choose_categories, encode, image_files, read_text, scene, sentence

log = logging.getLogger(__name__)

TOP = "OcclusionDataSet-MM20"
LABELS = "labels.csv"
STRONG_COVER = 0.5  # share of the frame the occluder must cover for a strong occlusion
NATIVE_SPLITS = {"test": "test", "train": "train"}

QUESTIONS = {
    "speaker": (
        "Can you say who is speaking?", "Who is speaking in this video?", "Who is the person talking?",
        "Who is the speaker?", "Can you identify the speaker?", "Who is giving the speech?",
        "Which person is talking in the video?", "Who is the person in front of the camera?",
        "Who is addressing the audience?", "Can you recognise who is talking?", "Who is talking right now?",
        "Who is the person being filmed?", "Name the person who is speaking.", "Who is presenting?",
        "Who is the main person in this video?",
    ),
    "people": (
        "How many people are there?", "How many people are in the scene?", "How many persons can you see?",
        "Count the people in the video.", "How many people appear in this frame?", "How many people are present?",
        "What is the number of people in the scene?", "How many individuals are visible?",
        "How many people are standing there?", "How many people are in the room?",
        "How many people are being filmed?", "How many people take part in the scene?",
        "How many people can be seen in the video?", "How many humans are in the picture?",
        "How many people are in front of the camera?",
    ),
    "event": (
        "What kind of event is this?", "What type of event is shown?", "What event is taking place?",
        "What is happening in this video?", "What kind of gathering is this?", "What is the occasion?",
        "What type of scene is this?", "What activity is being recorded?", "What sort of event is filmed?",
        "What is going on in the video?", "What is the setting of this event?", "Which event is this?",
        "What kind of situation is shown?", "What is being recorded?", "What type of gathering is shown?",
    ),
}
POOLS = {
    "speaker": ("Anna li", "Bob ray", "Ge you", "Tom x", "Maria chen", "Liu wei", "Sara kim", "Wang fang"),
    "people": ("1", "2", "3", "4", "5", "6"),
    "event": ("Interview", "Press conference", "Lecture", "Concert", "Wedding", "Sports match", "News report",
              "Street performance"),
}
NUMBER_WORDS = {"1": "One", "2": "Two", "3": "Three", "4": "Four", "5": "Five", "6": "Six", "7": "Seven"}
OPTIONS = ("Rewind the video.", "Wait for the occlusion to disappear.")
ABSTAINS = ("I cannot answer this question.", "I cannot tell.", "I cannot see who is behind the occlusion.")


def category(question_type: str, answer: str) -> str:
    return sentence(NUMBER_WORDS.get(answer.strip(), answer) if question_type == "people" else answer)


def read_labels(path: Path) -> dict[str, tuple[str, str]]:
    """{'<split>/<video>': (question_type, answer)}; a malformed line names the file and line."""
    labels: dict[str, tuple[str, str]] = {}
    with io.StringIO(read_text(path), newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != ["video", "question_type", "answer"]:
            raise EntryError(f"{path}:1: expected the header video,question_type,answer, got {header}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if not row or not any(row):
                continue
            if len(row) != 3 or not all(cell.strip() for cell in row):
                raise EntryError(f"{where}: expected 3 non-empty fields, got {row}")
            video, kind, answer = (cell.strip() for cell in row)
            if kind not in QUESTIONS:
                raise EntryError(f"{where}: unknown question_type {kind!r}; expected one of {', '.join(QUESTIONS)}")
            labels[video] = (kind, answer)
    return labels


def occluder_cover(path: Path) -> float:
    """The share of the frame covered by the union of the XML's object boxes (0 for a clear frame)."""

    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as error:
        raise EntryError(f"{path}: malformed annotation XML: {error}") from None
    objects = root.findall("object")
    if not objects:
        return 0.0
    try:
        width = float(root.findtext("size/width"))
        height = float(root.findtext("size/height"))
        boxes = [[float(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")] for o in objects]
    except (TypeError, ValueError):
        raise EntryError(f"{path}: annotation lacks size/width,height or a bndbox coordinate") from None
    if width <= 0 or height <= 0:
        raise EntryError(f"{path}: annotation has an empty image size {width}x{height}")
    if len(boxes) == 1:  # the common case, exact and without a raster
        xmin, ymin, xmax, ymax = boxes[0]
        inside = max(0.0, min(width, xmax) - max(0.0, xmin)) * max(0.0, min(height, ymax) - max(0.0, ymin))
        return inside / (width * height)
    import numpy as np

    grid = np.zeros((64, 64), dtype=bool)  # a 64x64 raster is exact enough for a share
    for xmin, ymin, xmax, ymax in boxes:
        left, right = int(64 * max(0, xmin) / width), int(np.ceil(64 * min(width, xmax) / width))
        top, bottom = int(64 * max(0, ymin) / height), int(np.ceil(64 * min(height, ymax) / height))
        grid[top:bottom, left:right] = True
    return float(grid.mean())


class VSODSource(RawSource):
    name = "vsod"

    def locate(self, raw_dir: Path) -> Path:
        for candidate, what in ((raw_dir / TOP, f"{TOP}/ inside --raw-dir"), (raw_dir, f"the {TOP} folder itself")):
            if (candidate / "Data").is_dir() and (candidate / "Annotations").is_dir():
                log.info("vsod: found %s", what)
                return candidate
        raise EntryError(f"{raw_dir}: expected {TOP}/Data and {TOP}/Annotations (or Data/ and Annotations/)")

    def _labels(self, root: Path) -> dict[str, tuple[str, str]]:
        for path in (root / LABELS, root.parent / LABELS):
            if path.is_file():
                return read_labels(path)
        log.warning("vsod: no %s beside the data; every video will be dropped for lack of a question", LABELS)
        return {}

    def items(self, root: Path, config: BuildConfig) -> Iterator[WorkItem]:
        split = NATIVE_SPLITS[config.split]
        videos = root / "Data" / split
        if not videos.is_dir():
            raise EntryError(f"{videos}: no such folder (split {config.split!r})")
        labels = self._labels(root)
        # Pools of every label per type, so negatives are real labels of the same kind.
        by_type: dict[str, list[str]] = {}
        for kind, answer in labels.values():
            by_type.setdefault(kind, []).append(answer)
        for number, video in enumerate(sorted(p.name for p in videos.iterdir() if p.is_dir())):
            key = f"{split}/{video}"
            label = labels.get(key)
            yield WorkItem(key, {
                "id": number, "split": split, "video": video, "label": label,
                "same_type": sorted(set(by_type.get(label[0], ()))) if label else [],
            })

    def to_entry(self, root: Path, item: WorkItem, config: BuildConfig):
        p = item.payload
        folder = root / "Data" / p["split"] / p["video"]
        where = str(folder)
        frames = image_files(folder)
        if not frames:
            raise EntryError(f"{where}: no frames")
        if all(f.stem.isdigit() for f in frames):
            numbers = [int(f.stem) for f in frames]
            gaps = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
            if gaps:
                raise EntryError(f"{where}: missing frame(s) {gaps[:5]} between {frames[0].name} and {frames[-1].name}")
        annotations = root / "Annotations" / p["split"] / p["video"]
        covers = []
        for frame in frames:
            xml = annotations / f"{frame.stem}.xml"
            if not xml.is_file():
                raise EntryError(f"{xml}: missing annotation for frame {frame.name}")
            covers.append(occluder_cover(xml))
        if p["label"] is None:
            raise ItemDropped(f"{where}: no label in {LABELS} for video {item.key!r}")
        first = max(range(len(covers)), key=lambda i: (covers[i], -i))
        if covers[first] < STRONG_COVER:
            raise ItemDropped(f"{where}: weak occlusion (largest cover {covers[first]:.2f} < {STRONG_COVER})")
        n = len(frames)
        clear = [i for i, c in enumerate(covers) if c == 0.0]
        if not clear:
            raise ItemDropped(f"{where}: no frame without occluder to use as the reference")
        # Nearest clear frame going either way around; on a tie, waiting (forward) wins.
        reference = min(clear, key=lambda i: (min((i - first) % n, (first - i) % n), (i - first) % n))

        kind, raw_answer = p["label"]
        rng = rng_for(config.seed, self.name, item.key)
        answer = category(kind, raw_answer)
        same_type = [category(kind, a) for a in p["same_type"]]
        pool = [category(kind, a) for a in POOLS[kind]]
        options = [*OPTIONS, rng.choice(ABSTAINS)]
        rng.shuffle(options)
        suffix = frames[0].suffix
        template = f"Data/{p['split']}/{p['video']}/{{image}}{suffix}"
        files = {
            template.format(image=str(i).zfill(4)): frame.relative_to(root).as_posix() for i, frame in enumerate(frames)
        }
        entry = Entry(
            id=p["id"],
            image_template=template,
            first_image=first,
            num_images=n,
            reference_image=reference,
            prompt=rng.choice(QUESTIONS[kind]),
            options=options,
            categories=choose_categories(rng, answer, same_type, pool),
            answer=answer,
            extra={"strong_occlusions": True, "question_type": kind, "occluder_cover": round(covers[first], 3),
                   "video": item.key},
            where=where,
        )
        return entry, MappedFrameReader(root, files)

    # --- sample ------------------------------------------------------------------------------------------

    def write_sample(self, out: Path, per_source: int, seed: int) -> None:
        """`OcclusionDataSet-MM20/{Data,Annotations}/test/<video>/` (8 frames of 128x72 each) and `labels.csv`."""
        top = out / TOP
        rows = []
        kinds = tuple(QUESTIONS)
        for number in range(per_source):
            video = f"{number + 1:04d}"
            rng = rng_for(seed, "vsod-sample", video)
            kind = kinds[number % len(kinds)]
            people = rng.randint(1, 3)
            answer = {"speaker": rng.choice(POOLS["speaker"]), "people": str(people),
                      "event": rng.choice(POOLS["event"])}[kind]
            rows.append((f"test/{video}", kind, answer))
            for index, (data, boxes) in enumerate(video_frames(rng, people)):
                stem = f"{index:04d}"
                frame = top / "Data" / "test" / video / f"{stem}.jpg"
                frame.parent.mkdir(parents=True, exist_ok=True)
                frame.write_bytes(data)
                xml = top / "Annotations" / "test" / video / f"{stem}.xml"
                xml.parent.mkdir(parents=True, exist_ok=True)
                xml.write_text(voc_xml(f"{stem}.jpg", video, (128, 72), boxes))
        with open(top / LABELS, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["video", "question_type", "answer"])
            writer.writerows(rows)


def video_frames(rng, people: int, size=(128, 72), count: int = 8):
    """People in a room; a passer-by crosses in front of the camera, covering it fully at frames 3-4."""
    from PIL import ImageDraw

    width, height = size
    background = scene(rng, size, horizon=0.7)
    draw = ImageDraw.Draw(background)
    for person in range(people):
        x = width * (person + 1) // (people + 1)
        skin = (rng.randint(150, 230), rng.randint(110, 180), rng.randint(90, 150))
        shirt = tuple(rng.randint(20, 220) for _ in range(3))
        draw.rectangle((x - 8, height // 2, x + 8, height - 6), fill=shirt)
        draw.ellipse((x - 6, height // 2 - 13, x + 6, height // 2 - 1), fill=skin)
    coat = tuple(rng.randint(10, 60) for _ in range(3))
    # Occluder box per frame (x0, x1) as a share of the width; None = clear.
    spans = [None, (0.0, 0.3), (0.0, 0.75), (0.0, 1.0), (0.0, 1.0), (0.4, 1.0), (0.8, 1.0), None]
    result = []
    for span in spans[:count]:
        image = background.copy()
        boxes = []
        if span:
            box = (int(span[0] * width), 0, int(span[1] * width), height)
            ImageDraw.Draw(image).rectangle(box, fill=coat)
            boxes.append(box)
        result.append((encode(image, "JPEG", 88), boxes))
    return result


def voc_xml(filename: str, folder: str, size: tuple[int, int], boxes: list[tuple[int, int, int, int]]) -> str:
    objects = "".join(
        f"\t<object>\n\t\t<name>occlusion</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
        f"\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{x0}</xmin>\n\t\t\t<ymin>{y0}</ymin>\n"
        f"\t\t\t<xmax>{x1}</xmax>\n\t\t\t<ymax>{y1}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        for x0, y0, x1, y1 in boxes
    )
    return (
        f"<annotation>\n\t<folder>{folder}</folder>\n\t<filename>{filename}</filename>\n"
        f"\t<size>\n\t\t<width>{size[0]}</width>\n\t\t<height>{size[1]}</height>\n\t\t<depth>3</depth>\n\t</size>\n"
        f"\t<segmented>0</segmented>\n{objects}</annotation>\n"
    )


SOURCE = register(VSODSource())
