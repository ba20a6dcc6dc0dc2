"""The one way this tool writes files, so that nothing is half-written and nothing of the user's is lost.

- `atomic_file(path)`: write a temporary sibling, `os.replace` it over `path` only when the block succeeds.
- `scratch_dir(parent, label)`: a staging folder named `.staging-<label>-<host>-<pid>-<nonce>`. Creating one
  first removes the staging folders that dead processes of this host left in `parent` (a killed build): the
  name says whose they are, so a live run's folder and anything the tool did not name are never touched.
- `replace_dir(new, target)`: swap a fully written folder in with two renames (the old one goes only after).
- `OutputFolder`: the tool recognises its own output by a manifest, `.proactivebench.json`, listing every file
  it wrote there (relative paths). A command writes only into a folder that is new, empty or holds that
  manifest, and it replaces or deletes only files the manifest lists; a file it did not write is left alone, or
  the command refuses with one line naming it. `check_no_overlap` refuses an output folder that is, holds or
  sits inside one of the command's inputs.
- `safe_name(text)`: a file name derived from an id (sample id, run id): a sanitised prefix plus a hash, so an
  id holding `../` or an absolute path never leaves the folder it is written under.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

MANIFEST_NAME = ".proactivebench.json"
STAGING_PREFIX = ".staging-"
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_STAGING = re.compile(r"^\.staging-(?P<label>[A-Za-z0-9_.-]*)-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-(?P<nonce>[0-9a-f]{8})$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SAFE_ID_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128 characters"


class OutputError(ValueError):
    """An output folder the command will not write into as asked; the message names the folder or file."""


# --- names ------------------------------------------------------------------------------------------------------


def safe_name(text: str, keep: int = 40) -> str:
    """`<sanitised prefix>-<12 hex of sha1>`: readable, unique per id, never a path (no `/`, no leading dot)."""
    prefix = _UNSAFE.sub("_", str(text))[:keep].lstrip(".") or "id"
    return f"{prefix}-{hashlib.sha1(str(text).encode()).hexdigest()[:12]}"


def is_safe_id(text: Any) -> bool:
    return isinstance(text, str) and SAFE_ID.fullmatch(text) is not None


# --- atomic files -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_file(path: Path | str) -> Iterator[Path]:
    """Yields a temporary path beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_file(path) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path | str, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


# --- staging folders --------------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def is_staging(name: str) -> bool:
    return _STAGING.match(name) is not None


def clean_stale(parent: Path | str) -> list[Path]:
    """Remove the staging folders of dead processes of this host in `parent`; returns what was removed."""
    parent = Path(parent)
    removed = []
    if not parent.is_dir():
        return removed
    for path in parent.iterdir():
        match = _STAGING.match(path.name)
        if not match or match["host"] != _HOST or int(match["pid"]) == os.getpid() or _alive(int(match["pid"])):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def scratch_dir(parent: Path | str, label: str = "") -> Path:
    """A new staging folder in `parent` (created), after cleaning what dead runs left there."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(parent)
    path = parent / f"{STAGING_PREFIX}{_UNSAFE.sub('_', label)[:40]}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


@contextlib.contextmanager
def staged_dir(parent: Path | str, label: str = "") -> Iterator[Path]:
    """A scratch folder that is removed when the block ends, whatever happened (move results out before)."""
    path = scratch_dir(parent, label)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def replace_dir(new: Path, target: Path) -> None:
    """`new` becomes `target` with two renames; the previous `target` is removed only after."""
    old = None
    if target.exists():
        old = scratch_dir(target.parent, f"old-{target.name}")
        old.rmdir()
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- the output manifest ----------------------------------------------------------------------------------------


def _resolved(path: Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser().resolve()))


def check_no_overlap(
    out: Path | str, out_flag: str, inputs: Mapping[str, Path | str | None], inside_ok: bool = False
) -> None:
    """Refuse an output folder that is an input or holds one, and (unless `inside_ok`) one that sits inside one.
    A build reads its raw folder's files by name, so a new output folder inside it harms nothing (`inside_ok`)."""
    target = _resolved(Path(out))
    for flag, path in inputs.items():
        if path is None or str(path).startswith("hf:"):
            continue
        source = _resolved(Path(path))
        if target == source:
            raise OutputError(f"{out_flag} {out} is the {flag} folder: pass a separate, new folder as {out_flag}")
        if target.is_relative_to(source) and not inside_ok:
            raise OutputError(f"{out_flag} {out} is inside the {flag} folder {path}: pass a folder outside it")
        if source.is_relative_to(target):
            raise OutputError(f"{out_flag} {out} holds the {flag} folder {path}: pass a separate, new folder")


class OutputFolder:
    """A folder this tool writes into: new, empty, or one it wrote before (it holds the manifest)."""

    def __init__(self, root: Path | str, flag: str = "--out"):
        self.root = Path(root)
        self.flag = flag
        self.created_dir = self.created_manifest = False

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST_NAME

    @classmethod
    def check(
        cls, root: Path | str, flag: str = "--out", inputs: Mapping[str, Path | str | None] | None = None,
        inside_ok: bool = False,
    ) -> "OutputFolder":
        """Refuse (one line saying why and what to pass) a folder this tool may not write into; creates nothing."""
        folder = cls(root, flag)
        check_no_overlap(folder.root, flag, inputs or {}, inside_ok)
        if folder.root.exists() and not folder.root.is_dir():
            raise OutputError(f"{flag} {folder.root} is a file, not a folder: pass a new or empty folder")
        if folder.root.is_dir() and not folder.manifest.is_file():
            foreign = sorted(p.name for p in folder.root.iterdir() if not is_staging(p.name))
            if foreign:
                shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
                raise OutputError(
                    f"{flag} {folder.root} holds files proactivebench did not write ({shown}; no {MANIFEST_NAME}): "
                    f"pass a new or empty folder as {flag}"
                )
        folder.owned()  # an unreadable manifest is refused here too
        return folder

    @classmethod
    def claim(
        cls, root: Path | str, flag: str = "--out", inputs: Mapping[str, Path | str | None] | None = None,
        inside_ok: bool = False,
    ) -> "OutputFolder":
        """`check`, then create the folder and its manifest."""
        folder = cls.check(root, flag, inputs, inside_ok)
        folder.created_dir = not folder.root.exists()
        folder.root.mkdir(parents=True, exist_ok=True)
        if not folder.manifest.is_file():
            folder._save(set())
            folder.created_manifest = True
        return folder

    def undo_claim(self) -> None:
        """After a failed command: a folder this claim created and nothing was written to goes again."""
        if self.created_manifest and not self.owned():
            self.manifest.unlink(missing_ok=True)
            if self.created_dir and not any(self.root.iterdir()):
                self.root.rmdir()

    def owned(self) -> set[str]:
        if not self.manifest.is_file():
            return set()
        try:
            value = json.loads(self.manifest.read_text())
            files = value["files"]
            if not isinstance(files, list):
                raise TypeError
        except (OSError, ValueError, TypeError, KeyError):
            raise OutputError(
                f"{self.manifest}: unreadable manifest of proactivebench's files: pass a new or empty folder as {self.flag}"
            ) from None
        return {str(f) for f in files}

    def relative(self, path: Path | str) -> str:
        return Path(path).relative_to(self.root).as_posix()

    def check_replaceable(self, paths: Iterable[Path | str], fix: str | None = None) -> None:
        """Refuse if any existing path among `paths` (absolute, under root) is a file this tool did not write."""
        owned = self.owned()
        for path in paths:
            path = Path(path)
            if (path.exists() or path.is_symlink()) and self.relative(path) not in owned:
                raise OutputError(
                    f"{path}: not written by proactivebench (not in {self.manifest.name}): "
                    + (fix or f"move it away or pass another {self.flag}")
                )

    def foreign_files(self) -> list[Path]:
        """Files under the folder that the manifest does not list (staging folders and the manifest aside)."""
        owned = self.owned()
        found = []
        for path in tree_files(self.root):
            relative = self.relative(path)
            if relative == MANIFEST_NAME or is_staging(relative.split("/")[0]) or relative in owned:
                continue
            found.append(path)
        return sorted(found)

    def record(self, added: Iterable[Path | str] = (), removed: Iterable[Path | str] = ()) -> None:
        """Add/remove files in the manifest (under the folder's lock: concurrent commands each keep theirs)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked():
            owned = self.owned()
            owned -= {self.relative(p) for p in removed}
            owned |= {self.relative(p) for p in added}
            self._save(owned)

    @contextlib.contextmanager
    def member(self, name: str, fix: str | None = None) -> Iterator[Path]:
        """A temporary path for `root/name`: it replaces that file (never a file of the user's) only if the block
        succeeds, and the manifest then lists it."""
        path = self.root / name
        self.check_replaceable([path], fix)
        with atomic_file(path) as temporary:
            yield temporary
        self.record(added=[path])

    def remove(self, name: str) -> None:
        """Delete `root/name` if this tool wrote it (a stale output of an earlier run); anything else stays."""
        path = self.root / name
        if self.relative(path) in self.owned():
            path.unlink(missing_ok=True)
            self.record(removed=[path])

    def write_text(self, name: str, text: str, fix: str | None = None) -> Path:
        """Write `root/name` atomically, refusing to replace a file of the user's; records it."""
        with self.member(name, fix) as temporary:
            temporary.write_bytes(text.encode("utf-8"))
        return self.root / name

    def write_json(self, name: str, value: Any) -> Path:
        return self.write_text(name, json.dumps(value, indent=2, sort_keys=True) + "\n")

    def _save(self, owned: set[str]) -> None:
        atomic_write_json(
            self.manifest,
            {"about": "files proactivebench wrote in this folder; it replaces or deletes only these", "files": sorted(owned)},
        )

    @contextlib.contextmanager
    def _locked(self) -> Iterator["OutputFolder"]:
        """An exclusive lock on the folder (flock on its directory), for read-modify-write of the manifest."""
        handle = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield self
        finally:
            os.close(handle)


def tree_files(root: Path) -> list[Path]:
    """Every file (and symlink) under `root`, not following symlinks."""
    found = []
    for folder, dirs, files in os.walk(root):
        found += [Path(folder) / name for name in files]
        found += [Path(folder) / name for name in dirs if (Path(folder) / name).is_symlink()]
    return found
