"""The evaluation runner: selects the episodes, drives them through the scheduler, writes the results file.

The scheduler (eval/scheduler.py) pipelines a server backend (`--concurrency` requests in flight, each episode
advancing as soon as its answer arrives) and batches an in-process one (`--batch-size` live episodes per
`generate`); each turn's output goes back to its episode (the engine parses and judges) and the turns, with
the episodes they finished, are group-committed to the results file. A killed run
resumes: the run id is derived from what defines the outputs, complete episodes are skipped, cut-off ones run
again (see results.ResultsWriter). `--shard I/N` takes every N-th episode, so machines can split a run.

Modes are a registry (mode name → how to make an episode and the chat request for its current turn); a new
mode (history, few-shot) adds an entry and, at most, its own message builder next to `messages_for_turn`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Mapping, Sequence

from tqdm.auto import tqdm

from .ablation import get_ablation
from .backends import Backend, Request, frame_source, load_backend, single_turn
from proactivebench.engine import STOP_ERROR, Episode, EpisodeResult, Turn
from proactivebench.store import load_episodes
from .fewshot import ContextOptions, prepare_context
from .ranks import Ranks
from proactivebench.safe_files import SAFE_ID_RULE, is_safe_id

from .results import ResultsWriter, RunInfo, completed_ids, connect, run_id_for
from .scheduler import CommitPolicy, drive, longest_first, pipelined

log = logging.getLogger(__name__)

STOP_GENERATED = "generated"  # an OEG episode: one open-ended answer, judged later
OEG_DEFAULT_LIMIT = 100  # the paper's OEG evaluates 100 random samples per scenario (docs/protocol.md §7.2)
# Backend options that change nothing in the outputs: left out of the run id, so a resume may change them.
OPERATIONAL_OPTIONS = ("concurrency", "timeout", "max_retries", "base_url", "api_key")


# --- requests: the one place where an observation becomes a chat ------------------------------------------------


def messages_for_turn(episode, observation) -> list[dict]:
    """The chat for one turn: a single user message, the image then the prompt (the reference's order)."""
    return single_turn(observation.prompt, [None]).messages


def request_for(episode, observation) -> Request:
    """The backend request for the episode's current turn: the stored frame, decoded only if the backend asks
    (a server backend sends a stored PNG / JPEG as it is)."""
    return Request(
        messages=messages_for_turn(episode, observation),
        images=[frame_source(episode.row["frames"], observation.frame)],
        context=episode,
        key=f"{episode.sample_id}/{len(episode.turns)}",
    )


# --- OEG: one open-ended turn (docs/protocol.md §6.1) ----------------------------------------------------------------


@dataclass
class OEGObservation:
    prompt: str
    state: int
    frame: int
    turn: int
    _frames: Any = field(repr=False, default=None)

    @property
    def image(self):
        from proactivebench.engine import decode_image

        return decode_image(self._frames[self.frame])


@dataclass
class OEGTurn:
    """An open-ended turn: nothing is graded here (the judge does it afterwards), so the verdicts are null.

    Its fields are `Turn`'s, in the same order, so both write the same `turns` row (docs/architecture.md §5).
    """

    turn: int
    state: int
    frame: int
    prompt: str
    output: str
    option_verdict: None = None
    category_verdict: None = None
    chosen_kind: str = "none"
    chosen_text: str = ""
    error: str = ""


@dataclass
class OEGResult:
    """A finished open-ended episode: one turn, correctness unknown until judged (`correct` is null)."""

    sample_id: str
    source: str
    stop_reason: str
    turns: list[OEGTurn]
    correct: None = None
    num_turns: int = 1
    proactive_suggestions: int = 0


class OEGEpisode:
    """The first state's frame and question, no options; the generic hint with `hint`. Judged afterwards."""

    def __init__(self, row: Mapping[str, Any], hint: bool = False):
        self.row, self.use_hint = row, hint
        self.sample_id, self.source = row["sample_id"], row["source"]
        self.turns: list[OEGTurn] = []
        self.done = False
        self.stop_reason = ""
        self._episode = Episode(row)  # for its oeg_prompt and first state

    def observe(self) -> OEGObservation:
        state = int(self.row["first_state"])
        return OEGObservation(
            prompt=self._episode.oeg_prompt(generic_hint=self.use_hint),
            state=state,
            frame=int(self.row["states"][state]["frame"]),
            turn=0,
            _frames=self.row["frames"],
        )

    def _record(self, output: str, error: str) -> OEGTurn:
        observation = self.observe()
        turn = OEGTurn(
            turn=0, state=observation.state, frame=observation.frame, prompt=observation.prompt, output=output,
            error=error,
        )
        self.turns.append(turn)
        self.done, self.stop_reason = True, STOP_ERROR if error else STOP_GENERATED
        return turn

    def step(self, output: str) -> OEGTurn:
        return self._record(output, "")

    def step_error(self, message: str) -> OEGTurn:
        return self._record("", message)

    @property
    def result(self) -> OEGResult:
        return OEGResult(self.sample_id, self.source, self.stop_reason, list(self.turns))


@dataclass(frozen=True)
class Mode:
    make_episode: Callable[[Mapping[str, Any], "EvalConfig"], Any]
    make_request: Callable[[Any, Any], Request] = request_for
    default_limit: int | None = None
    shuffle: bool = False  # the reference's OEG shuffles each source with random.seed(seed) before taking the limit


MODES: dict[str, Mode] = {
    "mcqa": Mode(lambda row, cfg: Episode(row, hint=cfg.hint, mode="mcqa", parser=cfg.parser)),
    "reference": Mode(lambda row, cfg: Episode(row, hint=cfg.hint, mode="reference", parser=cfg.parser)),
    "oeg": Mode(lambda row, cfg: OEGEpisode(row, hint=cfg.hint), default_limit=OEG_DEFAULT_LIMIT, shuffle=True),
}


# --- configuration ----------------------------------------------------------------------------------------------


@dataclass
class EvalConfig:
    dataset: str  # a hub-layout folder or a Hub repo id
    model: str  # a backend SPEC
    mode: str = "mcqa"
    hint: bool = False  # mcqa/reference: the scenario hint; oeg: the generic hint
    parser: str = "paper"
    ablation: str | None = None
    batch_size: int | None = None  # None: the backend's default
    sources: tuple[str, ...] | None = None
    split: str = "test"
    limit: int | None = None  # per source; None: all (oeg: 100)
    shard: tuple[int, int] = (0, 1)
    seed: int = 0
    revision: str | None = None
    run_id: str | None = None
    backend_options: dict[str, Any] = field(default_factory=dict)
    commit: CommitPolicy = field(default_factory=CommitPolicy)  # group commits: how much a SIGKILL may cost
    # history / few-shot (eval/history.py, eval/fewshot.py; mcqa only)
    history: bool = False
    history_size: int = 224  # short edge of every image in a history chat; 0 keeps the frames
    shots: int = 0
    cot: bool = False
    reduce_shots: bool = False
    shot_size: int | None = None  # None: the scenario's ICL size

    def validate(self) -> "EvalConfig":
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {', '.join(MODES)}")
        from .backends.base import check_option_ranges, check_spec

        check_spec(self.model)  # before any dataset loading
        check_option_ranges(SimpleNamespace(**self.backend_options))
        if self.ablation and self.mode == "oeg":
            raise ValueError("--ablation applies to the multiple-choice modes, not oeg")
        get_ablation(self.ablation)
        ContextOptions.of(self).validate(self.mode)
        index, count = self.shard
        if not (count >= 1 and 0 <= index < count):
            raise ValueError(f"shard {index}/{count}: expected 0 <= I < N")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError("batch size must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be at least 1")
        if self.run_id is not None and not is_safe_id(self.run_id):  # it names files and folders (ranks, merge)
            raise ValueError(f"--run-id {self.run_id!r}: use {SAFE_ID_RULE}")
        return self


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    return index, count


@dataclass
class RunSummary:
    run_id: str
    results: str
    episodes: int  # complete episodes of the run in the file (earlier invocations included)
    new_episodes: int  # run by this invocation
    acc: float | None
    psr: float | None
    errors: int
    per_source: dict[str, tuple[int, float | None, float | None]]

    def line(self) -> str:
        if self.acc is None:
            return f"run {self.run_id}: {self.episodes} episodes ({self.errors} errors)"
        return f"run {self.run_id}: {self.episodes} episodes, acc {self.acc:.1f}% - ps rate {self.psr:.1f} ({self.errors} errors)"


# --- the dataset --------------------------------------------------------------------------------------------------


def dataset_revision(dataset: str, revision: str | None) -> str | None:
    """A local folder: a fingerprint of its parquet files (names and sizes); a Hub repo: the revision asked for."""
    root = Path(dataset)
    if not root.is_dir():
        return revision or "main"
    digest = hashlib.sha256()
    for path in sorted(root.glob("data/*/*.parquet")):
        digest.update(f"{path.relative_to(root)}:{path.stat().st_size}\n".encode())
    return "local-" + digest.hexdigest()[:12]


def select(table, config: EvalConfig, mode: Mode) -> list[int]:
    """Row indices to evaluate: per source (in SOURCE order), optionally shuffled, limited, then sharded."""
    from proactivebench.sources import SOURCE_NAMES

    by_source: dict[str, list[int]] = {}
    for index, source in enumerate(table["source"]):
        by_source.setdefault(source, []).append(index)
    wanted = list(config.sources) if config.sources else [s for s in SOURCE_NAMES if s in by_source]
    missing = [s for s in wanted if s not in by_source]
    if config.sources and missing:
        raise ValueError(f"dataset {config.dataset!r} has no {config.split!r} rows for source(s) {', '.join(missing)}")
    limit = config.limit if config.limit is not None else mode.default_limit
    chosen: list[int] = []
    for source in wanted:
        indices = list(by_source.get(source, []))
        if mode.shuffle:
            random.Random(config.seed).shuffle(indices)
        chosen.extend(indices[:limit] if limit else indices)
    index, count = config.shard
    return chosen[index::count]


# --- running ------------------------------------------------------------------------------------------------------


def run_identity(config: EvalConfig, backend: Backend, revision: str | None) -> dict[str, Any]:
    """What defines the outputs: the same identity resumes the same run. Which episodes (sources, limit, shard)
    and how fast (batch size) are not part of it, so a run can be extended, split or resumed differently."""
    backend_config = {k: v for k, v in backend.config().items() if k not in OPERATIONAL_OPTIONS}
    if backend_config.get("device"):  # cuda:3 on rank 3 is the same run as cuda on one GPU
        backend_config["device"] = str(backend_config["device"]).split(":")[0]
    return {
        "model": config.model, "backend": backend_config, "mode": config.mode, "hint": config.hint,
        "parser": config.parser, "ablation": config.ablation, "dataset": _dataset_name(config.dataset),
        "revision": revision, "split": config.split, "seed": config.seed,
        **ContextOptions.of(config).identity(),  # empty for plain runs: their ids do not change
    }


def _dataset_name(dataset: str) -> str:
    return str(Path(dataset).resolve()) if Path(dataset).is_dir() else dataset


def _turn_row(run_id: str, episode, turn: Turn | OEGTurn, latency: float) -> dict:
    return {"run_id": run_id, "sample_id": episode.sample_id, "source": episode.source, **asdict(turn), "latency_s": latency}


def _episode_row(run_id: str, result: EpisodeResult | OEGResult) -> dict:
    return {
        "run_id": run_id, "sample_id": result.sample_id, "source": result.source, "correct": result.correct,
        "num_turns": result.num_turns, "proactive_suggestions": result.proactive_suggestions,
        "stop_reason": result.stop_reason,
    }


class _Running:
    """Running acc / psr over the run's complete episodes, for the progress bar and the summary."""

    def __init__(self, rows: Sequence[tuple[str, bool | None, int]]):
        self.rows = list(rows)

    def add(self, result: EpisodeResult | OEGResult) -> None:
        self.rows.append((result.source, result.correct, result.proactive_suggestions))

    @staticmethod
    def _score(rows) -> tuple[int, float | None, float | None]:
        scored = [r for r in rows if r[1] is not None]
        if not scored:
            return len(rows), None, None
        return len(rows), 100 * sum(bool(r[1]) for r in scored) / len(scored), sum(r[2] for r in scored) / len(scored)

    def overall(self):
        return self._score(self.rows)

    def per_source(self):
        sources = sorted({r[0] for r in self.rows})
        return {s: self._score([r for r in self.rows if r[0] == s]) for s in sources}


def run_eval(
    config: EvalConfig,
    results: str | Path = "results.duckdb",
    backend: Backend | None = None,
    progress: bool = True,
) -> RunSummary:
    """Evaluate `config.model` on the dataset and write the run into `results` (resuming it if present).

    Under torchrun / accelerate launch each rank runs its share into its own file and rank 0 merges them into
    `results` at the end (eval/ranks.py); the summary of a rank > 0 covers its own share."""
    config.validate()
    ranks = Ranks.from_env()
    mode = MODES[config.mode]
    ablate = get_ablation(config.ablation)
    own_backend = backend is None
    # Checked whole and row by row, frames undecoded (`store.load_episodes`).
    table = load_episodes(_dataset_name(config.dataset), config.split, config.sources, config.revision)
    indices = ranks.take(select(table, config, mode))  # split before resume filtering: every rank agrees
    mode, context = prepare_context(mode, table, config, config.sources)
    if backend is None:
        options = dict(config.backend_options)
        device = ranks.device(options.get("device"))
        if device:
            options["device"] = device
        backend = load_backend(config.model, seed=config.seed, **options)
    revision = dataset_revision(config.dataset, config.revision)
    identity = run_identity(config, backend, revision)
    run_id = config.run_id or run_id_for(identity)
    batch_size = config.batch_size or backend.default_batch_size
    run_config = {
        **identity, "backend_options": backend.config(), "batch_size": batch_size,
        "sources": list(config.sources) if config.sources else None, "limit": config.limit,
        "shard": f"{config.shard[0]}/{config.shard[1]}", "generic_hint": config.mode == "oeg" and config.hint,
        **context, "run_id_override": bool(config.run_id),
    }
    if ranks.active:
        run_config["ranks"] = ranks.world
    info = RunInfo(
        run_id=run_id, model=backend.model_name, backend=backend.kind, mode=config.mode, hint=config.hint,
        ablation=config.ablation, dataset=_dataset_name(config.dataset), dataset_revision=revision, config=run_config,
    )
    results = Path(results)
    writer = ResultsWriter(rank_file(results, ranks) if ranks.active else results, info)
    try:
        # A rank also skips what an earlier, merged invocation of the run finished.
        done = writer.start() | (completed_ids(results, run_id) if ranks.active else set())
        sample_ids = table["sample_id"]
        todo = [i for i in indices if sample_ids[i] not in done] if done else indices
        if done:
            log.info("resuming run %s: %d episodes done, %d to go", run_id, len(indices) - len(todo), len(todo))
        running = _Running(writer.completed())
        new, errors = _loop(table, todo, config, mode, ablate, backend, writer, running, batch_size,
                            progress and ranks.main)
        writer.finish()
        if not ranks.active:
            return _summary(writer.connection, run_id, results, new)
        count, acc, psr = running.overall()
        rank_summary = RunSummary(run_id, str(writer.path), count, new, acc, psr, errors, running.per_source())
    finally:
        writer.close()
        if own_backend:
            backend.close()
    ranks.barrier()  # every rank's file is complete and closed
    try:
        if not ranks.main:
            return rank_summary
        gather_ranks(results, run_id, info)
        connection = connect(results)
        try:
            return _summary(connection, run_id, results, new)
        finally:
            connection.close()
    finally:
        ranks.close()


def _summary(connection, run_id: str, results: Path, new: int) -> RunSummary:
    # The paper's tables as views in the file itself, so `duckdb results.duckdb "FROM table1"` just works.
    from .analytics import create_views

    create_views(connection)
    running = _Running(connection.execute(
        "SELECT source, correct, proactive_suggestions FROM episodes WHERE run_id = ?", [run_id]
    ).fetchall())
    count, acc, psr = running.overall()
    total_errors = connection.execute(
        "SELECT count(*) FROM episodes WHERE run_id = ? AND stop_reason = ?", [run_id, STOP_ERROR]
    ).fetchone()[0]
    return RunSummary(run_id, str(results), count, new, acc, psr, total_errors, running.per_source())


def rank_file(results: Path, ranks: Ranks) -> Path:
    return results.with_name(f".{results.name}.ranks") / f"rank-{ranks.rank}-of-{ranks.world}.duckdb"


def gather_ranks(results: Path, run_id: str, info: RunInfo) -> None:
    """Rank 0, after the barrier: every rank file (this launch's and any left by an earlier one) into `results`,
    then the rank files go. Merging is idempotent, so a crash here is repaired by running the command again."""
    from .merge import merge_files

    folder = results.with_name(f".{results.name}.ranks")
    files = sorted(folder.glob("rank-*.duckdb"))
    if files:
        merge_files(files, results, update=results.exists())
    connection = connect(results)
    try:
        connection.execute(
            "UPDATE runs SET config_json = ?, finished_at = current_timestamp WHERE run_id = ?",
            [json.dumps(info.config, sort_keys=True, default=str), run_id],
        )
    finally:
        connection.close()
    shutil.rmtree(folder, ignore_errors=True)


def _episodes(table, todo: list[int], config: EvalConfig, mode: Mode, ablate) -> Iterator[Any]:
    for index in todo:
        row = table[index]
        if ablate is not None:
            row = ablate(row, config.seed)
        yield mode.make_episode(row, config)


class _ResultsSink:
    """Buffers the turns and finished episodes of the run; `commit` writes them in one transaction."""

    def __init__(self, writer: ResultsWriter):
        self.writer, self.run_id = writer, writer.run.run_id
        self.turns: list[dict] = []
        self.episodes: list[dict] = []

    def record(self, episode, turn: Turn | OEGTurn, generation) -> None:
        self.turns.append(_turn_row(self.run_id, episode, turn, generation.latency_s))
        if episode.done:
            self.episodes.append(_episode_row(self.run_id, episode.result))

    def commit(self) -> None:
        self.writer.write(self.turns, self.episodes)
        self.turns, self.episodes = [], []


def _loop(table, todo, config, mode, ablate, backend, writer, running, batch_size, progress) -> tuple[int, int]:
    counts = {"finished": 0, "errors": 0}
    bar = tqdm(total=len(todo), desc=f"eval {config.mode} {backend.model_name}", unit="ep", disable=not progress)
    shown = [0.0]

    def on_done(episode) -> None:
        result = episode.result
        running.add(result)
        counts["finished"] += 1
        counts["errors"] += result.stop_reason == STOP_ERROR
        bar.update(1)
        now = time.monotonic()
        if progress and now - shown[0] > 0.5:  # the running score: at most twice a second
            shown[0] = now
            _, acc, psr = running.overall()
            if acc is not None:
                bar.set_postfix_str(f"acc {acc:.1f}% psr {psr:.2f}", refresh=False)

    if pipelined(backend):  # each request stands alone, so the order changes no output: long episodes first
        todo = longest_first(todo, list(table["max_turns"]))
    try:
        drive(
            _episodes(table, todo, config, mode, ablate), backend, _ResultsSink(writer),
            make_request=mode.make_request, batch_size=batch_size,
            concurrency=getattr(backend, "concurrency", batch_size), on_done=on_done, policy=config.commit,
        )
    finally:
        bar.close()
    return counts["finished"], counts["errors"]
