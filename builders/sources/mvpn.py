"""MVP-N from its `data.zip` → viewpoint episodes (docs/protocol.md §4.3).

Native layout (SMNUResearch/MVP-N `dataset/*.py`): `data/{train,valid,test}/<class 0000..0043>/<set_id>/*.png`,
one folder per multi-view set, each view's informativeness in its name, `<...>_<0|1>.png` (1 = informative),
plus `{valid,test}_list/*.pkl` (ignored here). `--raw-dir` is the folder holding `data/`, or `data/` itself.

One set = one episode: up to `MAX_UNINFORMATIVE` uninformative views in a seeded order, then one informative
view last (the scenario shows it on the last turn, and as the reference). A set without both kinds of view is
dropped (reported). View ids are positions in the set's sorted file list; the template's `{informative}` is the
view's own flag, so each template path stands for one real file.

Product names of the 44 classes are not public: a `classes.csv` (header `class,name[,group]`) in `--raw-dir` or
beside `data/` gives names and look-alike groups; without it a class is named `Product <id>`. Hard negatives
come from the class's look-alike group (the known group 0010..0014 by default), then the nearest class ids
(the groups are runs of consecutive ids).
"""

from __future__ import annotations

import csv
import io
import logging
import pickle
from pathlib import Path
from typing import Iterator

from proactivebench.seeding import rng_for

from ..raw import BuildConfig, RawSource, WorkItem, register
from ..build_runner import ItemDropped
from ..scenarios import Entry, EntryError
from ._common import (
    MappedFrameReader, choose_categories, draw_object, encode, image_files, read_text, scene, sentence,
)

log = logging.getLogger(__name__)

NUM_CLASSES = 44  # '0000'..'0043'
MAX_UNINFORMATIVE = 3  # [paper] ~4 images per sample
NATIVE_SPLITS = {"test": "test", "train": "train"}
CLASSES_FILE = "classes.csv"
DEFAULT_GROUPS = (("0010", "0011", "0012", "0013", "0014"),)  # the one group the MVP-N code names

# [paper] 11 proactive options (object rotation or camera movement); each parses as `rotate`.
ROTATE_OPTIONS = (
    "Rotate the object.", "Change the camera angle of the object.", "Show me a different side of the object.",
    "Rotate the object to show its label.", "Change the viewpoint.", "Show the object from another view.",
    "Change the orientation of the object.", "Turn the object to a different side.",
    "Look at the object from a different angle.", "Rotate the product.", "Move the camera to another viewpoint.",
)
ABSTAINS = ("I do not know what is this object.", "I cannot tell.", "I cannot recognise this object.")


def read_classes(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """({class: name}, {class: group}) from `classes.csv`; a malformed line names the file and line."""
    names, groups = {}, {}
    with io.StringIO(read_text(path), newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None) or []
        if header[:2] != ["class", "name"]:
            raise EntryError(f"{path}:1: expected the header class,name[,group], got {header}")
        for row in reader:
            if not row:
                continue
            if len(row) not in (2, 3) or not row[0].strip() or not row[1].strip():
                raise EntryError(f"{path}:{reader.line_num}: expected class,name[,group], got {row}")
            names[row[0].strip()] = row[1].strip()
            if len(row) == 3 and row[2].strip():
                groups[row[0].strip()] = row[2].strip()
    return names, groups


class MVPNSource(RawSource):
    name = "mvpn"

    def locate(self, raw_dir: Path) -> Path:
        for candidate, what in (
            (raw_dir / "data", "data/ inside --raw-dir"),
            (raw_dir / "MVP-N" / "data", "MVP-N/data/ inside --raw-dir"),
            (raw_dir, "the data/ folder itself"),
        ):
            if any((candidate / split).is_dir() for split in ("test", "train", "valid")):
                log.info("mvpn: found %s", what)
                return candidate
        raise EntryError(f"{raw_dir}: expected data/{{train,valid,test}}/<class>/<set>/ (the extracted data.zip)")

    def _classes(self, root: Path) -> tuple[dict[str, str], dict[str, str]]:
        for path in (root / CLASSES_FILE, root.parent / CLASSES_FILE):
            if path.is_file():
                return read_classes(path)
        groups = {c: f"default-{i}" for i, group in enumerate(DEFAULT_GROUPS) for c in group}
        return {}, groups

    def items(self, root: Path, config: BuildConfig) -> Iterator[WorkItem]:
        split = NATIVE_SPLITS[config.split]
        folder = root / split
        if not folder.is_dir():
            raise EntryError(f"{folder}: no such folder (split {config.split!r})")
        names, groups = self._classes(root)
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        # Every one of the 44 classes can be a negative, even when this split (or a sample) holds fewer.
        known = set(classes) | set(names) | {f"{i:04d}" for i in range(NUM_CLASSES)}
        labels = {c: sentence(names.get(c, f"Product {c}")) for c in sorted(known)}
        number = 0
        for cls in classes:
            same_group = [labels[c] for c in labels if c != cls and cls in groups and groups.get(c) == groups[cls]]
            nearest = sorted((c for c in labels if c != cls), key=lambda c: (_distance(c, cls), c))[:6]
            for set_id in sorted(p.name for p in (folder / cls).iterdir() if p.is_dir()):
                yield WorkItem(f"{split}/{cls}/{set_id}", {
                    "id": number, "split": split, "cls": cls, "set": set_id, "answer": labels[cls],
                    "hard": same_group, "near": [labels[c] for c in nearest],
                })
                number += 1

    def to_entry(self, root: Path, item: WorkItem, config: BuildConfig):
        p = item.payload
        folder = root / p["split"] / p["cls"] / p["set"]
        where = str(folder)
        views = image_files(folder)
        flags = []
        for view in views:
            flag = view.stem.rsplit("_", 1)[-1]
            if "_" not in view.stem or flag not in ("0", "1"):
                raise EntryError(f"{view}: name does not end in _0 or _1 (the informative flag)")
            flags.append(int(flag))
        uninformative = [i for i, f in enumerate(flags) if f == 0]
        informative = [i for i, f in enumerate(flags) if f == 1]
        if not uninformative or not informative:
            raise ItemDropped(f"{where}: needs both an uninformative and an informative view (flags {flags})")
        rng = rng_for(config.seed, self.name, item.key)
        rng.shuffle(uninformative)
        shown = uninformative[:MAX_UNINFORMATIVE]
        last = rng.choice(informative)
        valid_images = [*shown, last]
        template = f"{p['split']}/{p['cls']}/{p['set']}/{{image}}_{{informative}}.png"
        files = {
            template.format(image=str(i).zfill(4), informative=flags[i]): views[i].relative_to(root).as_posix()
            for i in valid_images
        }
        options = [rng.choice(ROTATE_OPTIONS), rng.choice(ABSTAINS)]
        rng.shuffle(options)
        entry = Entry(
            id=p["id"],
            image_template=template,
            first_image=valid_images[0],
            num_images=len(valid_images),
            reference_image=last,
            prompt="What is the object in the image?" if rng.random() < 0.5 else "Which product is this?",
            options=options,
            categories=choose_categories(rng, p["answer"], p["hard"], p["near"]),
            answer=p["answer"],
            extra={"valid_images": valid_images, "class_id": p["cls"],
                   "view_files": [views[i].name for i in valid_images]},
            where=where,
        )
        return entry, MappedFrameReader(root, files)

    # --- sample ------------------------------------------------------------------------------------------

    def write_sample(self, out: Path, per_source: int, seed: int) -> None:
        """`data/test/<class>/<set>/<class>_<set>_<view>_<flag>.png` (4 views of 96x96, one informative) for
        classes of the look-alike group 0010..0014, plus `data/test_list/test_<class>_100.pkl`."""
        data = out / "data"
        sets: dict[str, list[list[str]]] = {}
        for number in range(per_source):
            cls = DEFAULT_GROUPS[0][number % len(DEFAULT_GROUPS[0])]
            set_id = f"{number // len(DEFAULT_GROUPS[0]):04d}"
            rng = rng_for(seed, "mvpn-sample", cls, set_id)
            informative_view = rng.randrange(4)
            paths = []
            for view in range(4):
                flag = int(view == informative_view)
                name = f"{cls}_{set_id}_{view:02d}_{flag}.png"
                path = data / "test" / cls / set_id / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(product_view(rng_for(seed, "mvpn-product", cls), view, bool(flag)))
                paths.append(f"{cls}/{set_id}/{name}")
            sets.setdefault(cls, []).append(paths)
        (data / "test_list").mkdir(parents=True, exist_ok=True)
        for cls, lists in sets.items():
            (data / "test_list" / f"test_{cls}_100.pkl").write_bytes(pickle.dumps(lists, protocol=4))


def _distance(a: str, b: str) -> int:
    return abs(int(a) - int(b)) if a.isdigit() and b.isdigit() else 10**6


def product_view(rng, view: int, informative: bool, size=(96, 96)) -> bytes:
    """A product on a turntable; only the informative view shows its label."""
    from PIL import ImageDraw

    image = scene(rng, size, horizon=0.75)
    draw = ImageDraw.Draw(image)
    width, height = size
    squeeze = [0, 8, 14, 8][view % 4]  # seen from the side the product looks narrower
    box = (24 + squeeze, 14, width - 24 - squeeze, height - 12)
    draw_object(draw, rng, box, "bottle")
    if informative:
        label = tuple(rng.randint(0, 255) for _ in range(3))
        draw.rectangle((box[0] + 4, height // 2, box[2] - 4, height // 2 + 18), fill=label, outline=(0, 0, 0))
        draw.text((box[0] + 6, height // 2 + 3), "ABC", fill=(255 - label[0], 255 - label[1], 255 - label[2]))
    return encode(image, "PNG")


SOURCE = register(MVPNSource())
