"""`publish`: the rendered card loads back with `datasets`; the push path up to the Hub boundary; bad input."""

import shutil
from types import SimpleNamespace

import datasets
import pyarrow.parquet as pq
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils.sha import git_hash

from proactivebench.cli import main
from proactivebench.curation.card import card_split_counts
from proactivebench.curation.checks import PublishError
from proactivebench.curation.publish import plan_push, publish, push
from proactivebench.schema import FEATURES
from proactivebench.sources import SOURCES
from proactivebench.store import write_split

SECRET = "hf_do_not_print_me_0123456789"


@pytest.fixture
def folder(imported_dir, tmp_path):
    target = tmp_path / "bench"
    shutil.copytree(imported_dir, target)
    return target


class RecordingApi:
    """Stands in for `HfApi` at the boundary: records every call, sends nothing."""

    calls: list = []
    remote: list = []

    def __init__(self, token=None, **kwargs):
        RecordingApi.calls.append(("init", {"token": token}))

    def create_repo(self, repo_id, **kwargs):
        RecordingApi.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def list_repo_tree(self, repo_id, **kwargs):
        RecordingApi.calls.append(("list_repo_tree", {"repo_id": repo_id, **kwargs}))
        return list(RecordingApi.remote)

    def create_commit(self, **kwargs):
        RecordingApi.calls.append(("create_commit", kwargs))
        return SimpleNamespace(oid="0" * 40)


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub

    RecordingApi.calls, RecordingApi.remote = [], []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    return RecordingApi


def test_published_folder_loads_back_every_way(folder, capsys):
    assert main(["publish", "--dataset", str(folder)]) == 0
    assert "nothing uploaded" in capsys.readouterr().out
    everything = datasets.load_dataset(str(folder))
    assert {s: len(d) for s, d in everything.items()} == {"test": 10, "excluded": 1, "full": 11}
    assert everything["test"].features == FEATURES
    coco = datasets.load_dataset(str(folder), "coco")
    assert {s: len(d) for s, d in coco.items()} == {"test": 3, "excluded": 1, "full": 4}
    full = datasets.load_dataset(str(folder), split="full")
    assert len(full) == 11 and len(set(full["sample_id"])) == 11
    assert len(datasets.load_dataset(str(folder), "full", split="full")) == 11
    assert len(datasets.load_dataset(str(folder), "rod", split="full")) == 2  # a source the filter kept whole
    stream = datasets.load_dataset(str(folder), "quickdraw", split="test", streaming=True)
    row = next(iter(stream))
    assert row["sample_id"] == "quickdraw-000000" and row["frames"][0].size[0] > 0

    card = (folder / "README.md").read_text()
    for source in SOURCES.values():  # per-source license and citation
        assert source.license in card and source.citation in card
    assert "| `coco` | 3 | 1 | 4 |" in card and "{{" not in card
    assert card_split_counts(folder)["default"] == {"test": 10, "excluded": 1, "full": 11}


def test_plan_lists_the_exact_files_and_commits(folder):
    publish(folder, "org/proactivebench")
    plan = plan_push(folder, "org/proactivebench")
    shards = sorted(p.relative_to(folder).as_posix() for p in (folder / "data").rglob("*.parquet"))
    assert len(plan.commits) == 1  # the whole sample in one commit
    operations = plan.commits[0].operations()
    assert all(isinstance(op, CommitOperationAdd) for op in operations)
    assert [op.path_in_repo for op in operations] == shards + ["README.md", "import_report.json"]
    assert operations[0].upload_info.size == (folder / shards[0]).stat().st_size

    # Small commits: the card comes last, so the Hub never shows a card without its data.
    split = plan_push(folder, "org/proactivebench", max_files_per_commit=4)
    assert [len(c.add) for c in split.commits] == [4, 4, 2]
    assert [f.path_in_repo for f in split.commits[-1].add][-2:] == ["README.md", "import_report.json"]
    assert split.commits[0].message == "Upload ProactiveBench (part 1/3)"

    # Resuming: files already on the remote with the same content are skipped; stale shards are deleted.
    readme = (folder / "README.md").read_bytes()
    first = folder / shards[0]
    remote = [
        RepoFile(path="README.md", size=len(readme), oid=git_hash(readme)),
        RepoFile(path=shards[0], size=first.stat().st_size, oid="x",
                 lfs={"size": first.stat().st_size, "oid": __import__("hashlib").sha256(first.read_bytes()).hexdigest(),
                      "pointerSize": 130}),
        RepoFile(path=shards[1], size=1, oid="y", lfs={"size": 1, "oid": "0" * 64, "pointerSize": 130}),  # changed
        RepoFile(path="data/coco/test-00000-of-00009.parquet", size=1, oid="z"),  # from an older release
    ]
    resumed = plan_push(folder, "org/proactivebench", remote)
    assert sorted(resumed.unchanged) == sorted([shards[0], "README.md"])
    operations = resumed.commits[0].operations()
    assert [op.path_in_repo for op in operations if isinstance(op, CommitOperationAdd)] == shards[1:] + ["import_report.json"]
    assert [op.path_in_repo for op in operations if isinstance(op, CommitOperationDelete)] == [
        "data/coco/test-00000-of-00009.parquet"]
    with pytest.raises(PublishError, match="expected ORG/NAME"):
        plan_push(folder, "no-slash")


def test_push_sends_the_planned_commits_and_never_prints_the_token(folder, hub, capsys):
    code = main(["publish", "--dataset", str(folder), "--repo-id", "org/proactivebench", "--push"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert SECRET not in out + err and "pushed to https://huggingface.co/datasets/org/proactivebench" in out
    names = [name for name, _ in hub.calls]
    assert names == ["init", "create_repo", "list_repo_tree", "create_commit"]
    assert hub.calls[0][1]["token"] == SECRET  # the token only goes to HfApi
    assert hub.calls[1][1] == {"repo_id": "org/proactivebench", "repo_type": "dataset", "private": False, "exist_ok": True}
    commit = hub.calls[3][1]
    assert commit["repo_type"] == "dataset" and commit["commit_message"] == "Upload ProactiveBench"
    sent = [op.path_in_repo for op in commit["operations"]]
    assert sent == [f.path_in_repo for f in plan_push(folder, "org/proactivebench").commits[0].add]
    assert "README.md" in sent and sum(p.endswith(".parquet") for p in sent) == 8


def test_push_needs_a_token_and_a_repo(folder, hub, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(PublishError, match="no Hugging Face token"):
        push(folder, "org/proactivebench")
    assert main(["publish", "--dataset", str(folder), "--push"]) == 2
    assert "--push needs --repo-id" in capsys.readouterr().err
    assert hub.calls == []


def test_a_corrupt_shard_is_refused_and_nothing_is_uploaded(folder, hub, capsys):
    shard = folder / "data" / "coco" / "test-00000-of-00001.parquet"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    code = main(["publish", "--dataset", str(folder), "--repo-id", "org/pb", "--push"])
    err = capsys.readouterr().err.strip().splitlines()[-1]  # above it: the progress bar
    assert code == 2 and err.startswith(f"error: {shard}: not a readable parquet file (ArrowInvalid")
    assert hub.calls == []


def test_a_frame_that_does_not_decode_is_refused(folder, imported_rows, hub):
    row = dict(imported_rows["quickdraw-000000"])
    row["frames"] = [{"bytes": b"\x89PNG\r\n\x1a\n broken", "path": "bad.png"}] + list(row["frames"][1:])
    write_split(folder, "quickdraw", "test", [row])
    with pytest.raises(PublishError, match="quickdraw/test-00000-of-00001.parquet: sample 'quickdraw-000000' frame 0 does not decode"):
        publish(folder, "org/pb", push_to_hub=True)
    assert hub.calls == []


def test_a_card_whose_counts_disagree_is_refused(folder, imported_rows, hub, capsys):
    publish(folder)
    card = (folder / "README.md").read_text()
    (folder / "README.md").write_text(card.replace("num_examples: 3", "num_examples: 30", 1))
    code = main(["publish", "--dataset", str(folder), "--repo-id", "org/pb", "--push", "--keep-card"])
    err = capsys.readouterr().err
    assert code == 2 and "says 30 rows, the shards hold 3" in err and hub.calls == []

    # A card rendered before the data changed is stale too.
    publish(folder)
    write_split(folder, "rod", "test", [imported_rows["rod-000000"]], render_card=False)
    with pytest.raises(PublishError, match="config 'default' split 'full' says 11 rows, the shards hold 10"):
        publish(folder, "org/pb", push_to_hub=True, render=False)
    assert hub.calls == []


def test_row_group_and_schema_limits(folder, imported_rows, monkeypatch):
    import proactivebench.curation.checks as checks

    monkeypatch.setattr(checks, "MAX_ROW_GROUP_BYTES", 10)
    with pytest.raises(PublishError, match="row group 0 holds .* over the dataset viewer"):
        publish(folder)
    monkeypatch.setattr(checks, "MAX_ROW_GROUP_BYTES", 300_000_000)
    shard = folder / "data" / "mvpn" / "test-00000-of-00001.parquet"
    table = pq.read_table(shard).drop_columns(["first_turn_solve_rate"])
    pq.write_table(table, shard)
    with pytest.raises(PublishError, match="mvpn/test-00000-of-00001.parquet: schema differs .*first_turn_solve_rate"):
        publish(folder)
    (folder / "data" / "mvpn" / "notes.txt").write_text("stray")
    with pytest.raises(PublishError, match="stray file"):
        publish(folder)


def test_the_real_client_offline_stops_at_the_boundary(folder, monkeypatch, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    code = main(["publish", "--dataset", str(folder), "--repo-id", "org/pb", "--push"])
    out, err = capsys.readouterr()
    assert code == 2 and err.strip().splitlines()[-1] == "error: HF_HUB_OFFLINE is set: unset it to push"
    assert SECRET not in out + err


def test_checks_in_parallel_report_the_same_and_catch_repeated_ids(folder, imported_rows):
    from proactivebench.curation.checks import check_data

    serial, parallel = check_data(folder), check_data(folder, num_proc=2)
    assert (serial.rows, serial.frames, serial.shards) == (parallel.rows, parallel.frames, parallel.shards) == (
        11, serial.frames, 8)
    assert serial.frames == sum(len(r["frames"]) for r in imported_rows.values())
    write_split(folder, "coco", "excluded", [imported_rows["coco-000000"]], render_card=False)  # also in test
    with pytest.raises(PublishError, match="sample 'coco-000000' is also in"):
        check_data(folder, num_proc=2)
