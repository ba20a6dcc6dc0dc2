"""`report --html`: one self-contained page (inline CSS/JS, frames as data URIs) that opens offline from a file.

Python gathers everything into one JSON blob embedded as `<script type="application/json" id="data">`; the page's
inline script (eval/report_assets/template.html) renders it. Every number comes from an analytics view
(`eval/analytics.py`) as `report --format json` prints it; the page adds only the bootstrap intervals
(`eval/bootstrap.py`), the paper's published figures (eval/report_assets/published.json, package data) and the
differences to them where a run's model matches a published one by name.

Size: trajectories show the same few samples (`per_source` per source, seeded choice) for every run, frames as
≤ 256 px JPEG thumbnails stored once per (sample, frame), long texts cut; so the page stays a few MB whatever the
number of episodes in the results file.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from proactivebench import store
from proactivebench.safe_files import atomic_write_text
from proactivebench.sources import SOURCE_NAMES, SOURCES

from .analytics import ANSWER_KINDS, public_views
from .bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, table1_intervals, with_intervals

GENERATOR = "proactivebench report --html"  # marks a page we wrote: only such a file is ever replaced
MAX_TEXT = 3000  # characters of a prompt or an output kept on the page (OEG answers can be very long)
SPLITS = ("test", "excluded", "train")
# Published rows compare only with the setting the paper measured: zero-shot, no hint, no ablation, no variant.
PAPER_SETTING = {"hint": False, "ablation": "", "variant": ""}


class ReportError(ValueError):
    """An input the page cannot be built from, or an output it must not overwrite; one line."""


@dataclass(frozen=True)
class ReportOptions:
    resamples: int = DEFAULT_RESAMPLES  # 0: no intervals
    seed: int = DEFAULT_SEED
    per_source: int = 10  # trajectory samples per source (the same samples for every run)
    thumb_px: int = 256
    jpeg_quality: int = 70


# --- data ---------------------------------------------------------------------------------------------------


def frame_records(frame) -> list[dict]:
    """A view's rows as JSON records, exactly as `report --format json` prints them."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def published() -> dict:
    """The paper's published figures (package data)."""
    text = resources.files(__package__).joinpath("report_assets/published.json").read_text(encoding="utf-8")
    return json.loads(text)


def model_key(spec: str) -> str:
    """`hf:llava-hf/llava-onevision-qwen2-7b-ov-hf` → `llava-onevision-qwen2-7b-ov-hf`: backend prefix and
    organisation or folder dropped, lower case."""
    name = spec.split(":", 1)[1] if re.match(r"^[a-z]+:", spec) else spec
    return name.rstrip("/").rsplit("/", 1)[-1].lower()


def match_published(spec: str, models: dict[str, dict]) -> str | None:
    key = model_key(spec)
    for name, facts in models.items():
        if key == name.lower() or key in {a.lower() for a in facts.get("aliases", [])}:
            return name
    return None


def _paper_setting(row: dict) -> bool:
    return all((row.get(k) or type(v)()) == v for k, v in PAPER_SETTING.items())


def comparisons(views: dict[str, list[dict]], paper: dict) -> list[dict]:
    """Differences (run − paper) for every run whose model is a published one, in the paper's setting."""
    models, out = paper["models"], []
    for row in views.get("table1", []):
        name = match_published(row["model"], models)
        facts = models.get(name, {}).get("table1") if name else None
        if facts and row["mode"] == "mcqa" and _paper_setting(row):
            cells = {}
            for source, metrics in facts.items():
                for metric, value in metrics.items():
                    mine = row.get(f"{source}_{metric}")
                    if mine is not None:
                        cells[f"{source}_{metric}"] = {"run": mine, "paper": value, "diff": mine - value}
            out.append({"view": "table1", "run": row["run"], "dataset": row["dataset"], "paper_model": name,
                        "cells": cells})
    for row in views.get("reference_gap", []):
        name = match_published(row["model"], models)
        facts = models.get(name, {}).get("reference") if name else None
        if facts and row["source"] in facts and _paper_setting(row) and row["reference_acc"] is not None:
            value = facts[row["source"]]
            out.append({"view": "reference_gap", "model": row["model"], "dataset": row["dataset"],
                        "paper_model": name, "cells": {f"{row['source']}_reference_acc": {
                            "run": row["reference_acc"], "paper": value, "diff": row["reference_acc"] - value}}})
    for row in views.get("oeg_table", []):
        name = match_published(row["model"], models)
        facts = models.get(name, {}).get("oeg") if name else None
        if facts and _paper_setting(row):
            cells = {f"{s}_{m}": {"run": row[f"{s}_{m}"], "paper": v, "diff": row[f"{s}_{m}"] - v}
                     for s, metrics in facts.items() for m, v in metrics.items() if row.get(f"{s}_{m}") is not None}
            out.append({"view": "oeg_table", "run": row["run"], "judge_model": row["judge_model"],
                        "dataset": row["dataset"], "paper_model": name, "cells": cells})
    return out


def _cut(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f" … [{len(text) - MAX_TEXT} more characters]"


def _chosen_samples(con, per_source: int, seed: int) -> dict[str, list[str]]:
    """source → up to `per_source` sample ids, a seeded choice among the samples any run evaluated."""
    rows = con.execute("SELECT DISTINCT source, sample_id FROM episode_results").fetchall()
    by_source: dict[str, list[str]] = {}
    for source, sample_id in rows:
        by_source.setdefault(source, []).append(sample_id)
    order = {s: i for i, s in enumerate(SOURCE_NAMES)}
    chosen = {}
    for source in sorted(by_source, key=lambda s: (order.get(s, len(order)), s)):
        ranked = sorted(by_source[source], key=lambda sid: hashlib.sha256(f"{seed}:{sid}".encode()).hexdigest())
        chosen[source] = sorted(ranked[:per_source])
    return chosen


def trajectories(con, options: ReportOptions) -> dict[str, Any]:
    """The chosen samples' episodes of every run (the ones the views count: the latest run of a setting wins)."""
    settings = con.execute(
        "SELECT DISTINCT run, dataset FROM episode_results ORDER BY run, dataset").fetchall()
    several = len({d for _, d in settings}) > 1
    labels = [f"{run} [{dataset}]" if several else run for run, dataset in settings]
    index = {key: i for i, key in enumerate(settings)}
    total = con.execute("SELECT count(DISTINCT sample_id) FROM episode_results").fetchone()[0]
    chosen = _chosen_samples(con, options.per_source, options.seed) if options.per_source else {}
    ids = [sid for sids in chosen.values() for sid in sids]  # the paper's source order
    episodes: dict[str, dict] = {sid: {"sample_id": sid, "runs": {}} for sid in ids}
    prompts: dict[str, int] = {}
    if ids:
        con.execute("CREATE OR REPLACE TEMPORARY TABLE report_chosen AS SELECT unnest(?::VARCHAR[]) AS sample_id",
                    [ids])
        for run, dataset, sid, source, correct, turns, suggestions, stop in con.execute(
                "SELECT run, dataset, sample_id, source, correct, num_turns, proactive_suggestions, stop_reason "
                "FROM episode_results JOIN report_chosen USING (sample_id)").fetchall():
            episodes[sid]["source"] = source
            episodes[sid]["runs"][index[(run, dataset)]] = {
                "correct": bool(correct), "num_turns": turns, "psr": suggestions, "stop_reason": stop, "turns": []}
        for run, dataset, sid, turn, frame, prompt, output, option_v, category_v, kind, text, error in con.execute(
                "SELECT e.run, e.dataset, t.sample_id, t.turn, t.frame, t.prompt, t.output, t.option_verdict, "
                "t.category_verdict, t.chosen_kind, t.chosen_text, t.error FROM turns t "
                "JOIN episode_results e USING (run_id, sample_id) JOIN report_chosen USING (sample_id) "
                "ORDER BY t.sample_id, e.run, t.turn").fetchall():
            prompt_id = prompts.setdefault(_cut(prompt), len(prompts))
            episodes[sid]["runs"][index[(run, dataset)]]["turns"].append({
                "turn": turn, "frame": frame, "prompt": prompt_id, "output": _cut(output),
                "option_verdict": option_v, "category_verdict": category_v, "chosen_kind": kind,
                "chosen_text": text, "error": error or ""})
        con.execute("DROP TABLE report_chosen")
    return {"runs": labels, "episodes": [episodes[s] for s in ids], "prompts": list(prompts),
            "total_samples": total, "per_source": options.per_source, "images": {}}


def thumbnails(dataset: Path | str, wanted: dict[str, set[int]], options: ReportOptions) -> dict[str, str]:
    """"<sample_id>/<frame>" → JPEG data URI (longest side ≤ thumb_px), read only for the wanted samples."""
    import pyarrow.parquet as pq
    from PIL import Image

    root = Path(dataset)
    if not root.is_dir():
        raise ReportError(f"--dataset must be a local dataset folder (hub layout): {root} is not a folder")
    on_disk = store.layout(root)
    if not on_disk:
        raise ReportError(f"{root}: no parquet shards under data/<source>/ (not a proactivebench dataset folder)")
    sources = {sid.rsplit("-", 1)[0] for sid in wanted}
    out: dict[str, str] = {}
    for source in sorted(sources & set(on_disk)):
        ids = sorted(s for s in wanted if s.rsplit("-", 1)[0] == source)
        for split in SPLITS:
            for path in on_disk[source].get(split, []):
                table = pq.read_table(path, columns=["sample_id", "frames"], filters=[("sample_id", "in", ids)])
                for row in table.to_pylist():
                    for index in sorted(wanted[row["sample_id"]]):
                        if 0 <= index < len(row["frames"]) and row["frames"][index].get("bytes"):
                            out[f"{row['sample_id']}/{index}"] = _thumbnail(row["frames"][index]["bytes"],
                                                                            options, Image)
    return out


def _thumbnail(data: bytes, options: ReportOptions, image_module) -> str:
    with image_module.open(io.BytesIO(data)) as image:
        image = image.convert("RGB")
        image.thumbnail((options.thumb_px, options.thumb_px))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=options.jpeg_quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def build_data(con, dataset: Path | str | None = None, results_name: str = "",
               options: ReportOptions = ReportOptions()) -> dict[str, Any]:
    """Everything the page shows, from a connection with the analytics views (`analytics.open_results`)."""
    views = {v.name: frame_records(con.sql(f"SELECT * FROM {v.name}").df()) for v in public_views(con)}
    if options.resamples and views.get("table1"):
        frame = con.sql("SELECT * FROM table1").df()
        views["table1"] = frame_records(with_intervals(frame, table1_intervals(con, options.resamples,
                                                                               options.seed)))
    paper = published()
    traj = trajectories(con, options)
    if dataset is not None and traj["episodes"]:
        wanted: dict[str, set[int]] = {}
        for episode in traj["episodes"]:
            for run in episode["runs"].values():
                for turn in run["turns"]:
                    if turn["frame"] is not None:
                        wanted.setdefault(episode["sample_id"], set()).add(turn["frame"])
        traj["images"] = thumbnails(dataset, wanted, options)
    counts = con.execute("SELECT count(DISTINCT run_id), count(*) FROM episodes").fetchone()
    return {
        "meta": {
            "generator": GENERATOR, "results": results_name, "dataset": str(dataset) if dataset else "",
            "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "resamples": options.resamples, "seed": options.seed, "ci_level": 95,
            "run_ids": counts[0], "episode_rows": counts[1],
        },
        "sources": [{"name": s, "label": SOURCES[s].acronym} for s in SOURCE_NAMES],
        "actions": list(ANSWER_KINDS),
        "views": views,
        "published": paper,
        "comparisons": comparisons(views, paper),
        "trajectories": traj,
    }


# --- page ---------------------------------------------------------------------------------------------------


def render(data: dict[str, Any]) -> str:
    template = resources.files(__package__).joinpath("report_assets/template.html").read_text(encoding="utf-8")
    # "<" escaped inside the JSON so no string in it can close the <script> element.
    blob = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return template.replace("__GENERATOR__", GENERATOR).replace("__DATA__", blob)


def check_html_target(out: Path | str) -> Path:
    """Refuse (one line) an --html path that is a folder or a file this tool did not write (a page we wrote
    carries GENERATOR in its head); called before any work, and again right before the write."""
    out = Path(out)
    if out.is_dir():
        raise ReportError(f"--html {out} is a folder; give a file name such as report.html")
    if out.exists() or out.is_symlink():
        try:
            with open(out, "rb") as handle:
                head = handle.read(4096)
        except OSError as error:
            raise ReportError(f"--html {out}: cannot read it ({error.strerror})") from None
        if f'content="{GENERATOR}"'.encode() not in head:
            raise ReportError(f"--html {out} exists and is not a page written by `{GENERATOR}`; not overwriting it")
    return out


def write_html(con, out: Path | str, dataset: Path | str | None = None, results_name: str = "",
               options: ReportOptions = ReportOptions()) -> Path:
    """Build and write the page atomically; an existing file is replaced only if it is a page we wrote."""
    out = check_html_target(out)
    text = render(build_data(con, dataset, results_name, options))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    return out
