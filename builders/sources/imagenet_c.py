"""ImageNet-C from its archives → image-quality episodes (docs/protocol.md §4.4).

Native layout (hendrycks/robustness): each of noise/blur/weather/digital/extra.tar unpacks to
`<corruption>/<severity 1..5>/<wnid>/ILSVRC2012_val_XXXXXXXX.JPEG`. `--raw-dir` is the folder holding the
corruption folders (or an `ImageNet-C/` folder with them).

Per class (wnid), `SAMPLES_PER_CLASS` episodes, each one validation image under one corruption, chosen with the
seed (corruptions spread round-robin). An episode starts at severity 5 and each valid fix lowers it by one; the
only valid fix is the corruption's own quality option, the three other quality options are distractors; the
reference is severity 1 (ImageNet-C keeps no clean copy). Class names: `LOC_synset_mapping.txt` in `--raw-dir`
when present (Kaggle's file: `n01440764 tench, Tinca tinca` per line), else the 1000-class mapping shipped in
`proactivebench/data/imagenet_synsets.txt` (WordNet lemmas, in the standard class order). The category is the
first lemma in the paper's style (`Great_pyrenees.`); the hard negatives are the classes nearest in that order
(WordNet order keeps related classes together: dog breeds, birds, vehicles). A wnid outside the mapping is bad
input.

Without ImageNet-C, `--raw-dir` may instead hold clean ImageNet validation images in wnid folders
(`val/<wnid>/ILSVRC2012_val_*.JPEG`, or the wnid folders themselves): the corruptions are then generated per
episode with `imagecorruptions-imaug` exactly as `make_imagenet_c.py` prepares them (Resize 256, CenterCrop 224,
JPEG quality 85; numpy seeded per image and level, so builds repeat), one of the 15 benchmark corruptions per
episode, and the reference is the clean image (stored as level 0: `<corruption>/0/<wnid>/<file>`). Install it
with `pip install --no-deps imagecorruptions-imaug && pip install numba scikit-image scipy` (its declared
`opencv-python` clashes with the `opencv-python-headless` this project uses, which provides the same `cv2`).
"""

from __future__ import annotations

import io
import logging
import os
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterator

from proactivebench.seeding import rng_for

from ..raw import BuildConfig, RawSource, WorkItem, register
from ..scenarios import Entry, EntryError
from proactivebench.sources.imagenet_c import LEVELS
from ._common import FileReader, MemoryReader, choose_categories, encode, read_text, sentence

log = logging.getLogger(__name__)

SAMPLES_PER_CLASS = 5
FIRST_LEVEL, REFERENCE_LEVEL = 5, 1
MAPPING_FILE = "LOC_synset_mapping.txt"
NEIGHBOURS = 10  # hard negatives come from the classes within this many places in the standard order

# The quality option that undoes each corruption (its text parses to the scenario's action).
FIXES = {
    "Denoise the image.": ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"),
    "Deblur the image.": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur"),
    "Reduce brightness.": ("brightness",),
    "Increase the contrast.": ("contrast",),
    "Reduce the color saturation.": ("saturate",),
    "Reduce image compression.": ("jpeg_compression",),
    "Increase image resolution.": ("pixelate",),
    "Remove the artifacts from the image.": ("snow", "frost", "fog", "spatter", "elastic_transform"),
}
FIX_FOR = {corruption: fix for fix, corruptions in FIXES.items() for corruption in corruptions}
CORRUPTIONS = tuple(FIX_FOR)
# The 15 benchmark corruptions (the 4 extra ones are validation-only in ImageNet-C).
BENCHMARK_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
CLEAN_LEVEL = 0  # generated mode: the clean image, the reference
WNID = re.compile(r"^n\d{8}$")
ABSTAINS = ("I cannot tell.", "I cannot answer this question.", "I do not know.")
QUESTIONS = (
    "What is the object in the image?", "What is shown in this image?", "What is the main subject of the image?",
    "Which object can you see in the picture?", "What does this image show?",
)


@lru_cache(maxsize=4)
def read_mapping(path: str | None = None) -> tuple[tuple[str, str], ...]:
    """((wnid, first lemma), ...) in file order; None = the shipped 1000-class mapping."""
    if path is None:
        text = resources.files("proactivebench").joinpath("data/imagenet_synsets.txt").read_text()
        where = "imagenet_synsets.txt"
    else:
        text, where = read_text(Path(path)), path
    result = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        wnid, _, names = line.strip().partition(" ")
        if not (wnid.startswith("n") and wnid[1:].isdigit() and names.strip()):
            raise EntryError(f"{where}:{number}: expected '<wnid> <name>, <synonym>...', got {line!r}")
        result.append((wnid, names.split(",")[0].strip()))
    return tuple(result)


@lru_cache(maxsize=4)
def mapping_index(path: str | None) -> tuple[list[str], dict[str, str], dict[str, int]]:
    """(wnids in order, {wnid: lemma}, {wnid: position}) of a mapping, built once per process."""
    mapping = read_mapping(path)
    return [w for w, _ in mapping], dict(mapping), {w: i for i, (w, _) in enumerate(mapping)}


def category_name(lemma: str) -> str:
    return sentence(lemma.replace(" ", "_"))


class ImageNetCSource(RawSource):
    name = "imagenet_c"

    def locate(self, raw_dir: Path) -> Path:
        for candidate, what in ((raw_dir, "corruption folders in --raw-dir"), (raw_dir / "ImageNet-C", "ImageNet-C/")):
            found = [c for c in CORRUPTIONS if (candidate / c).is_dir()]
            if found:
                log.info("imagenet_c: found %s (%s)", what, ", ".join(found))
                return candidate
        for candidate in (raw_dir / "val", raw_dir):
            if is_clean_folder(candidate):
                corruption_function()  # a missing optional dependency stops here, whatever --on-error says
                log.info("imagenet_c: found clean validation images in %s; generating the corruptions", candidate)
                return candidate
        raise EntryError(
            f"{raw_dir}: no ImageNet-C corruption folders (e.g. gaussian_noise/5/<wnid>/) "
            "nor clean validation images in wnid folders (val/<wnid>/*.JPEG)"
        )

    def _mapping_path(self, root: Path) -> str | None:
        for path in (root / MAPPING_FILE, root.parent / MAPPING_FILE):
            if path.is_file():
                return str(path)
        return None

    def items(self, root: Path, config: BuildConfig) -> Iterator[WorkItem]:
        if config.split != "test":
            raise EntryError("imagenet_c has only a test split (built from ImageNet validation images)")
        mapping = self._mapping_path(root)
        corruptions = [c for c in CORRUPTIONS if (root / c / str(FIRST_LEVEL)).is_dir()]
        if not corruptions:
            yield from self._clean_items(root, config, mapping)
            return
        wnids = sorted({w for c in corruptions for w in os.listdir(root / c / str(FIRST_LEVEL))})
        for class_number, wnid in enumerate(wnids):
            rng = rng_for(config.seed, self.name, wnid)
            # One folder listing per corruption for this class only: memory does not grow with the source.
            files = {c: sorted(os.listdir(root / c / str(FIRST_LEVEL) / wnid)) for c in corruptions
                     if (root / c / str(FIRST_LEVEL) / wnid).is_dir()}
            order = sorted(files)
            rng.shuffle(order)
            chosen: list[tuple[str, str]] = []
            used: set[str] = set()
            while len(chosen) < SAMPLES_PER_CLASS and any(set(files[c]) - used for c in order):
                for corruption in order:
                    left = [f for f in files[corruption] if f not in used]
                    if left and len(chosen) < SAMPLES_PER_CLASS:
                        name = rng.choice(left)
                        used.add(name)
                        chosen.append((corruption, name))
            for k, (corruption, name) in enumerate(chosen):
                yield WorkItem(f"{corruption}/{wnid}/{name}", {
                    "id": class_number * SAMPLES_PER_CLASS + k, "corruption": corruption, "wnid": wnid,
                    "file": name, "mapping": mapping,
                })

    def _clean_items(self, root: Path, config: BuildConfig, mapping: str | None) -> Iterator[WorkItem]:
        wnids = sorted(p.name for p in root.iterdir() if p.is_dir() and WNID.match(p.name))
        for class_number, wnid in enumerate(wnids):
            rng = rng_for(config.seed, self.name, wnid)
            files = sorted(f for f in os.listdir(root / wnid) if f.lower().endswith((".jpeg", ".jpg", ".png")))
            chosen = rng.sample(files, min(SAMPLES_PER_CLASS, len(files)))
            order = list(BENCHMARK_CORRUPTIONS)
            rng.shuffle(order)
            for k, name in enumerate(chosen):
                corruption = order[k % len(order)]
                yield WorkItem(f"{corruption}/{wnid}/{name}", {
                    "id": class_number * SAMPLES_PER_CLASS + k, "corruption": corruption, "wnid": wnid,
                    "file": name, "mapping": mapping, "clean": f"{wnid}/{name}",
                })

    def to_entry(self, root: Path, item: WorkItem, config: BuildConfig):
        p = item.payload
        generated = "clean" in p
        where = str(root / (p["clean"] if generated else f"{p['corruption']}/{FIRST_LEVEL}/{p['wnid']}/{p['file']}"))
        order, names, position_of = mapping_index(p["mapping"])
        if p["wnid"] not in names:
            raise EntryError(f"{where}: unknown wnid {p['wnid']!r} (not in {p['mapping'] or 'the shipped mapping'})")
        template = f"{p['corruption']}/{{level}}/{p['wnid']}/{p['file']}"
        if generated:
            frames = generate_levels((root / p["clean"]).read_bytes(), p["corruption"], where,
                                     seed=rng_for(config.seed, self.name, "corrupt", item.key).getrandbits(31))
            reader = MemoryReader({template.format(level=level): data for level, data in frames.items()}, where)
        else:
            missing = [level for level in LEVELS if not (root / template.format(level=level)).is_file()]
            if missing:
                raise EntryError(f"{where}: missing severity level(s) {missing} of this image")
            reader = FileReader(root)
        rng = rng_for(config.seed, self.name, item.key)
        answer = category_name(names[p["wnid"]])
        position = position_of[p["wnid"]]
        near = [category_name(names[w]) for w in order[max(0, position - NEIGHBOURS): position + NEIGHBOURS + 1]]
        fix = FIX_FOR[p["corruption"]]
        distractors = rng.sample(sorted(f for f in FIXES if f != fix), 3)
        options = [fix, *distractors, rng.choice(ABSTAINS)]
        rng.shuffle(options)
        entry = Entry(
            id=p["id"],
            image_template=template,
            first_image=FIRST_LEVEL,
            num_images=FIRST_LEVEL - REFERENCE_LEVEL + 1,
            reference_image=CLEAN_LEVEL if generated else REFERENCE_LEVEL,
            prompt=rng.choice(QUESTIONS),
            options=options,
            categories=choose_categories(rng, answer, near),
            answer=answer,
            extra={"quality_answer": fix, "corruption": p["corruption"], "wnid": p["wnid"], "generated": generated},
            where=where,
        )
        return entry, reader

    # --- sample ------------------------------------------------------------------------------------------

    def write_sample(self, out: Path, per_source: int, seed: int) -> None:
        """`<corruption>/<1..5>/<wnid>/ILSVRC2012_val_XXXXXXXX.JPEG` (112x112, JPEG quality 85 as in ImageNet-C),
        one image per class and a different corruption each, made with `corrupt` below."""
        from ._common import draw_object, scene
        from PIL import ImageDraw

        mapping = read_mapping()
        for number in range(per_source):
            rng = rng_for(seed, "imagenet-c-sample", number)
            wnid = mapping[(number * 97 + 151) % len(mapping)][0]  # spread over the classes
            corruption = SAMPLE_CORRUPTIONS[number % len(SAMPLE_CORRUPTIONS)]
            clean = scene(rng, (112, 112), horizon=0.65)
            draw_object(ImageDraw.Draw(clean), rng, (28, 24, 86, 96))
            name = f"ILSVRC2012_val_{rng.randint(1, 50000):08d}.JPEG"
            for level in LEVELS:
                path = out / corruption / str(level) / wnid / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(encode(corrupt(clean, corruption, level), "JPEG", 85))


def is_clean_folder(folder: Path) -> bool:
    """Clean validation images in wnid folders (torchvision `ImageFolder` style)?"""
    if not folder.is_dir():
        return False
    for child in sorted(folder.iterdir())[:5]:
        if child.is_dir() and WNID.match(child.name) and any(
            f.suffix.lower() in (".jpeg", ".jpg", ".png") for f in child.iterdir()
        ):
            return True
    return False


def corruption_function():
    try:
        from imagecorruptions import corrupt
    except ImportError:
        raise ValueError(
            "generating ImageNet-C from clean images needs imagecorruptions-imaug: pip install --no-deps "
            "imagecorruptions-imaug && pip install numba scikit-image scipy"
        ) from None
    return corrupt


def generate_levels(clean: bytes, corruption: str, where: str, seed: int) -> dict[int, bytes]:
    """{0: clean, 1..5: corrupted} JPEGs (quality 85) of a validation image, prepared as make_imagenet_c.py."""
    import numpy as np
    from PIL import Image

    corrupt = corruption_function()
    try:
        with Image.open(io.BytesIO(clean)) as image:
            image = image.convert("RGB")
    except Exception as error:
        raise EntryError(f"{where}: image does not decode: {error}") from None
    width, height = image.size
    scale = 256 / min(width, height)  # Resize(256): the short side to 256
    image = image.resize((max(256, round(width * scale)), max(256, round(height * scale))), Image.BILINEAR)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    image = image.crop((left, top, left + 224, top + 224))  # CenterCrop(224)
    pixels = np.asarray(image)
    frames = {CLEAN_LEVEL: encode(image, "JPEG", 85)}
    state = np.random.get_state()
    try:
        for level in LEVELS:
            np.random.seed((seed + level) % 2**32)  # the library draws from numpy's global generator
            corrupted = np.uint8(np.clip(corrupt(pixels, corruption_name=corruption, severity=level), 0, 255))
            frames[level] = encode(Image.fromarray(corrupted), "JPEG", 85)
    finally:
        np.random.set_state(state)
    return frames


SAMPLE_CORRUPTIONS = ("gaussian_noise", "defocus_blur", "brightness", "contrast", "pixelate", "jpeg_compression")


def corrupt(image, corruption: str, level: int):
    """Small stand-ins for ImageNet-C's corruptions (same kind, growing with the level), for the sample only."""
    import io

    import numpy as np
    from PIL import Image, ImageEnhance, ImageFilter

    if corruption == "gaussian_noise":
        pixels = np.asarray(image, dtype=np.float32) / 255
        noise = np.random.default_rng(level).normal(0, [0.08, 0.12, 0.18, 0.26, 0.38][level - 1], pixels.shape)
        return Image.fromarray((np.clip(pixels + noise, 0, 1) * 255).astype("uint8"))
    if corruption == "defocus_blur":
        return image.filter(ImageFilter.GaussianBlur([1, 1.5, 2.5, 3.5, 5][level - 1]))
    if corruption == "brightness":
        return ImageEnhance.Brightness(image).enhance([1.2, 1.4, 1.6, 1.8, 2.1][level - 1])
    if corruption == "contrast":
        return ImageEnhance.Contrast(image).enhance([0.6, 0.45, 0.3, 0.2, 0.1][level - 1])
    if corruption == "pixelate":
        side = [90, 70, 50, 36, 24][level - 1]
        return image.resize((side, side), Image.BOX).resize(image.size, Image.BOX)
    if corruption == "jpeg_compression":
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=[25, 18, 15, 10, 7][level - 1])
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    raise ValueError(f"no sample stand-in for corruption {corruption!r}")


SOURCE = register(ImageNetCSource())
