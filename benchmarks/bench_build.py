"""Build throughput and memory per source, against the machine's decode + re-encode limit.

For each source and each input size, this writes a native-layout sample of that size (`sample-data`, not
timed), builds it in a fresh subprocess (so its peak RSS is the build's own), and prints images per second and
peak memory (best of `--repeat` runs). The limit is the same machine's images per second for decoding and re-encoding the very frames the
build wrote (same format), measured in the same process right after the build (the machine is shared, so
both sides see the same load); it is the least a builder that checks its images could do per image. Peak
memory is the build process's own VmHWM (plus its workers with --num-proc). Memory
should stay flat between the sizes: the builders stream, holding one row group (ROW_GROUP_ROWS episodes or
ROW_GROUP_BYTES of frames, whichever comes first) before it is written. Arrow's conversion and the parquet writer
take about six times that group at the flush, so with large frames the peak grows until the first group is full
(100 episodes or 64 MB) and is flat from there: compare sizes on the same side of it.

ChangeIt decodes videos, not JPEG files: its line also shows its own floor, the rate if nothing but decoding
each video once were paid (`source_floor`).

The sample writers draw tiny frames (64-128 px), so per-episode overhead dominates there. `--frames realistic`
enlarges every input image of the sample to the size of the real download before the build (ImageNet-C
224x224 JPEG, ROD, VSOD and COCO 640x480 JPEG, MVP-N 640x480 PNG, ChangeIt 640x360 video), same format, with
sensor-like noise so that they compress like photos; COCO's annotation coordinates are scaled with them.
QuickDraw's frames are rendered by the builder at their real size either way; its test split takes 10
drawings per category, so the bench adds categories (copies of the sample's files under new words) to reach
a size.

    .venv/bin/python benchmarks/bench_build.py                  # all sources, sizes 10 and 40 episodes
    .venv/bin/python benchmarks/bench_build.py --sources rod --sizes 20 80 --num-proc 2
    .venv/bin/python benchmarks/bench_build.py --frames sample realistic --sizes 40 160
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from proactivebench.builders.build_runner import build_source, get_raw_source
sys.path.insert(0, sys.argv[5])
from bench_build import decode_reencode_rate, source_floor
source, raw, out, num_proc = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
get_raw_source(source)  # imports every source module: a one-off cost, not throughput
import PIL.Image; PIL.Image.init()
start = time.perf_counter()
report = build_source(source, raw, out, num_proc=num_proc, progress=False)
seconds = time.perf_counter() - start
# VmHWM is this process's own peak (ru_maxrss would carry the parent's high-water mark across fork + exec).
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
peak_kb = int(status["VmHWM"].split()[0]) + (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if num_proc > 1 else 0)
limit = decode_reencode_rate(out, source)  # same process, same moment: the fairest comparison on a shared machine
floor = source_floor(out, raw, source, report.images)
print(json.dumps({"images": report.images, "episodes": report.episodes, "seconds": seconds, "peak_mb": peak_kb / 1024,
                  "limit": limit, "floor": floor}))
"""


def build_in_subprocess(source: str, raw: Path, out: Path, num_proc: int) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, source, str(raw), str(out), str(num_proc), str(Path(__file__).parent)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"build of {source} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def decode_reencode_rate(out: Path, source: str) -> float:
    """Images per second for decode + re-encode (in the frame's own format) of the frames the build wrote (the
    first LIMIT_FRAMES: a rate needs no more, and large PNGs re-encode slowly)."""
    from PIL import Image

    from proactivebench.store import iter_rows

    frames = [f["bytes"] for row in iter_rows(out, [source]) for f in row["frames"]][:LIMIT_FRAMES]
    start = time.perf_counter()
    for data in frames:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or "PNG"
            image.load()
            buffer = io.BytesIO()
            image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return len(frames) / (time.perf_counter() - start)


def source_floor(out: Path, raw: Path, source: str, images: int) -> float | None:
    """ChangeIt's own limit: its frames come out of videos, which decode sequentially (every frame up to the
    last second a walk needs), so the JPEG limit above is out of its reach. This is its images per second if
    nothing but one `decode_seconds` per video (the seconds its episodes show) were paid. None elsewhere."""
    if source != "changeit":
        return None
    from collections import defaultdict

    from proactivebench.builders.sources import changeit
    from proactivebench.store import iter_rows

    root = changeit.ChangeItSource().locate(Path(raw))
    seconds: dict[Path, set[int]] = defaultdict(set)
    for row in iter_rows(out, [source]):
        media = root / json.loads(row["meta"])["media"]
        if media.is_file():
            seconds[media] |= {int(Path(f["path"]).stem) for f in row["frames"]}
    start = time.perf_counter()
    for media, wanted in seconds.items():
        changeit.decode_seconds(media, wanted, "bench")
    return images / (time.perf_counter() - start)


# --- input sizes ----------------------------------------------------------------------------------------

# (width, height) of the real downloads' frames; QuickDraw renders its own.
REALISTIC = {"imagenet_c": (224, 224), "rod": (640, 480), "vsod": (640, 480), "mvpn": (640, 480), "coco": (640, 480),
             "changeit": (640, 360)}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov")
LIMIT_FRAMES = 400
QUICKDRAW_PER_CLASS = 10  # builders/sources/quickdraw.py TEST_PER_CLASS


def _noise(size: tuple[int, int]):
    """One fixed noise field per size (sigma 4): photo-like entropy, the same inputs on every run."""
    import numpy as np

    return np.random.default_rng(0).normal(0, 4, (size[1], size[0], 3)).astype(np.float32)


def enlarge_image(data: bytes, size: tuple[int, int]) -> bytes:
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        fmt, mode = image.format, image.mode
        pixels = np.asarray(image.convert("RGB").resize(size, Image.BICUBIC), dtype=np.float32)
    enlarged = Image.fromarray(np.clip(pixels + _noise(size), 0, 255).astype(np.uint8)).convert(mode)
    buffer = io.BytesIO()
    enlarged.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def enlarge_video(path: Path, size: tuple[int, int]) -> None:
    import cv2
    import numpy as np

    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    temporary = path.with_name(f"tmp-{path.name}")
    writer = cv2.VideoWriter(str(temporary), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    noise = _noise(size)
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC).astype(np.float32)
        writer.write(np.clip(frame + noise, 0, 255).astype(np.uint8))
    capture.release()
    writer.release()
    os.replace(temporary, path)


def enlarge_archive(path: Path, size: tuple[int, int]) -> None:
    import tarfile

    temporary = path.with_name(f"tmp-{path.name}")
    with tarfile.open(path, "r:gz") as source, tarfile.open(temporary, "w:gz") as target:
        for member in source:
            data = source.extractfile(member).read() if member.isfile() else None
            if data is not None and member.name.lower().endswith(IMAGE_SUFFIXES):
                data = enlarge_image(data, size)
                member.size = len(data)
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    os.replace(temporary, path)


def scale_coco_annotations(path: Path, size: tuple[int, int]) -> None:
    """Boxes, polygons and image sizes scaled to the enlarged images (the crops are planned from them)."""
    document = json.loads(path.read_text())
    factors = {}
    for image in document["images"]:
        factors[image["id"]] = (size[0] / image["width"], size[1] / image["height"])
        image["width"], image["height"] = size
    for annotation in document["annotations"]:
        fx, fy = factors[annotation["image_id"]]
        x, y, w, h = annotation["bbox"]
        annotation["bbox"] = [x * fx, y * fy, w * fx, h * fy]
        annotation["area"] = annotation["area"] * fx * fy
        annotation["segmentation"] = [[v * (fx if i % 2 == 0 else fy) for i, v in enumerate(polygon)]
                                      for polygon in annotation["segmentation"]]
    path.write_text(json.dumps(document))


def enlarge(raw: Path, source: str) -> None:
    """Every input frame of a sample at the real download's size (see the module's docstring)."""
    size = REALISTIC.get(source)
    if size is None:
        return
    for path in sorted(p for p in raw.rglob("*") if p.is_file()):
        name = path.name.lower()
        if name.endswith(IMAGE_SUFFIXES):
            path.write_bytes(enlarge_image(path.read_bytes(), size))
        elif name.endswith(".tar.gz"):
            enlarge_archive(path, size)
        elif name.endswith(VIDEO_SUFFIXES):
            enlarge_video(path, size)
        elif source == "coco" and name.startswith("instances_") and name.endswith(".json"):
            scale_coco_annotations(path, size)


def grow_quickdraw(raw: Path, episodes: int) -> None:
    """More categories (the sample's files under new words) until the test split holds `episodes` drawings."""
    files = sorted(raw.glob("*.ndjson"))
    for number in range(len(files), -(-episodes // QUICKDRAW_PER_CLASS)):
        original = files[number % len(files)]
        word = f"{original.stem} {number // len(files) + 1}"
        lines = [json.loads(line) | {"word": word} for line in original.read_text().splitlines()]
        (raw / f"{word}.ndjson").write_text("".join(json.dumps(line) + "\n" for line in lines))


def write_input(raw: Path, source: str, size: int, frames: str) -> None:
    from proactivebench.builders.build_runner import get_raw_source

    raw.mkdir(parents=True)
    get_raw_source(source).write_sample(raw, size, 0)
    if source == "quickdraw":
        grow_quickdraw(raw, size)
    if frames == "realistic":
        enlarge(raw, source)


def frame_size(out: Path, source: str) -> str:
    from PIL import Image

    from proactivebench.store import iter_rows

    row = next(iter_rows(out, [source]))
    with Image.open(io.BytesIO(row["frames"][row["reference_frame"]]["bytes"])) as image:  # the full view
        return f"{image.format}{image.size[0]}x{image.size[1]}"


def main() -> None:
    from proactivebench.builders.raw import RAW_SOURCES
    from proactivebench.builders.build_runner import get_raw_source

    get_raw_source("rod")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", nargs="+", default=sorted(RAW_SOURCES), help="sources (default: all)")
    parser.add_argument("--sizes", nargs=2, type=int, default=[10, 40], metavar="N", help="episodes per source")
    parser.add_argument("--num-proc", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest counts (default 3)")
    parser.add_argument("--frames", nargs="+", choices=("sample", "realistic"), default=["sample"],
                        help="input frames as the sample writers draw them (tiny, quick) and/or enlarged to the real "
                             "downloads' sizes (default: sample)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-build-") as scratch:
        scratch = Path(scratch)
        os.environ["PROACTIVEBENCH_CACHE"] = str(scratch / "cache")  # ROD's archive extraction, counted per size
        header = (f"{'source':>11} {'frames':>13} {'episodes':>8} {'images':>7} {'img/s':>8} {'peak MB':>8} "
                  f"{'limit img/s':>11} {'% limit':>8}")
        print(header)
        for frames in args.frames:
            for source in args.sources:
                for size in args.sizes:
                    raw = scratch / f"raw-{frames}-{size}" / source
                    write_input(raw, source, size, frames)
                    # Best of --repeat runs on both sides: the machine is shared, the fastest run is the least
                    # disturbed. ROD's first run also extracts its archives into the cache; later runs reuse it.
                    outs = [scratch / f"out-{frames}-{source}-{size}-{r}" for r in range(args.repeat)]
                    runs = [build_in_subprocess(source, raw, out, args.num_proc) for out in outs]
                    figures = min(runs, key=lambda f: f["seconds"])
                    figures["peak_mb"] = max(f["peak_mb"] for f in runs)
                    rate = figures["images"] / figures["seconds"]
                    limit = max(f["limit"] for f in runs)
                    floor = max(f["floor"] for f in runs) if runs[0]["floor"] else None
                    floor_text = f"  (video decoding alone: {floor:.0f} img/s, {100 * rate / floor:.0f}%)" if floor else ""
                    shown = frame_size(outs[0], source)
                    row = {"source": source, "frames": frames, "frame": shown, "size": size, **figures,
                           "images_per_s": rate, "limit_images_per_s": limit, "share_of_limit": rate / limit,
                           "floor_images_per_s": floor}
                    rows.append(row)
                    print(f"{source:>11} {shown:>13} {figures['episodes']:>8} {figures['images']:>7} {rate:>8.0f} "
                          f"{figures['peak_mb']:>8.0f} {limit:>11.0f} {100 * rate / limit:>7.0f}%{floor_text}", flush=True)
                    for out in outs:
                        shutil.rmtree(out, ignore_errors=True)
                    shutil.rmtree(raw, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
