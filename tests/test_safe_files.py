"""User files and hostile ids (issue 17 items 1, 5, 6): a command never replaces or deletes a file it did not write,
refuses with one line, and ids never leave the folder they are written under. Each test hashes the tree around
the command and asserts that nothing outside the command's own output changed."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from proactivebench.cli import main
from proactivebench.safe_files import MANIFEST_NAME, clean_stale, safe_name, scratch_dir
from proactivebench.store import write_split


def tree(root: Path, skip: Path | None = None) -> dict[str, str]:
    """{relative path: sha1} of every file under root, except under `skip` (the command's own output)."""
    found = {}
    for path in sorted(Path(root).rglob("*")):
        if path.is_file() and not (skip is not None and path.is_relative_to(skip)):
            found[path.relative_to(root).as_posix()] = hashlib.sha1(path.read_bytes()).hexdigest()
    return found


def refused(argv: list[str], capsys, *needles: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if "error" in line.lower()]  # progress bars aside
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    assert main(["sample-data", str(root), "--sources", "quickdraw", "--per-source", "2"]) == 0
    return root / "quickdraw"


def build(raw: Path, out: Path) -> int:
    return main(["build", "quickdraw", "--raw-dir", str(raw), "--out", str(out)])


def test_build_refuses_a_folder_of_the_users(raw, tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "data" / "quickdraw").mkdir(parents=True)
    (out / "README.md").write_text("my notes\n")
    (out / "data" / "quickdraw" / "mystuff.txt").write_text("keep me\n")
    before = tree(tmp_path)
    refused(["build", "quickdraw", "--raw-dir", str(raw), "--out", str(out)], capsys, str(out), "README.md", "new or empty")
    assert tree(tmp_path) == before


def test_build_refuses_out_equal_to_raw_dir(raw, tmp_path, capsys):
    copy = tmp_path / "raw"
    shutil.copytree(raw, copy)
    before = tree(tmp_path)
    refused(["build", "quickdraw", "--raw-dir", str(copy), "--out", str(copy)], capsys, "--raw-dir", str(copy))
    assert tree(tmp_path) == before


def test_build_keeps_a_users_file_inside_its_own_output(raw, tmp_path, capsys):
    out = tmp_path / "out"
    assert build(raw, out) == 0
    (out / "data" / "quickdraw" / "mystuff.txt").write_text("keep me\n")
    (out / "notes.txt").write_text("mine\n")
    assert build(raw, out) == 0
    assert (out / "data" / "quickdraw" / "mystuff.txt").read_text() == "keep me\n"
    assert (out / "notes.txt").read_text() == "mine\n"
    assert MANIFEST_NAME in os.listdir(out)


def test_build_refuses_to_replace_a_shard_it_did_not_write(raw, tmp_path, capsys):
    out = tmp_path / "out"
    assert build(raw, out) == 0
    shard = next((out / "data" / "quickdraw").glob("test-*.parquet"))
    manifest = out / MANIFEST_NAME
    manifest.write_text(manifest.read_text().replace(shard.relative_to(out).as_posix(), "gone"))
    before = tree(tmp_path)
    refused(["build", "quickdraw", "--raw-dir", str(raw), "--out", str(out)], capsys, shard.name, "not written by")
    assert tree(tmp_path) == before


def test_filter_refuses_out_equal_to_predictions(imported_dir, tmp_path, capsys):
    predictions = tmp_path / "preds"
    assert main(["curate", "first-turn", "--dataset", str(imported_dir), "--model", "baseline:random", "--out", str(predictions)]) == 0
    capsys.readouterr()
    before = tree(tmp_path)
    refused(["curate", "filter", "--dataset", str(imported_dir), "--predictions", str(predictions), "--out",
             str(predictions), "--overwrite"], capsys, "--predictions")
    assert tree(tmp_path) == before


def test_filter_overwrite_never_deletes_a_users_file(imported_dir, tmp_path, capsys):
    predictions = tmp_path / "preds"
    assert main(["curate", "first-turn", "--dataset", str(imported_dir), "--model", "baseline:random", "--out", str(predictions)]) == 0
    out = tmp_path / "bench"
    args = ["curate", "filter", "--dataset", str(imported_dir), "--predictions", str(predictions), "--out", str(out), "--overwrite"]
    assert main(args) == 0
    (out / "mine.txt").write_text("mine\n")
    capsys.readouterr()
    before = tree(tmp_path)
    refused(args, capsys, "mine.txt", "not written by")
    assert tree(tmp_path) == before


def test_sample_data_refuses_a_folder_of_the_users(tmp_path, capsys):
    out = tmp_path / "downloads"
    (out / "quickdraw").mkdir(parents=True)
    (out / "quickdraw" / "house.ndjson").write_text("{}\n")
    before = tree(tmp_path)
    refused(["sample-data", str(out), "--sources", "quickdraw"], capsys, str(out), "new or empty")
    assert tree(tmp_path) == before


def test_publish_never_replaces_a_card_it_did_not_write(imported_dir, tmp_path, capsys):
    folder = tmp_path / "bench"
    shutil.copytree(imported_dir, folder)
    (folder / MANIFEST_NAME).unlink()  # as if downloaded: the card is someone else's
    before = tree(tmp_path)
    refused(["publish", "--dataset", str(folder)], capsys, "README.md", "--keep-card")
    assert tree(tmp_path) == before


def test_import_official_refuses_out_equal_to_data_dir(release_dir, tmp_path, capsys):
    copy = tmp_path / "release"
    shutil.copytree(release_dir, copy)
    before = tree(tmp_path)
    refused(["import-official", "--data-dir", str(copy), "--out", str(copy)], capsys, "--data-dir")
    assert tree(tmp_path) == before


def test_publish_refuses_a_hostile_sample_id(imported_rows, tmp_path, capsys):
    folder = tmp_path / "bench"
    row = dict(imported_rows["quickdraw-000000"], sample_id="quickdraw-../../x")
    write_split(folder, "quickdraw", "test", [row])
    before = tree(tmp_path)
    line = refused(["publish", "--dataset", str(folder)], capsys, "test-00000-of-00001.parquet", "sample_id")
    assert "quickdraw-../../x" in line
    assert tree(tmp_path) == before


def test_browse_cache_keeps_hostile_ids_inside(tmp_path, imported_rows):
    from proactivebench.curation.browse import cache_frame

    data = imported_rows["quickdraw-000000"]["frames"][0]["bytes"]
    cache = tmp_path / "cache"
    for hostile in ("../../escape", "/tmp/absolute", "..", "a/b/c", ".hidden"):
        cached = cache_frame(cache, hostile, 0, data)
        assert cached.path.resolve().is_relative_to(cache.resolve()), hostile
        assert cached.path.parent.parent == cache
    assert not (tmp_path / "escape").exists()
    assert safe_name("a/b") != safe_name("a_b")  # the hash keeps distinct ids distinct


def test_stale_staging_of_a_dead_process_is_cleaned(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import sys; from proactivebench.safe_files import scratch_dir; print(scratch_dir(sys.argv[1], 'x'))",
         str(tmp_path)], capture_output=True, text=True, check=True,
    ).stdout.strip()
    user = tmp_path / ".staging-mine"
    user.mkdir()
    assert Path(dead).is_dir()
    live = scratch_dir(tmp_path, "y")  # creating one cleans what dead runs left
    assert clean_stale(tmp_path) == []
    assert live.is_dir() and user.is_dir() and not Path(dead).exists()


def test_a_killed_build_leaves_staging_that_the_next_build_cleans(raw, tmp_path):
    out = tmp_path / "out"
    assert build(raw, out) == 0
    code = (
        "import os, sys; from proactivebench.store import StagedOutput\n"
        "s = StagedOutput(sys.argv[1]).__enter__(); (s.root / 'half').write_text('x'); os._exit(9)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(out)], check=False)
    assert [p for p in out.iterdir() if p.name.startswith(".staging-")]
    assert build(raw, out) == 0
    assert not [p for p in out.iterdir() if p.name.startswith(".staging-")]


def test_broken_card_yaml_is_one_line_naming_the_file(raw, tmp_path, capsys):
    out = tmp_path / "out"
    assert build(raw, out) == 0
    card = out / "README.md"
    card.write_text("---\nconfigs: [unclosed\n---\nbody\n")
    capsys.readouterr()
    before = tree(tmp_path)
    refused(["eval", "--dataset", str(out), "--model", "baseline:random", "--results", str(tmp_path / "r.duckdb")],
            capsys, str(card))
    assert tree(tmp_path, skip=tmp_path / "r.duckdb") == before
