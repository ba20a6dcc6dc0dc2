"""MS-COCO 2014 from the original download: images with a single annotated box, seen through a low-IoU crop.

Accepted layout (`--raw-dir`): the folder holding `annotations/instances_val2014.json` and `val2014/` (test) or
`annotations/instances_train2014.json` and `train2014/` (train), or its `coco2014/` / `coco/` subfolder. The
annotations are read with `pycocotools`.

An image qualifies when it has exactly one annotation, not a crowd region, whose box covers MIN_AREA..MAX_AREA
of the image. The real annotation files hold degenerate boxes (width or height under one pixel, zero or negative,
or `area` 0; detection codebases drop them): an image whose annotations include one, and which would otherwise be
a single-box candidate, is dropped by rule with its reason in the build report, under any `--on-error`. A box that
runs past the image border is clipped to it, as COCO loaders do (torchvision's clamp to [0, width] x [0, height]),
and flagged `bbox_clipped` in `meta`; a box left empty by the clip lies outside the image and is dropped the same
way. A malformed record (a bbox that is not four numbers, an image without a size) stays bad input. Per image the seed
picks a granularity g in 3..5 and the first feasible direction in a shuffled list of the 9 (4 cardinal, 4
diagonal, zoom). The crop plan follows the reference's conventions (docs/protocol.md §4.7): for a move direction the
crop starts with only VISIBLE of the object's extent along each moving axis inside the view (the rest lies
beyond the edge the camera must move towards) and after g-1 moves per axis it holds the whole object with a
margin; for zoom it starts inside the object and after g zooms holds it with a margin. All crop values and steps
are whole pixels, so the reference's float arithmetic (including its zoom equality test) is exact. Every
reachable crop is materialised as a PNG frame by the shared scenario code; the full image is the reference.

Categories: the answer plus 3 hard negatives. The paper mines them with CLIP; without CLIP here they are other
categories of the same COCO supercategory (filled up with random categories where a supercategory is smaller).
Source ids are the COCO image ids, which are unique across train2014 and val2014.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from proactivebench.seeding import rng_for

from ..official import DirFrameReader
from ..raw import BuildConfig, RawSource, WorkItem, register
from ..build_runner import ItemDropped
from ..scenarios import Entry, EntryError
from proactivebench.sources.coco import MOVE_OPTIONS, ZOOM_OPTION
from ._common import choose_categories, draw_object, encode, scene, sentence

SPLIT_FOLDERS = {"test": "val2014", "train": "train2014"}
MIN_AREA, MAX_AREA = 0.02, 0.4  # box area / image area
MIN_SIDE = 16  # px, box width and height
MIN_VIEW = 24  # px, smallest side of any view (tiny crops break some processors)
MAX_START_IOU = 0.3
GRANULARITY = (3, 5)
VISIBLE = (0.1, 0.3)  # share of the object's extent visible at the start, per moving axis
ZOOM_WINDOW = (0.3, 0.5)  # the first zoom view, as a share of the object's width and height
DIRECTIONS = ("left", "right", "up", "down", "up_left", "up_right", "down_left", "down_right", "zoom")

QUESTIONS = (
    "What is the main object in this image?",
    "What object is shown in the picture?",
    "Which object is the focus of this photo?",
    "What is the object in the image?",
    "What can you see in this picture?",
    "Which object does this photo show?",
    "What kind of object is this?",
    "What is this a picture of?",
    "Can you name the object in the image?",
    "What object is partially visible here?",
)
ABSTAIN = ("I cannot answer this question.", "I cannot tell.", "I do not know what this object is.")



@dataclass(frozen=True)
class Axis:
    """A view's extent along one axis: `lo`..`hi` at the start; `step` > 0 when the camera moves along it."""

    lo: int
    hi: int
    step: int = 0


def fixed_axis(o_lo: int, o_hi: int, extent: int, rng) -> Axis:
    margin = round((o_hi - o_lo) * rng.uniform(0.1, 0.5))
    return Axis(max(0, o_lo - margin), min(extent, o_hi + margin))


def moving_axis(towards_lo: bool, o_lo: int, o_hi: int, extent: int, g: int, rng) -> Axis | None:
    """The start view of an axis the camera moves along; `lo`/`hi` are where the view starts, not crop values.

    towards_lo: the object lies towards lower coordinates (left / up), so the view's lower edge moves.
    """
    size = o_hi - o_lo
    visible = max(1, round(size * rng.uniform(*VISIBLE)))
    margin = max(2, round(size * 0.1))
    span = max(MIN_VIEW, round(size * rng.uniform(0.6, 1.2)))  # the start view's length along the axis
    if towards_lo:
        end = max(0, o_lo - margin)
        step = math.ceil((o_hi - visible - end) / (g - 1))
        start = end + step * (g - 1)  # the lower edge before any move; g-1 moves bring it exactly to `end`
        hi = min(extent, max(o_hi + margin, start + span))
        return Axis(start, hi, step) if hi - start >= MIN_VIEW and hi >= o_hi and step >= 1 else None
    end = min(extent, o_hi + margin)
    step = math.ceil((end - o_lo - visible) / (g - 1))
    start = end - step * (g - 1)
    lo = max(0, min(o_lo - margin, start - span))
    return Axis(lo, start, step) if start - lo >= MIN_VIEW and lo <= o_lo and step >= 1 else None


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def plan_crop(box: tuple[int, int, int, int], width: int, height: int, direction: str, g: int, rng) -> dict | None:
    """The reference's crop fields for one direction, or None when the image leaves no room for it.

    box: the object as integer (left, top, right, bottom).
    """
    x0, y0, x1, y1 = box
    if direction == "zoom":
        share = rng.uniform(*ZOOM_WINDOW)
        w, h = max(MIN_VIEW, round((x1 - x0) * share)), max(MIN_VIEW, round((y1 - y0) * share))
        if w > x1 - x0 or h > y1 - y0:
            return None
        left = x0 + rng.randint(0, (x1 - x0) - w)
        top = y0 + rng.randint(0, (y1 - y0) - h)
        mx, my = max(2, round((x1 - x0) * 0.1)), max(2, round((y1 - y0) * 0.1))
        # g zooms grow each side by step*g in total: enough to hold the whole object with a margin
        h0 = max(1, math.ceil((max(left - x0, x1 - left - w) + mx) / g))
        v0 = max(1, math.ceil((max(top - y0, y1 - top - h) + my) / g))
        start = (left, top, left + w, top + h)
        # zoom: crop width/height are sizes and the view is (left-hs, top-vs, left+width+hs, top+height+vs)
        crop = {"top": top + v0, "left": left + h0, "height": h - 2 * v0, "width": w - 2 * h0}
        return {"crop": crop, "horizontal_step": h0, "vertical_step": v0, "start": start}
    horizontal = [d for d in ("left", "right") if d in direction]
    vertical = [d for d in ("up", "down") if d in direction]
    ax = (moving_axis(horizontal[0] == "left", x0, x1, width, g, rng) if horizontal
          else fixed_axis(x0, x1, width, rng))
    ay = (moving_axis(vertical[0] == "up", y0, y1, height, g, rng) if vertical
          else fixed_axis(y0, y1, height, rng))
    if ax is None or ay is None:
        return None
    # move directions: crop width/height are the right/bottom coordinates; the first view is one step out
    crop = {
        "left": ax.lo + ax.step if "left" in direction else ax.lo,
        "width": ax.hi - ax.step if "right" in direction else ax.hi,
        "top": ay.lo + ay.step if "up" in direction else ay.lo,
        "height": ay.hi - ay.step if "down" in direction else ay.hi,
    }
    return {"crop": crop, "horizontal_step": ax.step, "vertical_step": ay.step, "start": (ax.lo, ay.lo, ax.hi, ay.hi)}


def move_options(direction: str) -> list[str]:
    if direction == "zoom":
        return [ZOOM_OPTION]
    return [MOVE_OPTIONS[d] for d in direction.split("_")]


@dataclass(frozen=True)
class Candidate:
    """A work item's payload: everything `to_entry` needs, the reason the record is bad, or the rule that drops
    it."""

    file_name: str
    record: dict[str, Any] | None
    error: str | None = None
    dropped: str | None = None


MIN_BOX_SIDE = 1  # px: narrower boxes are degenerate (detection codebases drop w < 1 or h < 1)


def is_well_formed_box(bbox: Any) -> bool:
    return (isinstance(bbox, list) and len(bbox) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox))


def degenerate(annotation: dict) -> str | None:
    """Why an annotation's box is degenerate, or None (a malformed bbox is not degenerate: it is bad input)."""
    bbox, area = annotation.get("bbox"), annotation.get("area")
    if not is_well_formed_box(bbox):
        return None
    if bbox[2] < MIN_BOX_SIDE or bbox[3] < MIN_BOX_SIDE:
        return f"degenerate box {bbox} (width or height under {MIN_BOX_SIDE} px)"
    if isinstance(area, (int, float)) and not isinstance(area, bool) and area <= 0:
        return f"degenerate box {bbox} (area {area})"
    return None


def clip_box(bbox: list[float], width: int, height: int) -> tuple[int, int, int, int]:
    """The box as whole pixels (left, top, right, bottom), clamped to the image as COCO loaders clamp."""
    x0, y0 = max(0, math.floor(bbox[0])), max(0, math.floor(bbox[1]))
    x1, y1 = min(width, math.ceil(bbox[0] + bbox[2])), min(height, math.ceil(bbox[1] + bbox[3]))
    return x0, y0, x1, y1


class COCOSource(RawSource):
    name = "coco"
    LAYOUTS = (".", "coco2014", "coco", "COCO")

    def locate(self, raw_dir: Path) -> Path:
        for sub in self.LAYOUTS:
            candidate = raw_dir / sub
            if any((candidate / "annotations" / f"instances_{f}.json").is_file() for f in SPLIT_FOLDERS.values()):
                return candidate.resolve()
        raise EntryError(
            f"{raw_dir}: no COCO 2014 annotations; expected annotations/instances_val2014.json (and val2014/) in it "
            "or in its coco2014/ folder"
        )

    def items(self, root: Path, config: BuildConfig) -> Iterator[WorkItem]:
        folder = SPLIT_FOLDERS[config.split]
        path = root / "annotations" / f"instances_{folder}.json"
        if not path.is_file():
            what = "not a readable file (a folder, or a link that loops)" if os.path.lexists(path) else "missing"
            raise EntryError(f"{path}: {what}; the {config.split} split is built from {folder}")
        coco = load_coco(path)
        categories = {c["id"]: c for c in coco.loadCats(coco.getCatIds())}
        if len(categories) < 4:
            raise EntryError(f"{path}: {len(categories)} categories; 4 per question need at least 4")
        by_super: dict[str, list[str]] = {}
        for c in categories.values():
            by_super.setdefault(c.get("supercategory", ""), []).append(c["name"])
        names = sorted(c["name"] for c in categories.values())
        for image_id in sorted(coco.getImgIds()):
            annotations = coco.imgToAnns.get(image_id, [])
            bad = [(a, why) for a in annotations if (why := degenerate(a))]
            usable = [a for a in annotations if not degenerate(a)]
            if len(usable) > 1 or (usable and usable[0].get("iscrowd", 0)) or not annotations:
                continue  # not a single-object image, degenerate boxes or not
            image = coco.imgs[image_id]
            key = f"{folder}/{image.get('file_name', image_id)}"
            if bad:
                annotation, why = bad[0]
                where = f"{path}: annotation {annotation.get('id')} (image {image_id}, {root / key})"
                others = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
                yield WorkItem(key, Candidate(key, None, dropped=f"{where}: {why}{others}"))
                continue
            annotation = usable[0]
            try:
                record = self.plan(path, image, annotation, categories, by_super, names, config)
            except ItemDropped as why:
                yield WorkItem(key, Candidate(key, None, dropped=str(why)))
                continue
            except EntryError as error:
                yield WorkItem(key, Candidate(key, None, str(error)))
                continue
            if record is not None:
                yield WorkItem(key, Candidate(key, record))

    def plan(self, path, image, annotation, categories, by_super, names, config) -> dict | None:
        """The entry fields of one image, None when it does not qualify; `EntryError` for a bad record."""
        folder = SPLIT_FOLDERS[config.split]
        image_file = Path(path).parent.parent / folder / str(image.get("file_name"))
        where = f"{path}: annotation {annotation.get('id')} (image {image.get('id')}, {image_file})"
        bbox = annotation.get("bbox")
        if not is_well_formed_box(bbox):
            raise EntryError(f"{where}: malformed bbox {bbox!r}")
        width, height = image.get("width"), image.get("height")
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            raise EntryError(f"{where}: image has no valid width/height")
        if annotation.get("category_id") not in categories:
            raise EntryError(f"{where}: unknown category_id {annotation.get('category_id')!r}")
        x0, y0, x1, y1 = clip_box(bbox, width, height)
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            raise ItemDropped(f"{where}: box {bbox} lies outside the {width}x{height} image")
        clipped = bbox[0] < 0 or bbox[1] < 0 or bbox[0] + bbox[2] > width or bbox[1] + bbox[3] > height
        if min(x1 - x0, y1 - y0) < MIN_SIDE or not MIN_AREA <= (x1 - x0) * (y1 - y0) / (width * height) <= MAX_AREA:
            return None
        rng = rng_for(config.seed, self.name, image["id"])
        g = rng.randint(*GRANULARITY)
        directions = list(DIRECTIONS)
        rng.shuffle(directions)
        for direction in directions:
            plan = plan_crop((x0, y0, x1, y1), width, height, direction, g, rng)
            if plan is not None and iou(plan["start"], (x0, y0, x1, y1)) <= MAX_START_IOU:
                break
        else:
            return None
        category = categories[annotation["category_id"]]
        answer = category["name"]
        # the paper's negatives are CLIP-mined; here: the same supercategory first, then any category
        labels = choose_categories(
            rng, sentence(answer), [sentence(n) for n in by_super[category.get("supercategory", "")]],
            [sentence(n) for n in names],
        )
        options = [*move_options(direction), rng.choice(ABSTAIN)]
        rng.shuffle(options)
        return {
            "id": int(image["id"]),
            "image_template": f"{folder}/{image['file_name']}",
            "first_image": 0, "num_images": 1, "reference_image": 0,
            "prompt": rng.choice(QUESTIONS), "options": options, "categories": labels,
            "answer": sentence(answer),
            "direction": direction, "granularity": g,
            "horizontal_step": plan["horizontal_step"], "vertical_step": plan["vertical_step"], "crop": plan["crop"],
            "annotation_id": annotation.get("id"), "bbox": [x0, y0, x1 - x0, y1 - y0],
            "coco_category": answer, "hard_negatives": "supercategory",
            "start_iou": round(iou(plan["start"], (x0, y0, x1, y1)), 4),
            **({"bbox_clipped": True} if clipped else {}),
        }

    def to_entry(self, root: Path, item: WorkItem, config: BuildConfig):
        candidate: Candidate = item.payload
        if candidate.dropped is not None:
            raise ItemDropped(candidate.dropped)
        if candidate.error is not None:
            raise EntryError(candidate.error)
        return Entry.from_json(candidate.record, f"{root / candidate.file_name}"), DirFrameReader(root)

    def write_sample(self, out: Path, per_source: int, seed: int) -> None:
        """`per_source` qualifying images per split (val2014 → test, train2014 → train)."""
        write_coco_sample(out, max(1, per_source), seed)


def load_coco(path: Path):
    from pycocotools.coco import COCO

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
            coco = COCO(str(path))
        # pycocotools indexes whatever keys are there: a file without its annotations would build nothing, silently
        missing = [key for key in ("images", "annotations", "categories") if not isinstance(coco.dataset.get(key), list)]
        if missing:
            raise KeyError(" and ".join(f"'{key}'" for key in missing))
        return coco
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EntryError(f"{path}: not a valid annotation file: {error}") from None
    except (KeyError, TypeError) as error:
        raise EntryError(f"{path}: not a COCO instances file (missing {error})") from None


# --- sample data: instances_*.json in the official schema and small JPEG scenes ------------------------------

SUPERCATEGORIES = {
    "person": "person",
    "vehicle": "bicycle car motorcycle airplane bus train truck boat",
    "outdoor": "traffic light|fire hydrant|stop sign|parking meter|bench",
    "animal": "bird cat dog horse sheep cow elephant bear zebra giraffe",
    "accessory": "backpack umbrella handbag tie suitcase",
    "sports": "frisbee|skis|snowboard|sports ball|kite|baseball bat|baseball glove|skateboard|surfboard|tennis racket",
    "kitchen": "bottle|wine glass|cup|fork|knife|spoon|bowl",
    "food": "banana|apple|sandwich|orange|broccoli|carrot|hot dog|pizza|donut|cake",
    "furniture": "chair|couch|potted plant|bed|dining table|toilet",
    "electronic": "tv|laptop|mouse|remote|keyboard|cell phone",
    "appliance": "microwave oven toaster sink refrigerator",
    "indoor": "book|clock|vase|scissors|teddy bear|hair drier|toothbrush",
}
UNUSED_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}  # COCO's 80 categories use ids 1..90 with these gaps
SAMPLE_SIZE = (320, 240)


def coco_categories() -> list[dict]:
    names = [(n, sc) for sc, text in SUPERCATEGORIES.items() for n in text.split("|" if "|" in text else " ")]
    ids = [i for i in range(1, 91) if i not in UNUSED_IDS]
    return [{"supercategory": sc, "id": i, "name": n} for i, (n, sc) in zip(ids, names)]


def _scene(rng, box: tuple[int, int, int, int]) -> bytes:
    """A photo-like JPEG: the shared procedural background with clutter and the object in `box`."""
    from PIL import ImageDraw, ImageFilter

    w, h = SAMPLE_SIZE
    image = scene(rng, SAMPLE_SIZE, horizon=rng.uniform(0.35, 0.65))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(2, 4)):  # small clutter, drawn first so the object stays whole
        cx, cy, r = rng.randint(0, w), rng.randint(0, h), rng.randint(5, 14)
        draw_object(draw, rng, (cx - r, cy - r, cx + r, cy + r))
    draw_object(draw, rng, box)
    return encode(image.filter(ImageFilter.GaussianBlur(0.6)), "JPEG")


def _polygon(box: tuple[int, int, int, int]) -> list[float]:
    x0, y0, x1, y1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    return [round(v, 2) for k in range(16) for v in
            (cx + rx * math.cos(2 * math.pi * k / 16), cy + ry * math.sin(2 * math.pi * k / 16))]


# Degenerate boxes as the real files hold them, one image each, appended after the regular sample images (own ids
# and random stream, so the regular images and their episodes keep their bytes): the build drops these by rule.
DEGENERATE_SAMPLES = (
    ("zero width", ((40.0, 30.0, 0.0, 25.0, 0.0),)),  # (x, y, w, h, area): a box of no width, area 0
    ("sub-pixel second box", ((60.0, 50.0, 90.0, 70.0, 4948.0), (12.0, 9.0, 4.0, 0.68, 1.35))),
)
DEGENERATE_ANNOTATION_IDS = 2_000_000  # past the regular sample's annotation ids


def write_coco_sample(out: Path, per_split: int, seed: int) -> None:
    """annotations/instances_{val,train}2014.json plus val2014/ and train2014/ JPEGs named as in the download:
    `per_split` single-object images per split, one image with two objects (which does not qualify) and the
    DEGENERATE_SAMPLES images (dropped by rule)."""
    categories = coco_categories()
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    next_annotation = 1
    for split, folder in (("val", "val2014"), ("train", "train2014")):
        rng = rng_for(seed, "coco-sample", folder)
        (out / folder).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        ids = sorted(rng.sample(range(1, 581_930), per_split + 1))
        for number, image_id in enumerate(ids):
            w, h = SAMPLE_SIZE
            boxes = []
            for _ in range(2 if number == per_split else 1):
                bw, bh = rng.randint(w // 5, w // 2), rng.randint(h // 5, h // 2)
                x0, y0 = rng.randint(0, w - bw), rng.randint(0, h - bh)
                boxes.append((x0, y0, x0 + bw, y0 + bh))
            category = rng.choice(categories)
            file_name = f"COCO_{folder}_{image_id:012d}.jpg"
            (out / folder / file_name).write_bytes(_scene(rng, boxes[0]))
            images.append({
                "license": rng.randint(1, 8), "file_name": file_name,
                "coco_url": f"http://images.cocodataset.org/{folder}/{file_name}", "height": h, "width": w,
                "date_captured": f"2013-11-{rng.randint(10, 25)} {rng.randint(0, 23):02d}:18:45",
                "flickr_url": f"http://farm{rng.randint(1, 9)}.staticflickr.com/{rng.randint(1000, 9999)}/"
                              f"{rng.randint(10**9, 10**10 - 1)}_{rng.randbytes(5).hex()}_z.jpg",
                "id": image_id,
            })
            for box in boxes:
                x0, y0, x1, y1 = box
                annotations.append({
                    "segmentation": [_polygon(box)], "area": round(math.pi * (x1 - x0) * (y1 - y0) / 4, 2),
                    "iscrowd": 0, "image_id": image_id, "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                    "category_id": category["id"], "id": next_annotation,
                })
                next_annotation += 1
        _add_degenerate_images(out, folder, seed, images, annotations, categories)
        document = {
            "info": {"description": "COCO 2014 Dataset", "url": "http://cocodataset.org", "version": "1.0",
                     "year": 2014, "contributor": "COCO Consortium", "date_created": "2017/09/01"},
            "licenses": [{"url": "http://creativecommons.org/licenses/by/2.0/", "id": i, "name": "Attribution License"}
                         for i in range(1, 9)],
            "images": images, "annotations": annotations, "categories": categories,
        }
        (out / "annotations" / f"instances_{folder}.json").write_text(json.dumps(document), encoding="utf-8")


def _add_degenerate_images(out: Path, folder: str, seed: int, images: list, annotations: list, categories) -> None:
    rng = rng_for(seed, "coco-sample-degenerate", folder)
    taken = {image["id"] for image in images}
    w, h = SAMPLE_SIZE
    for number, (_, boxes) in enumerate(DEGENERATE_SAMPLES):
        image_id = next(i for i in iter(lambda: rng.randrange(1, 581_930), None) if i not in taken)
        taken.add(image_id)
        file_name = f"COCO_{folder}_{image_id:012d}.jpg"
        x, y, bw, bh, _ = boxes[0]
        (out / folder / file_name).write_bytes(_scene(rng, (int(x), int(y), int(x + max(bw, 8)), int(y + max(bh, 8)))))
        images.append({"license": 1, "file_name": file_name,
                       "coco_url": f"http://images.cocodataset.org/{folder}/{file_name}", "height": h, "width": w,
                       "date_captured": "2013-11-14 11:18:45", "flickr_url": "", "id": image_id})
        category = rng.choice(categories)
        for k, (x, y, bw, bh, area) in enumerate(boxes):
            annotations.append({
                "segmentation": [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]], "area": area, "iscrowd": 0,
                "image_id": image_id, "bbox": [x, y, bw, bh], "category_id": category["id"],
                "id": DEGENERATE_ANNOTATION_IDS + 10 * number + k + (0 if folder == "val2014" else 1000),
            })


register(COCOSource())
