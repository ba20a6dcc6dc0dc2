"""Frame validation (`check_decodes`): the 1/8-scale JPEG decode must reject every file a full decode rejects."""

from __future__ import annotations

import re
import io

import numpy as np
import pytest
from PIL import Image

from proactivebench.builders.scenarios.base import EntryError, check_decodes

from build_helpers import build, write_sample


def jpeg(progressive: bool = False, mode: str = "RGB", size=(320, 240)) -> bytes:
    noise = np.random.default_rng(0).integers(0, 40, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(noise + np.linspace(0, 200, size[0], dtype=np.uint8)[None, :, None]).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, progressive=progressive)
    return buffer.getvalue()


def full_decode_fails(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception:
        return True
    return False


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_truncated_or_corrupt_jpeg_fails_naming_the_file(progressive, mode):
    data = jpeg(progressive, mode)
    check_decodes(data, "ok.jpg", "rec")  # a whole file passes
    cases = [data[:cut] for cut in (len(data) // 3, len(data) // 2, len(data) - 200, len(data) - 3)]
    for position in range(len(data) // 4, len(data), len(data) // 10):
        broken = bytearray(data)
        broken[position:position + 8] = b"\xff" * 8
        cases.append(bytes(broken))
    rejected = 0
    for case in cases:
        if full_decode_fails(case):  # whatever a full decode rejects, the check rejects, naming the file
            rejected += 1
            with pytest.raises(EntryError, match=r"rec: image frame\.jpg does not decode"):
                check_decodes(case, "frame.jpg", "rec")
    assert rejected >= 4  # every truncation at least


def test_png_is_fully_decoded():
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, format="PNG")
    data = buffer.getvalue()
    check_decodes(data, "ok.png", "rec")
    with pytest.raises(EntryError, match="image frame.png does not decode"):
        check_decodes(data[: len(data) // 2], "frame.png", "rec")


def test_truncated_tail_of_a_source_frame_fails_the_build(tmp_path):
    """A frame cut a few bytes before its end (header intact) still stops a build, with the file named."""
    raw = write_sample(tmp_path, "imagenet_c", per_source=2)
    victim = sorted(raw.rglob("*.JPEG"))[3]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 40])
    with pytest.raises(ValueError, match=rf"image {re.escape(str(victim))} does not decode"):
        build("imagenet_c", raw, tmp_path / "out")


def test_a_build_run_from_inside_its_raw_folder_keeps_the_frame_bytes(tmp_path, monkeypatch):
    """Frame names are paths relative to the raw folder; run from there, every name is a file under the current
    directory, which `datasets.Image.encode_example` would store as a bare path without bytes."""
    from proactivebench.store import iter_rows

    raw = write_sample(tmp_path, "imagenet_c", per_source=2)
    monkeypatch.chdir(raw)
    build("imagenet_c", ".", tmp_path / "out")
    frames = [f for row in iter_rows(tmp_path / "out", ["imagenet_c"]) for f in row["frames"]]
    assert frames and all((raw / f["path"]).is_file() for f in frames)  # the names do point into the cwd
    assert all(f["bytes"] == (raw / f["path"]).read_bytes() for f in frames)
