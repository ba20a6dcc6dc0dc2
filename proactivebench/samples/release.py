"""A tiny release in the authors' format (jsonl + image folders), for tests, the demo and trying `import-official`.

The entries are the synthetic ones of the golden traces of docs/protocol.md §12, so their behaviour is known.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from proactivebench.sources import SOURCES

from proactivebench.builders.scenarios.rod import MISSING_FRAME

ROD_OPTIONS = ["Move the red blocks to the left.", "Move the red blocks to the right.", "I cannot tell."]
QD_CATEGORIES = ["The eiffel tower.", "Potato.", "Bed.", "Tooth."]
COCO_CROP = {"top": 100, "left": 50, "height": 300, "width": 400}


def golden_entries() -> dict[str, list[dict[str, Any]]]:
    """The synthetic entries of docs/protocol.md §12, keyed by our source names."""
    common = {"prompt": "What is the object in the image?"}
    return {
        "rod": [
            {
                **common, "id": 0, "image_template": "ROD/natural_bluebl_greenr-banana-s{image}.jpg",
                "first_image": 7, "num_images": 14, "reference_image": 0, "options": ROD_OPTIONS,
                "categories": ["Screwdriver.", "Banana.", "Vase.", "Spatula."], "answer": "Banana.",
            },
            {
                **common, "id": 1, "image_template": "ROD/kitchen_white_box-cup-s{image}.jpg",
                "first_image": 7, "num_images": 14, "reference_image": 0, "options": ROD_OPTIONS[::-1],
                "categories": ["Cup.", "Plate.", "Hammer.", "Mouse."], "answer": "Cup.",
            },
        ],
        "vsod": [
            {
                "id": 6, "prompt": "Can you say who is speaking?", "image_template": "OcclusionDataSet-MM20/v006/{image}.jpg",
                "first_image": 1, "num_images": 5, "reference_image": 3, "strong_occlusions": True,
                "options": ["I cannot answer this question.", "Rewind the video.", "Wait for the occlusion to disappear."],
                "categories": ["Anna li.", "Bob ray.", "Ge you.", "Tom x."], "answer": "Ge you.",
            },
            {
                "id": 7, "prompt": "How many people are there?", "image_template": "OcclusionDataSet-MM20/v007/{image}.jpg",
                "first_image": 0, "num_images": 4, "reference_image": 2, "strong_occlusions": False,
                "options": ["I cannot answer this question.", "Rewind the video.", "Wait for the occlusion to disappear."],
                "categories": ["One.", "Two.", "Three.", "Four."], "answer": "Two.",
            },
        ],
        "mvpn": [
            {
                **common, "id": 5, "image_template": "MVP-N/obj/{informative}/{image}.png", "first_image": 3,
                "num_images": 3, "reference_image": 9, "valid_images": [3, 7, 9],
                "options": ["Rotate the object.", "I do not know what is this object."],
                "categories": ["Shampoo.", "Lotion.", "Soap.", "Gel."], "answer": "Soap.",
            }
        ],
        "imagenet_c": [
            {
                **common, "id": 2, "image_template": "ImageNet-C/gaussian_blur/{level}/n02992211/ILSVRC2012_val_00000001.JPEG",
                "first_image": 5, "num_images": 5, "reference_image": 1, "quality_answer": "Deblur the image.",
                "options": ["Denoise the image.", "Increase image resolution.", "Reduce brightness.", "I cannot tell.",
                            "Deblur the image."],
                "categories": ["Violin.", "Guitar.", "Banjo.", "Cello."], "answer": "Cello.",
            }
        ],
        "quickdraw": [
            {
                **common, "id": 0, "image_template": "QuickDraw/bed/0/{image}.png", "first_image": 0, "num_images": 3,
                "reference_image": 2, "options": ["I cannot answer this question.", "Make this drawing more complete."],
                "categories": QD_CATEGORIES, "answer": "Bed.",
            }
        ],
        "changeit": [
            {
                "id": 0, "prompt": "Which object is shown?", "image_template": "ChangeIt/apple/vid0/{image}.jpg",
                "first_image": 0, "num_images": 10, "reference_image": 9, "step_size": 4, "max_steps": 5,
                "options": ["I cannot answer this question.", "Wait for the object to appear.", "Rewind the video."],
                "categories": ["Apple.", "Pear.", "Onion.", "Potato."], "answer": "Apple.",
            }
        ],
        "coco": [
            _coco_entry(0, "up_left", 3, 10, 20, ["I cannot tell.", "Move the camera up.", "Move the camera to the left."]),
            _coco_entry(1, "zoom", 3, 5, 7, ["Move farther from the object.", "I cannot tell."]),
            _coco_entry(2, "right", 3, 10, 20, ["I cannot tell.", "Move the camera to the right."]),
            # id 3 is not among the paper's kept ids: it lands in `excluded`.
            _coco_entry(3, "down", 4, 10, 20, ["Move the camera down.", "I cannot tell."]),
        ],
    }


def _coco_entry(sample_id: int, direction: str, g: int, h0: float, v0: float, options: list[str]) -> dict:
    return {
        "id": sample_id, "prompt": "What is the main object?", "image_template": "coco2014/val2014/COCO_val2014_000000000042.jpg",
        "first_image": 0, "num_images": 1, "reference_image": 0, "direction": direction, "granularity": g,
        "horizontal_step": h0, "vertical_step": v0, "crop": dict(COCO_CROP), "options": options,
        "categories": ["Dog.", "Cat.", "Horse.", "Sheep."], "answer": "Dog.",
    }


def release_image_paths(source: str, entry: dict[str, Any]) -> list[str]:
    """Every image file the release would hold for an entry."""
    template, n = entry["image_template"], entry["num_images"]
    if source == "rod":
        paths = [template.format(image=i) for i in range(n)]
        return [p for p in paths if MISSING_FRAME not in p]  # that frame is missing from the source
    if source in ("vsod", "quickdraw"):
        return [template.format(image=str(i).zfill(4)) for i in range(n)]
    if source == "mvpn":
        return [template.format(informative=k, image=str(i).zfill(4)) for i in entry["valid_images"] for k in (0, 1)]
    if source == "imagenet_c":
        return [template.format(level=level) for level in range(1, 6)]
    if source == "changeit":
        return [template.format(image=str(i)) for i in range(n)]
    return [template]


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


def write_release(data_dir: Path | str, entries: dict[str, list[dict[str, Any]]], coco_size=(640, 480)) -> Path:
    """Write `<Name>_preprocessed.jsonl` files and every image they reference under `data_dir`."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    for source, records in entries.items():
        name = SOURCES[source].official_name
        with open(data_dir / f"{name}_preprocessed.jsonl", "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record) + "\n")
        for record in records:
            for path in release_image_paths(source, record):
                target = data_dir / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(synthetic_image(path, coco_size if source == "coco" else (64, 48)))
    return data_dir


def write_sample_release(data_dir: Path | str) -> Path:
    return write_release(data_dir, golden_entries())
