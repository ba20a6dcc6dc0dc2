"""`publish`: render the card, check the folder, and (only with `--push`) upload it with `huggingface_hub`.

The upload is planned first (`plan_push`): the exact files and `CommitOperationAdd`/`Delete` operations, grouped
into as few commits as the Hub takes (one for any realistic size of this benchmark; at most
`MAX_FILES_PER_COMMIT` files each, the card last so it only appears with its data). A rerun after an
interruption lists the remote repo again and skips every file whose content is already there, so it resumes;
inside a commit, `create_commit` deduplicates what was already uploaded. The token comes from HF_TOKEN or the
login cache and is handed to `HfApi`, never printed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from proactivebench.integrity import DatasetError, verify_folder
from proactivebench.store import layout

from .card import write_rendered_card
from .checks import CheckReport, PublishError, check_card, check_data, check_names

REPO_TYPE = "dataset"
# The Hub's preupload endpoint takes 256 files per call and huggingface_hub commits large folders in batches of
# that order (`_commit_api.UPLOAD_BATCH_MAX_NUM_FILES`, `_upload_pipeline`): one commit stays within both.
MAX_FILES_PER_COMMIT = 256
TOP_LEVEL_FILES = ("README.md", "filter_report.json", "import_report.json")


@dataclass(frozen=True)
class PlannedFile:
    path_in_repo: str
    local: Path
    size: int


@dataclass
class PlannedCommit:
    message: str
    add: list[PlannedFile] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    def operations(self) -> list:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        return [CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(f.local)) for f in self.add] + [
            CommitOperationDelete(path_in_repo=p) for p in self.delete
        ]


@dataclass
class PushPlan:
    repo_id: str
    files: list[PlannedFile]  # everything the folder publishes
    unchanged: list[str]  # already on the remote with the same content: skipped (resume)
    commits: list[PlannedCommit]

    @property
    def upload_bytes(self) -> int:
        return sum(f.size for c in self.commits for f in c.add)

    def describe(self) -> str:
        lines = [
            f"repo {self.repo_id} (dataset): {len(self.files)} files, {len(self.unchanged)} already there, "
            f"{sum(len(c.add) for c in self.commits)} to upload ({self.upload_bytes / 1024**2:,.1f} MB) "
            f"in {len(self.commits)} commit(s)"
        ]
        for commit in self.commits:
            lines.append(f"  commit {commit.message!r}: {len(commit.add)} add, {len(commit.delete)} delete")
            lines.extend(f"    + {f.path_in_repo} ({f.size:,} B)" for f in commit.add)
            lines.extend(f"    - {p}" for p in commit.delete)
        return "\n".join(lines)


def publish_files(root: Path | str) -> list[PlannedFile]:
    """What a folder publishes: the card, the run reports beside it and the shards; hidden/scratch files never."""
    root = Path(root)
    paths = [root / name for name in TOP_LEVEL_FILES if (root / name).is_file()]
    paths += sorted(p for splits in layout(root).values() for ps in splits.values() for p in ps)
    return [PlannedFile(p.relative_to(root).as_posix(), p, p.stat().st_size) for p in paths]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _same_content(local: PlannedFile, remote: Any) -> bool:
    """Remote entries are `huggingface_hub.hf_api.RepoFile`s: LFS files carry a sha256, others a git blob id."""
    from huggingface_hub.utils.sha import git_hash

    if getattr(remote, "size", None) != local.size:
        return False
    lfs = getattr(remote, "lfs", None)
    if lfs is not None:
        return lfs.sha256 == _sha256(local.local)
    return getattr(remote, "blob_id", None) == git_hash(local.local.read_bytes())


def plan_push(
    root: Path | str, repo_id: str, remote: Iterable[Any] = (), max_files_per_commit: int = MAX_FILES_PER_COMMIT
) -> PushPlan:
    """The commits that bring `repo_id` to the folder's content. `remote`: the repo's current files."""
    if not repo_id or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise PublishError(f"--repo-id {repo_id!r}: expected ORG/NAME")
    files = publish_files(root)
    remote_files = {f.path: f for f in remote if getattr(f, "blob_id", None) is not None}
    unchanged = [f.path_in_repo for f in files if f.path_in_repo in remote_files and _same_content(f, remote_files[f.path_in_repo])]
    todo = [f for f in files if f.path_in_repo not in set(unchanged)]
    wanted = {f.path_in_repo for f in files}
    # Stale shards of an earlier release would still match `data/*/test-*.parquet`: they go with the last commit.
    stale = sorted(p for p in remote_files if p.startswith("data/") and p not in wanted)
    data = [f for f in todo if f.path_in_repo.startswith("data/")]
    card = [f for f in todo if not f.path_in_repo.startswith("data/")]
    chunks = [data[i : i + max_files_per_commit] for i in range(0, len(data), max_files_per_commit)]
    if card or stale or not chunks:
        if chunks and len(chunks[-1]) + len(card) <= max_files_per_commit:
            chunks[-1] = chunks[-1] + card
        else:
            chunks.append(card)
    commits = [PlannedCommit(message="", add=chunk) for chunk in chunks if chunk or stale]
    if commits:
        commits[-1].delete = stale
    for i, commit in enumerate(commits, start=1):
        part = f" (part {i}/{len(commits)})" if len(commits) > 1 else ""
        commit.message = f"Upload ProactiveBench{part}"
    return PushPlan(repo_id=repo_id, files=files, unchanged=unchanged, commits=commits)


def _token(token: str | None) -> str:
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise PublishError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    return token


def push(root: Path | str, repo_id: str, *, private: bool = False, token: str | None = None, api=None) -> PushPlan:
    """Create the repo if needed, then send the planned commits. `api` is an `HfApi` (injectable for tests)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
    from huggingface_hub.hf_api import RepoFile

    plan_push(root, repo_id)  # validates the repo id before any call
    api = api or HfApi(token=_token(token))
    try:
        api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
        remote = [f for f in api.list_repo_tree(repo_id, repo_type=REPO_TYPE, recursive=True) if isinstance(f, RepoFile)]
        plan = plan_push(root, repo_id, remote)
        for commit in plan.commits:
            api.create_commit(
                repo_id=repo_id, repo_type=REPO_TYPE, operations=commit.operations(), commit_message=commit.message
            )
    except OfflineModeIsEnabled:
        raise PublishError("HF_HUB_OFFLINE is set: unset it to push") from None
    except HfHubHTTPError as error:
        # The message carries the URL and the server's reason, never the token (sent in a header).
        raise PublishError(f"the Hub refused the upload to {repo_id}: {str(error).splitlines()[0]}") from None
    return plan


@dataclass
class PublishResult:
    card: Path
    checks: CheckReport
    plan: PushPlan | None
    pushed: bool


def publish(
    root: Path | str,
    repo_id: str | None = None,
    *,
    push_to_hub: bool = False,
    render: bool = True,
    template: Path | str | None = None,
    private: bool = False,
    num_proc: int = 1,
    api=None,
) -> PublishResult:
    """Render the card (unless `render=False`), check everything, then push if asked. Nothing leaves otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise PublishError(f"{root}: not a folder")
    if push_to_hub and not repo_id:
        raise PublishError("--push needs --repo-id ORG/NAME")
    if num_proc < 1:
        raise PublishError(f"--num-proc must be at least 1, got {num_proc}")
    check_names(root)
    try:  # the folder whole and every row valid; the counts only of a card kept as it is (a render rewrites them)
        verify_folder(root, counts=not render)
    except DatasetError as error:
        raise PublishError(str(error)) from None
    report = check_data(root, num_proc=num_proc)  # the card is rendered from the shards' metadata
    card = write_rendered_card(root, template, repo_id) if render else root / "README.md"
    check_card(root, report)
    if not push_to_hub:
        return PublishResult(card, report, plan_push(root, repo_id) if repo_id else None, pushed=False)
    plan = push(root, repo_id, private=private, api=api)
    return PublishResult(card, report, plan, pushed=True)
