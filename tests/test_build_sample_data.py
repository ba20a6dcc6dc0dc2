"""`proactivebench sample-data` and `proactivebench build` through the command line, over every registered source."""

from __future__ import annotations

import hashlib
import json

import pytest

from proactivebench.builders.raw import RAW_SOURCES
from proactivebench.builders.build_runner import get_raw_source
from proactivebench.cli import main
from proactivebench.store import count_rows


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROACTIVEBENCH_CACHE", str(tmp_path / "cache"))


def tree(folder) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_sample_then_build_every_source(tmp_path, capsys):
    get_raw_source("rod")
    sources = sorted(RAW_SOURCES)
    assert {"rod", "vsod", "mvpn", "imagenet_c"} <= set(sources)
    assert main(["sample-data", str(tmp_path / "raw"), "--per-source", "3", "--seed", "5"]) == 0
    assert sorted(p.name for p in (tmp_path / "raw").iterdir() if not p.name.startswith(".")) == sources
    size = sum(p.stat().st_size for p in (tmp_path / "raw").rglob("*") if p.is_file())
    assert size < 3 * 1024**2  # small enough for CI
    for source in sources:
        code = main(["build", source, "--raw-dir", str(tmp_path / "raw" / source), "--out", str(tmp_path / "out")])
        assert code == 0, source
    counts = count_rows(tmp_path / "out")
    assert all(counts[s]["test"] > 0 for s in sources)
    assert {s: counts[s]["test"] for s in ("rod", "vsod", "mvpn", "imagenet_c")} == dict.fromkeys(
        ("rod", "vsod", "mvpn", "imagenet_c"), 3
    )
    report = json.loads((tmp_path / "out" / "build_report.json").read_text())
    assert sorted(report) == sources
    assert "wrote" in capsys.readouterr().out


def test_sample_is_deterministic_and_seeded(tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        assert main(["sample-data", str(tmp_path / name), "--sources", "rod", "vsod", "mvpn", "imagenet_c",
                     "--per-source", "2", "--seed", str(seed)]) == 0
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert tree(tmp_path / "a") != tree(tmp_path / "c")


def test_bad_command_line_input_exits_2(tmp_path, capsys):
    assert main(["build", "rod", "--raw-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "error: " in capsys.readouterr().err
    assert main(["build", "vsod", "--raw-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "OcclusionDataSet-MM20" in capsys.readouterr().err
    assert main(["sample-data", str(tmp_path / "s"), "--per-source", "0"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["build", "nosuch", "--raw-dir", str(tmp_path), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2


def test_help_texts(capsys):
    for command in ("build", "sample-data"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--seed" in capsys.readouterr().out
