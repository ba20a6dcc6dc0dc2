"""benchmarks/bench_build.py's realistic inputs: enlarged frames still build, QuickDraw grows to the asked size."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from PIL import Image

from build_helpers import build, episodes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_build  # noqa: E402


def size_of(data: bytes) -> tuple[str, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as image:
        return image.format, image.size


def test_realistic_coco_and_rod_build_at_the_real_sizes(tmp_path):
    for source, fmt in (("coco", "JPEG"), ("rod", "JPEG")):
        raw = tmp_path / "raw" / source
        bench_build.write_input(raw, source, 2, "realistic")
        build(source, raw, tmp_path / "out")
        records = episodes(tmp_path / "out", source)
        assert records, source
        for record in records:
            assert size_of(record.frames[record.reference_frame].data) == (fmt, bench_build.REALISTIC[source])
    # COCO's boxes were scaled with the images: the crops stay whole pixels inside the enlarged image
    document = json.loads((tmp_path / "raw" / "coco" / "annotations" / "instances_val2014.json").read_text())
    assert {(i["width"], i["height"]) for i in document["images"]} == {bench_build.REALISTIC["coco"]}


def test_realistic_changeit_video_is_enlarged(tmp_path):
    raw = tmp_path / "raw" / "changeit"
    bench_build.write_input(raw, "changeit", 1, "realistic")
    report = build("changeit", raw, tmp_path / "out")
    assert report.episodes == 2
    record = episodes(tmp_path / "out", "changeit")[0]
    assert size_of(record.frames[0].data) == ("JPEG", bench_build.REALISTIC["changeit"])


def test_quickdraw_grows_by_categories(tmp_path):
    raw = tmp_path / "raw" / "quickdraw"
    bench_build.write_input(raw, "quickdraw", 75, "sample")
    report = build("quickdraw", raw, tmp_path / "out")
    assert report.episodes == 80 and len(list(raw.glob("*.ndjson"))) == 8
