"""ROD (Realistic Occlusion Dataset) from its Hugging Face download → occlusion episodes (docs/protocol.md §4.1).

Native layout (`arielnlee/Realistic-Occlusion-Dataset`): `rod_0.tar.gz` and `rod_1.tar.gz`, whose image members
are named `<tag>-<class>-s<step>.<ext>`, step 0..13 the occluder's position, e.g.
`natural_bluebl_greenr-banana-s6.jpg`. The folders inside the archives are not documented, so members are matched
by base name wherever they sit. `--raw-dir` may hold the archives (they are extracted once into a cache folder,
`$PROACTIVEBENCH_CACHE` or `~/.cache/proactivebench`) or their extracted images, in any sub-folders.

One sequence (tag, class) = one episode: 14 frames, start at the most occluded central frame (7), the reference
7 moves away (0), left/right wrap around, no answer accepted at the first turn. The one frame missing from the
real data, `natural_bluebl_greenr-banana-s6`, is expected (the scenario shows a neighbour); any other missing
step is bad input. The occluder's words in the options come from `occluders.json` ({tag: "red blocks"}) beside
the data when given, else from the tag's known abbreviations, else "occluding object".
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tarfile
from collections import defaultdict
from pathlib import Path
from typing import Iterator

from proactivebench.safe_files import atomic_file, staged_dir
from proactivebench.seeding import rng_for

from ..raw import BuildConfig, RawSource, WorkItem, register
from ..scenarios import Entry, EntryError
from proactivebench.sources.rod import MISSING_FRAME
from ._common import FileReader, choose_categories, draw_object, encode, read_text, scene, sentence

log = logging.getLogger(__name__)

CLASSES = (
    "banana", "baseball", "cowboy hat", "cup", "dumbbell", "hammer", "laptop", "microwave", "mouse", "orange",
    "pillow", "plate", "screwdriver", "skillet", "spatula", "vase",
)
NUM_STEPS = 14
FIRST_STEP = 7  # the central, most occluded position
REFERENCE_STEP = 0  # 7 moves away either way: the object in full view
NAME = re.compile(r"^(?P<tag>.+)-(?P<cls>[A-Za-z][A-Za-z _]*)-s(?P<step>\d+)\.(?P<ext>jpe?g|png)$", re.I)
ARCHIVES = "rod_*.tar.gz"
MEMBERS = "members.json"  # in an extraction cache folder: where each image came from
TOP_FOLDERS = ("Realistic-Occlusion-Dataset", "ROD", "rod")

# Abbreviations seen in tags (`bluebl` = blue blocks); unknown tags fall back to a neutral phrase.
TAG_WORDS = {"bl": "blocks", "r": "ring", "b": "box", "c": "cloth", "p": "paper"}
COLOURS = ("red", "blue", "green", "yellow", "white", "black", "orange", "purple", "pink", "brown")

# [paper] 15 questions; they name the occluder (e.g. "What missing details are obscured by the red blocks?").
QUESTIONS = (
    "What missing details are obscured by the {occ}?",
    "What object is hidden behind the {occ}?",
    "What is the object behind the {occ}?",
    "Which object do the {occ} cover?",
    "What is partially hidden by the {occ}?",
    "What kind of object is occluded by the {occ}?",
    "Can you tell what is behind the {occ}?",
    "What item lies behind the {occ}?",
    "What is the {occ} blocking from view?",
    "What object can be seen behind the {occ}?",
    "Which item is covered by the {occ}?",
    "What type of object is concealed by the {occ}?",
    "What is on the table behind the {occ}?",
    "Identify the object obscured by the {occ}.",
    "What is the occluded object behind the {occ}?",
)
ABSTAINS = ("I cannot tell.", "I cannot answer this question.", "I cannot see the object.")


def occluder_phrase(tag: str, names: dict[str, str]) -> str:
    if tag in names:
        return names[tag]
    words = []
    for token in tag.split("_")[1:]:  # the first token is the setting ("natural")
        colour = next((c for c in COLOURS if token.startswith(c)), None)
        rest = token[len(colour):] if colour else token
        if colour and rest in TAG_WORDS:
            words.append(f"{colour} {TAG_WORDS[rest]}")
    return " and ".join(words) or "occluding object"


def _cache_root() -> Path:
    return Path(os.environ.get("PROACTIVEBENCH_CACHE") or Path.home() / ".cache" / "proactivebench")


def extract_archives(archives: list[Path]) -> Path:
    """Extract the image members of the archives once, flat, into a cache folder keyed by their size and date."""
    try:
        stamp = hashlib.sha1(
            "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in archives).encode()
        ).hexdigest()[:16]
    except (OSError, RuntimeError) as error:  # a dangling link or a symlink loop (pathlib raises RuntimeError)
        bad = next((p for p in archives if not p.is_file()), archives[0])
        raise EntryError(f"{bad}: cannot read the archive ({error})") from None
    target = _cache_root() / f"rod-{stamp}"
    if target.is_dir():
        return target
    members: dict[str, str] = {}  # {file name: "<archive>:<member>"}, so errors name what the user has on disk
    with staged_dir(target.parent, target.name) as scratch:
        for archive in archives:
            try:
                with tarfile.open(archive, "r:gz") as tar:
                    for member in tar:  # streams: one pass over the archive
                        name = Path(member.name).name
                        if member.isfile() and NAME.match(name):
                            with tar.extractfile(member) as handle, open(scratch / name, "wb") as out:
                                shutil.copyfileobj(handle, out)
                            members[name] = f"{archive.resolve()}:{member.name}"
            except (tarfile.TarError, EOFError, OSError) as error:
                raise EntryError(f"{archive}: unreadable archive: {error}") from None
        (scratch / MEMBERS).write_text(json.dumps(members, sort_keys=True))
        if not target.is_dir():  # another run may have finished the same extraction meanwhile
            scratch.rename(target)
    return target


class RODSource(RawSource):
    name = "rod"

    def locate(self, raw_dir: Path) -> Path:
        for candidate in (raw_dir, *(raw_dir / name for name in TOP_FOLDERS)):
            if not candidate.is_dir():
                continue
            archives = sorted(candidate.glob(ARCHIVES))
            if archives and not any(self._images(candidate)):
                log.info("rod: found the download's archives %s", ", ".join(a.name for a in archives))
                return extract_archives(archives)
            if any(self._images(candidate)):
                log.info("rod: found extracted images under %s", candidate)
                return candidate
        raise EntryError(
            f"{raw_dir}: no ROD data; expected {ARCHIVES} archives or images named <tag>-<class>-s<step>.jpg"
        )

    @staticmethod
    def _images(root: Path) -> Iterator[Path]:
        for folder, _, names in os.walk(root):
            for name in sorted(names):
                if NAME.match(name):
                    yield Path(folder, name)

    def items(self, root: Path, config: BuildConfig) -> Iterator[WorkItem]:
        if config.split != "test":
            raise EntryError("rod has only a test split (the paper trains on QuickDraw and COCO)")
        # A sequence is named by its stem alone, so the archives and any unpacked layout give the same ids.
        sequences: dict[tuple[str, str], dict[int, str]] = defaultdict(dict)
        folders: dict[tuple[str, str], str] = {}
        for path in self._images(root):
            match = NAME.match(path.name)
            stem = (match["tag"], match["cls"])
            folder = path.parent.relative_to(root).as_posix()
            if folders.setdefault(stem, folder) != folder:
                raise EntryError(f"{root}: sequence {'-'.join(stem)} is split over {folders[stem]}/ and {folder}/")
            sequences[stem][int(match["step"])] = path.name
        for number, (tag, cls) in enumerate(sorted(sequences)):
            yield WorkItem(f"{tag}-{cls}", {
                "id": number, "folder": folders[(tag, cls)], "tag": tag, "cls": cls, "files": sequences[(tag, cls)],
            })

    def to_entry(self, root: Path, item: WorkItem, config: BuildConfig):
        p = item.payload
        where = str(root / p["folder"] / f"{p['tag']}-{p['cls']}-s*")
        cls = p["cls"].replace("_", " ").lower()
        if cls not in CLASSES:
            raise EntryError(f"{where}: unknown ROD class {p['cls']!r}; expected one of {', '.join(CLASSES)}")
        files: dict[int, str] = {int(k): v for k, v in p["files"].items()}
        suffixes = {Path(f).suffix for f in files.values()}
        if len(suffixes) != 1:
            raise EntryError(f"{where}: frames mix extensions {sorted(suffixes)}")
        suffix = suffixes.pop()
        stem = f"{p['tag']}-{p['cls']}"
        expected = set(range(NUM_STEPS))
        missing = expected - set(files)
        if f"{stem}-s6" == MISSING_FRAME:
            missing.discard(6)  # missing in the real data; the scenario shows s5 or s7 instead
        if missing:
            raise EntryError(f"{where}: sequence is missing step(s) {sorted(missing)} of 0..{NUM_STEPS - 1}")
        if set(files) - expected:
            raise EntryError(f"{where}: unexpected step(s) {sorted(set(files) - expected)}")
        folder = "" if p["folder"] == "." else p["folder"] + "/"
        rng = rng_for(config.seed, self.name, item.key)
        occluder = occluder_phrase(p["tag"], self._occluder_names(root))
        options = [f"Move the {occluder} to the left.", f"Move the {occluder} to the right.", rng.choice(ABSTAINS)]
        rng.shuffle(options)
        answer = sentence(cls)
        entry = Entry(
            id=p["id"],
            image_template=f"{folder}{stem}-s{{image}}{suffix}",
            first_image=FIRST_STEP,
            num_images=NUM_STEPS,
            reference_image=REFERENCE_STEP,
            prompt=rng.choice(QUESTIONS).format(occ=occluder),
            options=options,
            categories=choose_categories(rng, answer, [sentence(c) for c in CLASSES]),
            answer=answer,
            extra={"occluder": occluder, "tag": p["tag"]},
            where=where,
        )
        return entry, FileReader(root, self._members(root))

    @staticmethod
    def _members(root: Path) -> dict[str, str]:
        path = root / MEMBERS
        try:
            return json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, json.JSONDecodeError):
            return {}  # only used to name files in messages

    def _occluder_names(self, root: Path) -> dict[str, str]:
        path = root / "occluders.json"
        if not path.is_file():
            return {}
        try:
            names = json.loads(read_text(path))
        except json.JSONDecodeError as error:
            raise EntryError(f"{path}: malformed JSON: {error.msg}") from None
        if not isinstance(names, dict):
            raise EntryError(f"{path}: expected an object {{tag: occluder words}}")
        return names

    # --- sample ------------------------------------------------------------------------------------------

    def write_sample(self, out: Path, per_source: int, seed: int) -> None:
        """`rod_0.tar.gz` (and `rod_1.tar.gz` from the fourth sequence on), 112x84 JPEGs; the first sequence is
        the real data's `natural_bluebl_greenr-banana`, with its missing s6."""
        out.mkdir(parents=True, exist_ok=True)
        # Distinct (tag, class) pairs: the real data's missing-frame sequence first, then seeded picks.
        tags = [f"natural_{colour}{thing}" for thing in ("bl", "b", "c") for colour in COLOURS]
        rng = rng_for(seed, "rod-sample")
        pairs = [(t, c) for t in tags for c in CLASSES]
        rng.shuffle(pairs)
        sequences = [("natural_bluebl_greenr", "banana"), *pairs][:per_source]
        archives: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
        for number, (tag, cls) in enumerate(sequences[:per_source]):
            frames = sequence_frames(rng_for(seed, "rod-frames", number))
            for step, data in enumerate(frames):
                name = f"{tag}-{cls}-s{step}.jpg"
                if name[: -len(".jpg")] == MISSING_FRAME:
                    continue
                archives[f"rod_{0 if number < 3 else 1}.tar.gz"].append((f"ROD/{cls}/{name}", data))
        for archive, members in archives.items():
            write_tar(out / archive, members)


def sequence_frames(rng, size=(112, 84)) -> list[bytes]:
    """A table-top object and an occluder sweeping across it: step 7 covers it, steps 0 and 13 leave it clear."""
    from PIL import ImageDraw

    background = scene(rng, size, horizon=0.35)
    width, height = size
    object_box = (width // 2 - 16, height // 2 - 12, width // 2 + 16, height // 2 + 22)
    shape = rng.choice(["ellipse", "box", "bottle"])
    object_rng_state = rng.getstate()
    occluder_colour = tuple(rng.randint(20, 235) for _ in range(3))
    frames = []
    for step in range(NUM_STEPS):
        image = background.copy()
        draw = ImageDraw.Draw(image)
        rng.setstate(object_rng_state)
        draw_object(draw, rng, object_box, shape)
        # The occluder's centre moves across; 7 is dead centre, 0 and 13 are off the object.
        centre = width // 2 + (step - FIRST_STEP) * (width // 10) if step else -width
        draw.rectangle((centre - 20, height // 2 - 22, centre + 20, height // 2 + 30), fill=occluder_colour,
                       outline=(10, 10, 10))
        frames.append(encode(image, "JPEG", 88))
    return frames


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    """A gzip tar with fixed member dates and gzip header, so two samples are byte-identical."""
    import gzip
    import io

    with atomic_file(path) as temporary, open(temporary, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name, data in members:
                    info = tarfile.TarInfo(name)
                    info.size, info.mtime, info.mode = len(data), 0, 0o644
                    tar.addfile(info, io.BytesIO(data))


SOURCE = register(RODSource())
