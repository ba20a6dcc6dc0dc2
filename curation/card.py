"""The dataset card: `dataset_card.md` rendered with the folder's configs, counts and per-source terms.

The YAML is built with the libraries that read it back (`huggingface_hub.DatasetCardData`, `datasets`'
`DatasetInfosDict`), so the counts a user and the Hub see are the `dataset_info` splits of every config.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from proactivebench.schema import FEATURES
from proactivebench.sources import SOURCE_NAMES, SOURCES
from proactivebench.safe_files import OutputFolder
from proactivebench.store import card_configs, layout

TEMPLATE_NAME = "dataset_card.md"
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
LOCAL_REPO_ID = "<this folder or ORG/NAME>"


class CardError(ValueError):
    """A card that cannot be rendered or read back."""


@dataclass(frozen=True)
class SplitCount:
    rows: int
    files: int
    bytes: int  # parquet bytes on disk (what a user downloads)
    arrow_bytes: int  # uncompressed row-group bytes


def default_template() -> Path:
    """`dataset_card.md` at the repository root (beside the package folders)."""
    return Path(__file__).resolve().parents[1] / TEMPLATE_NAME


def _relative_shards(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for splits in layout(root).values() for ps in splits.values() for p in ps}


def config_split_files(root: Path | str, configs: list[dict] | None = None) -> dict[str, dict[str, list[Path]]]:
    """{config: {split: files}}, resolving each `data_files` pattern against the disk the way the Hub does."""
    root = Path(root)
    shards = _relative_shards(root)
    result: dict[str, dict[str, list[Path]]] = {}
    for config in card_configs(root) if configs is None else configs:
        for entry in config.get("data_files", []):
            patterns = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
            files = sorted({shards[r] for pattern in patterns for r in shards if fnmatch.fnmatchcase(r, pattern)})
            result.setdefault(config["config_name"], {})[entry["split"]] = files
    return result


def count_split(files: list[Path]) -> SplitCount:
    metas = [pq.ParquetFile(p).metadata for p in files]
    return SplitCount(
        rows=sum(m.num_rows for m in metas),
        files=len(files),
        bytes=sum(p.stat().st_size for p in files),
        arrow_bytes=sum(m.row_group(i).total_byte_size for m in metas for i in range(m.num_row_groups)),
    )


def config_counts(root: Path | str) -> dict[str, dict[str, SplitCount]]:
    return {c: {s: count_split(f) for s, f in splits.items()} for c, splits in config_split_files(root).items()}


def _config_total(splits: dict[str, SplitCount], attr: str) -> int:
    """Bytes of a config's files, each once: `full` repeats test + excluded unless it is the only split."""
    own = [c for s, c in splits.items() if s != "full"] or list(splits.values())
    return sum(getattr(c, attr) for c in own)


def _size_category(rows: int) -> str:
    for limit, name in [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]:
        if rows < limit:
            return name
    return "n>1M"


def card_metadata(root: Path | str, counts: dict[str, dict[str, SplitCount]] | None = None):
    """`DatasetCardData` with configs, per-config `dataset_info` (features + split counts) and tags."""
    import datasets
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    counts = config_counts(root) if counts is None else counts
    infos = DatasetInfosDict()
    for config, splits in counts.items():
        split_dict = datasets.SplitDict()
        for split, count in splits.items():
            split_dict.add(datasets.SplitInfo(name=split, num_bytes=count.arrow_bytes, num_examples=count.rows))
        infos[config] = datasets.DatasetInfo(
            features=FEATURES,
            splits=split_dict,
            download_size=_config_total(splits, "bytes"),
            dataset_size=_config_total(splits, "arrow_bytes"),
            config_name=config,
        )
    default = counts.get("default", {})
    total = _config_total(default, "rows")
    data = DatasetCardData(
        pretty_name="ProactiveBench",
        language=["en"],
        license="other",
        task_categories=["visual-question-answering"],
        size_categories=[_size_category(total)],
        tags=["proactiveness", "multimodal", "benchmark", "vision-language"],
        configs=card_configs(root),
    )
    infos.to_dataset_card_data(data)
    return data


def _counts_table(counts: dict[str, dict[str, SplitCount]]) -> str:
    splits = [s for s in ("test", "excluded", "full", "train") if any(s in c for c in counts.values())]
    head = "| config | " + " | ".join(splits) + " | size on disk |\n|---|" + "---:|" * (len(splits) + 1)
    lines = [head]
    for config in ["default", *SOURCE_NAMES, "full"]:
        if config not in counts:
            continue
        cells = [f"{counts[config][s].rows:,}" if s in counts[config] else "" for s in splits]
        size = _config_total(counts[config], "bytes")
        lines.append(f"| `{config}` | " + " | ".join(cells) + f" | {size / 1024**2:,.1f} MB |")
    return "\n".join(lines)


def _sources_table(present: list[str]) -> str:
    lines = ["| source | scenario | license | citation | homepage |", "|---|---|---|---|---|"]
    for name in present:
        s = SOURCES[name]
        lines.append(f"| `{name}` ({s.official_name}) | {s.scenario} | {s.license} | {s.citation} | {s.homepage} |")
    return "\n".join(lines)


def _configs_list(counts: dict[str, dict[str, SplitCount]]) -> str:
    lines = []
    for config in counts:
        what = {"default": "every source", "full": "the pre-filter pool of every source (one `full` split)"}.get(
            config, f"the `{config}` source ({SOURCES[config].scenario})" if config in SOURCES else config
        )
        lines.append(f"- `{config}`: {what}; splits {', '.join(f'`{s}`' for s in counts[config])}")
    return "\n".join(lines)


def _filter_summary(root: Path) -> tuple[str, str]:
    """A sentence on the filter run that made this folder, from its report if there is one."""
    report_path = root / "filter_report.json"
    if not report_path.exists():
        return "", "25%"
    report = json.loads(report_path.read_text())
    percent = f"{report['threshold']:.0%}"
    total = report["total"]
    return (
        f"The filter of this release: {report['num_models']} models, threshold {percent}; "
        f"{total['before']:,} samples before, {total['after']:,} kept, {total['excluded']:,} excluded "
        f"(details in `filter_report.json`).",
        percent,
    )


def render_card(root: Path | str, template: Path | str | None = None, repo_id: str | None = None) -> str:
    from huggingface_hub import DatasetCard

    root = Path(root)
    template = Path(template) if template else default_template()
    if not template.is_file():
        raise CardError(f"{template}: card template not found (pass --template)")
    counts = config_counts(root)
    if not counts:
        raise CardError(f"{root}: no shards under data/ to describe")
    summary, percent = _filter_summary(root)
    present = [s for s in SOURCE_NAMES if s in counts]
    values = {
        "pretty_name": "ProactiveBench",
        "repo_id": repo_id or LOCAL_REPO_ID,
        "configs_list": _configs_list(counts),
        "counts_table": _counts_table(counts),
        "sources_table": _sources_table(present),
        "source_names": ", ".join(f"`{s}`" for s in present),
        "filter_summary": summary,
        "threshold_percent": percent,
    }

    def fill(match: re.Match) -> str:
        if match[1] not in values:
            raise CardError(f"{template}: unknown placeholder {{{{ {match[1]} }}}}")
        return values[match[1]]

    text = template.read_text()
    if text.lstrip().startswith("---"):  # it would land in the body as text, under the generated header
        raise CardError(f"{template}: a card template has no YAML header of its own (the metadata is generated "
                        "from the data): remove its --- block")
    leftover = PLACEHOLDER.sub("", text)  # placeholders hold no newline: line numbers stay the template's
    if "{{" in leftover:
        line = leftover[: leftover.index("{{")].count("\n") + 1
        raise CardError(f"{template}:{line}: a placeholder that does not close, or is not {{{{ name }}}}")
    body = PLACEHOLDER.sub(fill, text)
    return str(DatasetCard(f"---\n{card_metadata(root, counts).to_yaml()}\n---\n{body}"))


def write_rendered_card(root: Path | str, template: Path | str | None = None, repo_id: str | None = None) -> Path:
    # A card this tool did not write (e.g. a folder downloaded from the Hub) is never replaced.
    return OutputFolder(root, "--dataset").write_text(
        "README.md", render_card(root, template, repo_id), fix="pass --keep-card to publish it as it is, or move it away"
    )


def card_split_counts(root: Path | str) -> dict[str, dict[str, int]]:
    """{config: {split: num_examples}} as the folder's README states them."""
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCard

    path = Path(root) / "README.md"
    if not path.is_file():
        raise CardError(f"{path}: no dataset card")
    try:
        data = DatasetCard.load(path).data
    except Exception as error:  # a broken YAML header surfaces as several error types
        raise CardError(f"{path}: unreadable card metadata ({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None
    infos = DatasetInfosDict.from_dataset_card_data(data)
    return {
        config: {name: split.num_examples for name, split in (info.splits or {}).items()}
        for config, info in infos.items()
    }


def card_configs_of(root: Path | str) -> list[dict]:
    from huggingface_hub import DatasetCard

    path = Path(root) / "README.md"
    try:
        return list(DatasetCard.load(path).data.to_dict().get("configs") or [])
    except Exception as error:  # a broken YAML header surfaces as several error types
        raise CardError(f"{path}: unreadable card metadata ({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None
