"""`curate first-turn`: the first MCQA turn of every pool episode for one model, one parquet file per model.

The filter's input. A run of one turn per episode through the eval runner's scheduler (eval/scheduler.py:
pipelined against a server, batched in process) with the eval backends and the generic engine, so "correct
at the first turn" means exactly what it means in an eval run: the episode ended correct on turn 1 (the
category verdict is correct where the first state accepts answers). Resumable: every group commit is an
append-only part file in `<out>/.<slug>.parts/`; a rerun skips the sample ids already there and, at the end,
the parts (and any earlier result) are consolidated atomically into `<out>/<slug>.parquet`. As in `eval`
(eval/results.py), a first turn that ended in a backend error is a failure, not a prediction: a rerun predicts
it again, and the consolidated file keeps the new row (an error that happens again stays recorded, once).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from proactivebench.eval.ranks import Ranks
from proactivebench.eval.scheduler import CommitPolicy, drive
from proactivebench.integrity import verify_folder
from proactivebench.safe_files import atomic_file, check_no_overlap
from proactivebench.store import count_rows, iter_rows, layout, one_line

from .predictions import PREDICTION_SCHEMA, model_slug

log = logging.getLogger(__name__)

POOL_SPLITS = ("test", "excluded")
ERROR_VERDICT = "error"


@dataclass
class FirstTurnReport:
    model: str
    path: Path
    total: int = 0  # pool samples
    skipped: int = 0  # already predicted (resume)
    predicted: int = 0  # predicted by this call
    correct: int = 0  # over the whole file
    errors: int = 0  # backend failures by this call (recorded as wrong)
    retried: int = 0  # earlier backend failures predicted again by this call


@dataclass(frozen=True)
class RosterEntry:
    spec: str
    options: dict = field(default_factory=dict)  # backend options, e.g. {"base_url": ...}
    family: str = ""
    note: str = ""


# --- the roster ---------------------------------------------------------------------------------------------


def default_roster_path() -> Path:
    return Path(str(resources.files("proactivebench").joinpath("data/roster.json")))


def load_roster(path: Path | str | None = None) -> list[RosterEntry]:
    """The roster file: {"models": [{"spec": ..., "options": {...}, "family": ..., "note": ...}]}."""
    path = Path(path) if path else default_roster_path()
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: unreadable roster ({error})") from None
    models = raw.get("models") if isinstance(raw, dict) else None
    if not isinstance(models, list) or not models:
        raise ValueError(f"{path}: expected {{\"models\": [{{\"spec\": ...}}, ...]}}")
    entries = []
    for i, item in enumerate(models):
        if not isinstance(item, dict) or not isinstance(item.get("spec"), str):
            raise ValueError(f"{path}: models[{i}] has no \"spec\" string")
        entries.append(RosterEntry(item["spec"], dict(item.get("options") or {}), item.get("family", ""), item.get("note", "")))
    specs = [e.spec for e in entries]
    duplicated = sorted({s for s in specs if specs.count(s) > 1})
    if duplicated:
        raise ValueError(f"{path}: model(s) listed twice: {', '.join(duplicated)}")
    return entries


def resolve_options(options: dict) -> dict:
    """`api_key_env` names the variable holding a key (e.g. GEMINI_API_KEY): the key itself never sits in a file."""
    options = dict(options)
    env = options.pop("api_key_env", None)
    if env:
        if not os.environ.get(env):
            raise ValueError(f"environment variable {env} (the API key for this model) is not set")
        options["api_key"] = os.environ[env]
    return options


# --- predictions --------------------------------------------------------------------------------------------


def _done_ids(paths: list[Path]) -> tuple[set[str], set[str]]:
    """(predicted, failed): the sample ids with a prediction, and those whose only rows are backend errors
    (a rerun retries them)."""
    done: set[str] = set()
    failed: set[str] = set()
    for path in paths:
        table = _read_predictions(path, ["sample_id", "verdict"])
        for sample_id, verdict in zip(table.column("sample_id").to_pylist(), table.column("verdict").to_pylist()):
            (failed if verdict == ERROR_VERDICT else done).add(sample_id)
    return done, failed - done


def _write_atomic(table: pa.Table, path: Path) -> None:
    with atomic_file(path) as temporary:
        pq.write_table(table, temporary, compression="zstd")


def _pending(dataset: Path, done: set[str], limit: int | None, ranks: Ranks = Ranks()) -> Iterator[dict]:
    """The pool rows not predicted yet; under torchrun this rank's share, split by position in the pool (before
    the done ones are dropped, so every rank agrees on the split whatever the others have written)."""
    sent = position = 0
    for split in POOL_SPLITS:
        for row in iter_rows(dataset, split=split):
            position += 1
            if (position - 1) % ranks.world != ranks.rank or row["sample_id"] in done:
                continue
            if limit is not None and sent >= limit:
                return
            sent += 1
            yield row


class FirstTurnEpisode:
    """The generic engine's episode, over after its first turn (the budget is left alone: backends that read
    the graph, like the oracle, see the real episode). Correct = it ended correct on turn 1."""

    def __init__(self, row: dict, hint: bool = False):
        from proactivebench.engine import Episode

        self.episode = Episode(row, hint=hint)

    def __getattr__(self, name):
        return getattr(self.episode, name)

    @property
    def done(self) -> bool:
        return bool(self.episode.turns)


def first_turn_request(episode: FirstTurnEpisode, observation):
    """The stored frame, as eval sends it (`frame_source`): decoded only by a backend that shows pixels, sent as
    stored by a server backend; backends that read the graph never touch it."""
    from proactivebench.eval.backends import frame_source, single_turn

    return single_turn(observation.prompt, [frame_source(episode.episode.row["frames"], observation.frame)],
                       context=episode.episode, key=f"{episode.sample_id}/0")


def prediction_row(spec: str, episode) -> dict:
    from proactivebench.parsing import CORRECT

    (turn,) = episode.turns
    if turn.error:
        log.warning("%s on %s: %s", spec, episode.sample_id, turn.error)
    verdict = ERROR_VERDICT if turn.error else turn.category_verdict
    return {
        "model": spec, "sample_id": episode.sample_id, "source": episode.source, "output": turn.output,
        "verdict": verdict, "correct": bool(episode.episode.done and episode.correct and verdict == CORRECT),
    }


class _PartSink:
    """Each group commit is one append-only part file (atomic); a resume skips the sample ids in the parts."""

    def __init__(self, spec: str, parts: Path, report: FirstTurnReport, bar, failed: set[str] = frozenset()):
        self.spec, self.parts, self.report, self.bar, self.failed = spec, parts, report, bar, failed
        self.rows: list[dict] = []

    def record(self, episode, turn, generation) -> None:
        self.rows.append(prediction_row(self.spec, episode))

    def commit(self) -> None:
        if self.rows:
            table = pa.Table.from_pylist(self.rows, schema=PREDICTION_SCHEMA)
            _write_atomic(table, self.parts / f"part-{uuid.uuid4().hex}.parquet")
            self.report.predicted += len(self.rows)
            self.report.errors += sum(r["verdict"] == ERROR_VERDICT for r in self.rows)
            self.report.retried += sum(r["sample_id"] in self.failed for r in self.rows)
            self.bar.update(len(self.rows))
            self.rows = []


def first_turn(
    dataset: Path | str,
    spec: str,
    out: Path | str,
    *,
    batch_size: int | None = None,
    hint: bool = False,
    limit: int | None = None,
    backend_options: dict[str, Any] | None = None,
    backend=None,
    policy: CommitPolicy = CommitPolicy(),
) -> FirstTurnReport:
    """Predict the first turn of every test/excluded episode not yet predicted, then consolidate the file."""
    dataset, out = Path(dataset), Path(out)
    if not any(split in splits for splits in layout(dataset).values() for split in POOL_SPLITS):
        raise ValueError(f"{dataset}: no test/excluded shards under data/ (is this a hub-layout folder?)")
    verify_folder(dataset, POOL_SPLITS, frames=True)  # before any work: a damaged folder or an invalid row is one line
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch_size}")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be at least 1, got {limit}")
    check_no_overlap(out, "--out", {"--dataset": dataset})
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder: pass a folder for the prediction files")
    slug = model_slug(spec)
    final = out / f"{slug}.parquet"
    parts = out / f".{slug}.parts"
    parts.mkdir(parents=True, exist_ok=True)
    previous = ([final] if final.exists() else []) + sorted(parts.glob("part-*.parquet"))
    _check_model(previous, spec)
    done, failed = _done_ids(previous)
    total = sum(c.get(s, 0) for c in count_rows(dataset).values() for s in POOL_SPLITS)
    pool = _pool_ids(dataset)
    report = FirstTurnReport(model=spec, path=final, total=total, skipped=len(done & pool))
    todo = total - report.skipped if limit is None else min(limit, total - report.skipped)
    ranks = Ranks.from_env()
    if todo > 0:
        if backend is None:
            from proactivebench.eval.backends import load_backend

            options = dict(backend_options or {})
            device = ranks.device(options.get("device"))
            if device:
                options["device"] = device
            backend = load_backend(spec, **options)
        size = batch_size or getattr(backend, "default_batch_size", 8)
        episodes = (FirstTurnEpisode(row, hint) for row in _pending(dataset, done, limit, ranks))
        share = -(-todo // ranks.world)  # about this rank's share, for the bar
        with tqdm(total=share, desc=f"first turn {slug}", unit="ep", disable=not ranks.main) as bar:
            drive(episodes, backend, _PartSink(spec, parts, report, bar, failed), make_request=first_turn_request,
                  batch_size=size, concurrency=getattr(backend, "concurrency", size), policy=policy)
    if ranks.active:  # every rank's parts are written; rank 0 consolidates them
        ranks.barrier()
        ranks.close()
        if not ranks.main:
            return report
    table = _consolidate(final, parts)
    report.correct = sum(table.column("correct").to_pylist()) if table is not None else 0
    return report


def _pool_ids(dataset: Path) -> set[str]:
    ids: set[str] = set()
    for source, splits in layout(dataset).items():
        for split in POOL_SPLITS:
            for path in splits.get(split, []):
                ids.update(pq.read_table(path, columns=["sample_id"]).column("sample_id").to_pylist())
    return ids


def _read_predictions(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A prediction file this tool wrote (final or part); anything else is one line naming it, left as it is."""
    try:
        names = pq.read_schema(path).names
        missing = [c for c in PREDICTION_SCHEMA.names if c not in names]
        if missing:
            raise ValueError(f"no column {', '.join(missing)}")
        return pq.read_table(path, columns=columns)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a prediction file of `curate first-turn` ({one_line(error)}): move it away "
                         "or pass another --out") from None


def _check_model(paths: list[Path], spec: str) -> None:
    for path in paths:
        models = set(_read_predictions(path, ["model"]).column("model").to_pylist())
        if models - {spec}:
            raise ValueError(f"{path}: holds predictions of {', '.join(sorted(models - {spec}))}, not {spec!r}")


def _consolidate(final: Path, parts: Path) -> pa.Table | None:
    """Earlier result + parts -> one sorted file, replaced atomically; the parts go only after that."""
    paths = ([final] if final.exists() else []) + sorted(parts.glob("part-*.parquet"))
    if not paths:
        shutil.rmtree(parts, ignore_errors=True)
        return None
    table = pa.concat_tables([pq.read_table(p).select(PREDICTION_SCHEMA.names).cast(PREDICTION_SCHEMA) for p in paths])
    table = _one_row_per_sample(table)
    if len(paths) > 1 or not final.exists():
        _write_atomic(table, final)
    shutil.rmtree(parts, ignore_errors=True)
    return table


def _one_row_per_sample(table: pa.Table) -> pa.Table:
    """Sorted by sample id, one row each: a prediction wins over the backend errors it retried; a sample that
    only ever failed keeps one error row."""
    ids = table.column("sample_id").to_pylist()
    failed = [v == ERROR_VERDICT for v in table.column("verdict").to_pylist()]
    keep, last = [], None
    for i in sorted(range(len(ids)), key=lambda i: (ids[i], failed[i])):
        if ids[i] != last:
            keep.append(i)
            last = ids[i]
    return table.take(keep)


def roster_first_turn(
    dataset: Path | str, roster: Path | str | None, out: Path | str, **kwargs
) -> list[FirstTurnReport]:
    """Every roster model in turn (each resumable on its own); a model that fails to load stops the loop."""
    common = kwargs.pop("backend_options", None) or {}
    reports = []
    for entry in load_roster(roster):
        options = {**resolve_options(entry.options), **common}
        reports.append(first_turn(dataset, entry.spec, out, backend_options=options, **kwargs))
    return reports
