"""`import-official --train-parquet`: the authors' GRPO train split (parquet shards) → `train` episodes.

The authors publish their GRPO data as the `train` split of their Hub dataset: 14 parquet shards, 26,879
single-turn rows (docs/protocol.md §8.2). A row is one frame and one MCQA prompt: `prompt` (chat messages),
`options` (the lettered list: proactive/abstain options first, the 4 categories last, as the reference letters
them), `proactive_actions` (the options that count as a valid proactive suggestion on this frame),
`ground_truth` (a category, or an action on an ambiguous frame) and `images`, plus model-confidence columns.

Each row becomes a one-state episode (frame = its image, `max_turns` 1):
- the leading options are shown; each listed proactive action has a move to the state itself. With one turn the
  engine records the move as a valid suggestion and ends at the budget, exactly as the reference logs a
  last-turn move without taking it; no invented frame or state is needed.
- `ground_truth` a category: that is the `answer` and the state accepts answers.
- `ground_truth` an action: the row does not say which category is right, and on this frame none is (the
  paper trains "ask" there). The state accepts no answer, `answer` is "" and `meta.answer_unknown` is true:
  the one relaxation of the schema, allowed only with that flag (schema.validate_row_fields).
- anything else is reported (an error, or a recorded skip with `on_error="skip"`), never guessed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from proactivebench.actions import ACTIONS, is_abstain, parse_action
from proactivebench.schema import NUM_CATEGORIES, EpisodeRecord, Frame, Move, State
from proactivebench.sources import SOURCES, get_source
from proactivebench.safe_files import OutputFolder
from proactivebench.store import StagedOutput

from .scenarios import EntryError
from .scenarios.base import check_decodes

REPORT_NAME = "import_train_report.json"
ON_ERROR = ("fail", "skip")

# A row's source is the first of these whose action space covers the row's proactive options (each spec's
# `train_rank`: the paper's train data, QuickDraw and COCO train, first).
SOURCE_PREFERENCE = tuple(s.name for s in sorted(SOURCES.values(), key=lambda s: s.train_rank))

# The reference's MCQA template (docs/protocol.md §1.4): "<question> Choose from ... Options:\nA. x\n...".
_TEMPLATE = re.compile(
    r"^(?P<question>.*?) Choose from the following options\. Options:\n(?P<listing>(?:[A-Z]\. [^\n]*\n)+)(?P<tail>.*)$",
    re.S,
)


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_list_of(t: pa.DataType, check) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and check(t.value_type)


def _is_struct_with(t: pa.DataType, names: tuple[str, ...]) -> bool:
    return pa.types.is_struct(t) and all(t.get_field_index(n) >= 0 for n in names)


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_floating(t) or pa.types.is_integer(t)


def _is_delta(t: pa.DataType) -> bool:
    """The card's `sequence` of {key, value}, which `datasets` stores as a struct of two lists, or a list of
    {key, value} structs (what `datasets.List({...})` writes)."""
    if _is_list_of(t, lambda v: _is_struct_with(v, ("key", "value"))):
        return True
    return (
        _is_struct_with(t, ("key", "value"))
        and _is_list_of(t.field("key").type, _is_string)
        and _is_list_of(t.field("value").type, _is_number)
    )


# Column → (check, expected type in words). The first five are required; the confidence columns are checked when
# present (the authors' sibling repo ProactiveBench_train has only the first five) and kept in `meta`.
REQUIRED_COLUMNS = {
    "prompt": (lambda t: _is_list_of(t, lambda v: _is_struct_with(v, ("role", "content"))), "list of {role, content}"),
    "ground_truth": (_is_string, "string"),
    "proactive_actions": (lambda t: _is_list_of(t, _is_string), "list of string"),
    "options": (lambda t: _is_list_of(t, _is_string), "list of string"),
    "images": (lambda t: _is_list_of(t, lambda v: _is_struct_with(v, ("bytes",))), "list of image"),
}
CONFIDENCE_COLUMNS = {
    "qwen_conf": (_is_number, "float"),
    "qwen_delta": (_is_delta, "sequence of {key, value}"),
    "llava_conf": (_is_number, "float"),
    "llava_delta": (_is_delta, "sequence of {key, value}"),
}
TEXT_COLUMNS = [c for c in REQUIRED_COLUMNS if c != "images"]


def find_train_shards(folder: Path | str) -> list[Path]:
    """The train shards under `folder` (the dataset repo, its `data/` folder, or any folder of shards)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EntryError(f"{folder}: not a folder (expected the folder holding the train-*.parquet shards)")
    shards = sorted(folder.rglob("train-*.parquet")) or sorted(folder.rglob("*.parquet"))
    if not shards:
        raise EntryError(f"{folder}: no parquet shards (expected data/train-0000X-of-00014.parquet)")
    return shards


def check_columns(path: Path) -> list[str]:
    """Fail with one line naming what is missing or different; return the confidence columns present."""
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise EntryError(f"{path}: not a readable parquet file: {error}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in schema.names]
    if missing:
        raise EntryError(f"{path}: missing column(s) {', '.join(missing)} (columns: {', '.join(schema.names)})")
    present = [c for c in CONFIDENCE_COLUMNS if c in schema.names]
    for name in [*REQUIRED_COLUMNS, *present]:
        check, expected = {**REQUIRED_COLUMNS, **CONFIDENCE_COLUMNS}[name]
        if not check(schema.field(name).type):
            raise EntryError(f"{path}: column {name!r} is {schema.field(name).type}, expected {expected}")
    return present


# --- one row → one episode ----------------------------------------------------------------------------------


@dataclass
class TrainRow:
    """A parsed row without its image bytes; `where` names it (shard and row number) in messages."""

    index: int  # position in the whole train split (shards in name order): the episode's source_id
    where: str
    question: str
    listed: list[str]  # the lettered options, in display order
    proactive_actions: list[str]
    ground_truth: str
    system_prompt: str
    prompt_tail: str
    confidence: dict[str, Any]
    templated: bool  # the prompt is the reference's MCQA text, so the question was cut from it exactly
    options_column: list[str]

    @property
    def leading(self) -> list[str]:
        return self.listed[:-NUM_CATEGORIES]

    @property
    def categories(self) -> list[str]:
        return self.listed[-NUM_CATEGORIES:]


def _message_text(message: dict, where: str) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise EntryError(f"{where}: a prompt message has no content")
    return "".join(part.get("text") or "" for part in content if isinstance(part, dict) and part.get("type") == "text")


def _confidence_value(value: Any, name: str, where: str) -> Any:
    """A confidence cell as stored in `meta`: a number (NaN → None), or a delta as [{key, value}] in order."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):  # the card's sequence layout: {"key": [...], "value": [...]}
        keys, values = value.get("key"), value.get("value")
        if keys is None and values is None:
            return None
        if keys is None or values is None or len(keys) != len(values):
            raise EntryError(f"{where}: column {name!r} has {len(keys or [])} key(s) but {len(values or [])} value(s)")
        value = [{"key": k, "value": v} for k, v in zip(keys, values)]
    if isinstance(value, list):  # [{key, value}] keeps its order and any repeated key
        return [{"key": item["key"], "value": _confidence_value(item["value"], name, where)} for item in value]
    return value


def parse_row(record: dict, index: int, where: str, confidence_columns: list[str]) -> TrainRow:
    messages = record.get("prompt") or []
    users = [m for m in messages if m.get("role") == "user"]
    if not users:
        raise EntryError(f"{where}: the prompt has no user message")
    text = "\n".join(_message_text(m, where) for m in users)
    system = "\n".join(_message_text(m, where) for m in messages if m.get("role") == "system")
    options = list(record.get("options") or [])
    match = _TEMPLATE.match(text)
    if match:
        # The prompt carries the question and the lettered list: keep the question exactly, and check the list.
        # What the model saw wins; the options column may hold fewer entries but none the prompt does not list.
        listed = [line[3:] for line in match["listing"].splitlines()]
        strangers = [o for o in options if o not in listed]
        if strangers:
            raise EntryError(f"{where}: options {strangers!r} are not among those the prompt lists {listed!r}")
        question, tail = match["question"], match["tail"]
    else:
        listed, question, tail = options, text.strip(), ""
    ground_truth = record.get("ground_truth")
    if ground_truth is None:
        raise EntryError(f"{where}: ground_truth is empty")
    return TrainRow(
        index=index, where=where, question=question, listed=listed,
        proactive_actions=list(record.get("proactive_actions") or []), ground_truth=ground_truth.strip(),
        system_prompt=system, prompt_tail=tail, templated=match is not None, options_column=options,
        confidence={c: _confidence_value(record.get(c), c, where) for c in confidence_columns},
    )


def row_source(row: TrainRow, image_paths: list[str] | None = None) -> str:
    """The source a row comes from, read off its proactive options (or, failing that, its image file names)."""
    actions = {parse_action(text, ACTIONS) for text in row.leading if not is_abstain(text)}
    if None in actions:
        bad = [t for t in row.leading if not is_abstain(t) and parse_action(t, ACTIONS) is None]
        raise EntryError(f"{row.where}: option {bad[0]!r} is neither an abstain option nor a known action")
    if actions:
        for source in SOURCE_PREFERENCE:
            if actions <= set(get_source(source).action_space):
                return source
        raise EntryError(f"{row.where}: no scenario has all the actions {sorted(actions)}")
    for path in image_paths or []:
        lowered = path.lower()
        for source in SOURCE_PREFERENCE:
            marker = get_source(source).train_image_marker
            if marker and marker in lowered:
                return source
    raise EntryError(f"{row.where}: cannot tell the source: no proactive option and no telling image file name")


def check_row(row: TrainRow) -> str:
    """Structural checks that need no image; returns the ground truth's kind ("category" or "proactive")."""
    if len(row.listed) < NUM_CATEGORIES:
        raise EntryError(f"{row.where}: {len(row.listed)} options, expected at least the {NUM_CATEGORIES} categories")
    categories, leading = row.categories, row.leading
    for action in row.proactive_actions:
        if action not in leading:
            raise EntryError(f"{row.where}: proactive action {action!r} is not among the options before the categories")
        if is_abstain(action):
            raise EntryError(f"{row.where}: proactive action {action!r} reads as an abstain option")
    if len(set(categories)) != len(categories):
        raise EntryError(f"{row.where}: the categories {categories!r} repeat")
    if row.ground_truth in categories:
        return "category"
    if row.ground_truth in row.proactive_actions:
        return "proactive"
    raise EntryError(
        f"{row.where}: ground_truth {row.ground_truth!r} is neither a category {categories!r} "
        f"nor a proactive action {row.proactive_actions!r}"
    )


def row_to_episode(row: TrainRow, images: list[dict] | None, source: str) -> EpisodeRecord:
    kind = check_row(row)
    if not images or not all(isinstance(i, dict) and i.get("bytes") for i in images):
        raise EntryError(f"{row.where}: no image (the images list is empty or holds no bytes)")
    frames = []
    for number, image in enumerate(images):
        name = image.get("path") or f"train-{row.index:06d}-{number}.png"
        check_decodes(image["bytes"], name, row.where)
        frames.append(Frame(image["bytes"], name))  # the authors' bytes, unchanged
    spec = get_source(source)
    options = [spec.option(text) for text in row.leading]
    moves = [Move(i, 0) for i, text in enumerate(row.leading) if text in row.proactive_actions]
    unknown = kind == "proactive"
    record = EpisodeRecord(
        sample_id=f"{spec.name}-train-{row.index:06d}",
        source=spec.name,
        source_id=row.index,
        scenario=spec.scenario,
        question=row.question,
        options=options,
        categories=row.categories,
        answer="" if unknown else row.ground_truth,
        frames=frames,
        states=[State(frame=0, shown=list(range(len(options))), moves=moves, accepts_answer=not unknown)],
        first_state=0,
        reference_frame=0,
        max_turns=1,
        meta={
            "origin": "authors_train_split",
            "train_row": row.index,
            "where": row.where,
            "ground_truth": row.ground_truth,
            "ground_truth_kind": kind,
            "answer_unknown": unknown,
            "prompt_template": "reference" if row.templated else "other",
            **({"options_column": row.options_column} if row.options_column != row.listed else {}),
            **({"system_prompt": row.system_prompt} if row.system_prompt else {}),
            **({"prompt_tail": row.prompt_tail} if row.prompt_tail else {}),
            **row.confidence,
        },
    )
    try:
        return record.validate()
    except ValueError as error:
        raise EntryError(f"{row.where}: {error}") from None


# --- the import ---------------------------------------------------------------------------------------------


@dataclass
class TrainImportReport:
    shards: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # {source: episodes}
    ground_truth_kinds: dict[str, int] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)  # [{where, reason}]

    def to_json(self) -> dict:
        return {
            "shards": self.shards, "counts": self.counts, "ground_truth_kinds": self.ground_truth_kinds,
            "skipped": self.skipped,
        }


def _iter_records(path: Path, columns: list[str]) -> Iterator[dict]:
    parquet = pq.ParquetFile(path)
    for group in range(parquet.num_row_groups):  # memory stays at one row group
        yield from parquet.read_row_group(group, columns=columns).to_pylist()


def import_train(
    parquet_dir: Path | str,
    out_dir: Path | str,
    on_error: str = "fail",
    sources: list[str] | None = None,
    limit: int | None = None,
) -> TrainImportReport:
    """Convert the authors' train shards under `parquet_dir` into `train` episodes in `out_dir` (atomic)."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
    for source in sources or []:
        get_source(source)
    inputs = {"--train-parquet": parquet_dir}
    OutputFolder.check(out_dir, "--out", inputs, inside_ok=True)
    shards = find_train_shards(parquet_dir)
    present = {path: check_columns(path) for path in shards}  # every shard's columns before any conversion
    report = TrainImportReport(shards=[str(p) for p in shards])

    def problem(error: EntryError, where: str) -> None:
        if on_error == "fail":
            raise error
        report.skipped.append({"where": where, "reason": str(error)})

    # Pass 1, text only: parse and check every row and assign its source, so a bad row fails before image work.
    plan: dict[str, list[tuple[Path, int]]] = {}  # {source: [(shard, row number in shard)]}
    index = 0
    for path in tqdm(shards, desc="check train shards", unit="shard"):
        columns = TEXT_COLUMNS + present[path]
        for number, record in enumerate(_iter_records(path, columns)):
            if limit is not None and index >= limit:
                break
            where = f"{path.name}:row {number}"
            try:
                row = parse_row(record, index, where, present[path])
                check_row(row)
                source = row_source(row)
            except EntryError as error:
                problem(error, where)
            else:
                if not sources or source in sources:
                    plan.setdefault(source, []).append((path, number))
            index += 1
    if not plan:
        raise EntryError(f"{parquet_dir}: no row could be imported")

    # Pass 2: per source, stream the planned rows with their images into the staged output.
    global_index = {}
    index = 0
    for path in shards:
        for number in range(pq.ParquetFile(path).metadata.num_rows):
            global_index[(path, number)] = index
            index += 1
    with tqdm(total=sum(len(v) for v in plan.values()), desc="import train", unit="ep") as bar, StagedOutput(
        out_dir, inputs=inputs
    ) as staged:
        for source, wanted in plan.items():
            chosen = set(wanted)

            def episodes(source=source, chosen=chosen) -> Iterator[EpisodeRecord]:
                for path in shards:
                    columns = [*REQUIRED_COLUMNS, *present[path]]
                    for number, record in enumerate(_iter_records(path, columns)):
                        if (path, number) not in chosen:
                            continue
                        where = f"{path.name}:row {number}"
                        row = parse_row(record, global_index[(path, number)], where, present[path])
                        kind = check_row(row)
                        try:
                            episode = row_to_episode(row, record.get("images"), source)
                        except EntryError as error:
                            problem(error, where)
                        else:
                            report.ground_truth_kinds[kind] = report.ground_truth_kinds.get(kind, 0) + 1
                            yield episode
                        bar.update(1)

            result = staged.write_split(source, "train", episodes())
            report.counts[source] = result.rows
        if not any(report.counts.values()):
            raise EntryError(f"{parquet_dir}: no row could be imported")
    OutputFolder(out_dir).write_json(REPORT_NAME, report.to_json())
    return report


# --- shards in the authors' layout, for tests and for trying the importer -----------------------------------


def train_features():
    """The authors' train-split features as their card declares them (docs/protocol.md §8.2).

    The deltas are a `sequence` of {key, value}: `datasets` turns a Sequence of a dict into a dict of lists and
    stores it as `struct<key: list<string>, value: list<float>>`; rows give them as {"key": [...], "value": [...]}.
    """
    import datasets

    delta = datasets.Sequence({"key": datasets.Value("string"), "value": datasets.Value("float32")})
    return datasets.Features(
        {
            "prompt": datasets.List(
                {
                    "content": datasets.List({"type": datasets.Value("string"), "text": datasets.Value("string")}),
                    "role": datasets.Value("string"),
                }
            ),
            "ground_truth": datasets.Value("string"),
            "proactive_actions": datasets.List(datasets.Value("string")),
            "options": datasets.List(datasets.Value("string")),
            "qwen_conf": datasets.Value("float32"),
            "qwen_delta": delta,
            "llava_conf": datasets.Value("float32"),
            "llava_delta": delta,
            "images": datasets.List(datasets.Image()),
        }
    )


def make_train_row(
    question: str, options: list[str], proactive_actions: list[str], ground_truth: str, image: Any, **confidence
) -> dict:
    """One row in the authors' layout; the prompt is the reference's MCQA text (docs/protocol.md §1.4)."""
    from proactivebench.prompts import multi_choice

    return {
        "prompt": [{"role": "user", "content": [{"type": "text", "text": multi_choice(question, options)}]}],
        "ground_truth": ground_truth,
        "proactive_actions": proactive_actions,
        "options": options,
        "qwen_conf": confidence.get("qwen_conf", 0.5),
        "qwen_delta": confidence.get("qwen_delta", {"key": [options[-1]], "value": [0.1]}),
        "llava_conf": confidence.get("llava_conf", 0.25),
        "llava_delta": confidence.get("llava_delta", {"key": [options[-1]], "value": [-0.2]}),
        "images": [image],
    }


def write_train_shards(folder: Path | str, rows: list[dict], num_shards: int = 2, features=None) -> list[Path]:
    """Write `rows` as `data/train-0000X-of-0000N.parquet` under `folder`, images embedded."""
    import datasets

    data = Path(folder) / "data"
    data.mkdir(parents=True, exist_ok=True)
    features = features or train_features()
    per_shard = max(1, math.ceil(len(rows) / num_shards))
    paths = []
    for i in range(num_shards):
        chunk = rows[i * per_shard : (i + 1) * per_shard]
        path = data / f"train-{i:05d}-of-{num_shards:05d}.parquet"
        datasets.Dataset.from_list(chunk, features=features).to_parquet(str(path))
        paths.append(path)
    return paths


def report_lines(report: TrainImportReport) -> list[str]:
    lines = [f"{source:>11}: train {count:>6}" for source, count in report.counts.items()]
    kinds = ", ".join(f"{k}: {v}" for k, v in sorted(report.ground_truth_kinds.items()))
    lines.append(f"ground truth kinds: {kinds}")
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} row(s), first: {report.skipped[0]['reason']}")
    return lines
