"""Every source, both --on-error modes: a damaged input file is named by its path on disk, in the error of a
failing build and in the skip recorded in build_report.json (not by a template path the user cannot find)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from proactivebench.builders.build_runner import BuildError
from proactivebench.builders.sources.rod import write_tar

from build_helpers import build, write_sample


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROACTIVEBENCH_CACHE", str(tmp_path / "cache"))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def damage_rod(raw: Path) -> str:
    """Truncate one member inside the first archive; the message names the archive and the member."""
    archive = sorted(raw.glob("rod_*.tar.gz"))[0]
    with tarfile.open(archive, "r:gz") as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]
    name, data = members[2]
    members[2] = (name, data[: len(data) // 2])
    write_tar(archive, members)
    return f"{archive.resolve()}:{name}"


def damage_vsod(raw: Path) -> str:
    victim = sorted((raw / "OcclusionDataSet-MM20" / "Data" / "test").rglob("*.jpg"))[1]
    _truncate(victim)
    return str(victim)


def damage_mvpn(raw: Path) -> str:
    victim = sorted((raw / "data" / "test").rglob("*.png"))[1]
    _truncate(victim)
    return str(victim)  # data/test/<class>/<set>/<class>_<set>_<view>_<flag>.png, not the template name


def damage_imagenet_c(raw: Path) -> str:
    victim = sorted(raw.rglob("*.JPEG"))[2]
    _truncate(victim)
    return str(victim)


def damage_quickdraw(raw: Path) -> str:
    victim = sorted(raw.glob("*.ndjson"))[0]
    lines = victim.read_text().splitlines(keepends=True)
    lines[0] = lines[0][: len(lines[0]) // 2] + "\n"
    victim.write_text("".join(lines))
    return f"{victim.resolve()}:1"


def damage_changeit(raw: Path) -> str:
    victim = sorted((raw / "downloads").rglob("*.mp4"))[0]
    _truncate(victim)
    return str(victim.resolve())


def damage_coco(raw: Path) -> str:
    document = json.loads((raw / "annotations" / "instances_val2014.json").read_text())
    victim = raw / "val2014" / document["images"][0]["file_name"]
    _truncate(victim)
    return str(victim.resolve())


DAMAGE = {
    "rod": damage_rod, "vsod": damage_vsod, "mvpn": damage_mvpn, "imagenet_c": damage_imagenet_c,
    "quickdraw": damage_quickdraw, "changeit": damage_changeit, "coco": damage_coco,
}


@pytest.mark.parametrize("source", sorted(DAMAGE))
def test_a_damaged_file_is_named_on_disk_in_both_modes(source, tmp_path):
    raw = write_sample(tmp_path / "raw", source, per_source=2)
    named = DAMAGE[source](raw)

    with pytest.raises(BuildError) as failure:
        build(source, raw, tmp_path / "fail")
    assert named in str(failure.value), str(failure.value)
    assert "\n" not in str(failure.value)

    out = tmp_path / "skip"
    report = build(source, raw, out, on_error="skip")
    on_disk = json.loads((out / "build_report.json").read_text())[source]["test"]["skipped"]
    assert [s.reason for s in report.skipped] == [s["reason"] for s in on_disk]
    assert any(named in s["reason"] for s in on_disk), on_disk
    assert report.episodes > 0  # the other items still built
