"""`proactivebench report`: print the analytics views of a results file and optionally plot them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from proactivebench.filter_rule import DEFAULT_THRESHOLD
from proactivebench.sources import SOURCE_NAMES

from .analytics import View, prediction_views, public_views, result_views, source_label
from .bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED

DEFAULT_TRAJECTORIES = 10
# Formats that keep every column: table1 gets its bootstrap CI columns there (table/markdown stay the paper's cells).
CI_FORMATS = {"csv", "json"}

PUBLIC_VIEW_NAMES = [v.name for v in result_views() + prediction_views(DEFAULT_THRESHOLD) if v.public]
# Wide views shown the paper's way in table/markdown: one "a/b" cell per source (e.g. acc/psr = "14.3/0.4").
PAIRED_METRICS = {"table1": ("acc", "psr"), "oeg_table": ("cc", "ps", "agg")}
KEEP_PRECISION = {"threshold"}  # a setting, not a measurement: printed as given
RUN_LABEL_PARTS = ("model", "mode", "hint", "ablation", "variant")  # what the `run` label spells


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="print the paper's tables (Table 1, Fig. 3, Fig. 4, Table 2) from a results file; --plot for PNGs",
        description="Print the analytics views of a results DuckDB file (table1, reference_gap, "
        "action_distribution, oeg_table; filter_stats/filter_solved with --predictions). The file is opened "
        "read-only; the views are created as temporary views. See docs/results_tables.md for every column.",
    )
    parser.add_argument("--results", type=Path, required=True, help="results DuckDB file written by `eval`")
    parser.add_argument("--format", choices=sorted(FORMATTERS), default="table",
                        help="table/markdown round to one decimal and show acc/psr pairs; csv/json keep every "
                        "column at full precision (default: table)")
    parser.add_argument("--plot", type=Path, metavar="DIR", help="also write PNG figures into DIR")
    parser.add_argument("--view", action="append", choices=PUBLIC_VIEW_NAMES, dest="views",
                        help="print only this view (repeatable); default: every view that applies")
    parser.add_argument("--predictions", type=Path, metavar="DIR",
                        help="folder of first-turn prediction parquet files (curate first-turn): adds filter views")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"filter threshold on the first-turn solve rate (default {DEFAULT_THRESHOLD})")
    parser.add_argument("--save-views", action="store_true",
                        help="also store the views in the results file (needs write access), so any DuckDB "
                        "client can query table1 & co. without proactivebench")
    parser.add_argument("--html", type=Path, metavar="OUT.html",
                        help="also write one self-contained HTML page (tables with 95%% CIs, figures, the paper's "
                        "published rows, trajectories); add --dataset for the frames")
    parser.add_argument("--dataset", type=Path, metavar="DIR",
                        help="the evaluated dataset folder: the HTML page shows the frames of each turn")
    parser.add_argument("--trajectories", type=int, default=DEFAULT_TRAJECTORIES, metavar="N",
                        help=f"HTML: episodes per source shown as trajectories, the same samples for every run "
                        f"(default {DEFAULT_TRAJECTORIES}; 0: none)")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_RESAMPLES, metavar="N",
                        help=f"bootstrap resamples for the 95%% CIs of table1 in csv/json/html "
                        f"(default {DEFAULT_RESAMPLES}; 0: no CIs)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap and trajectory sampling seed")
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from .results import damaged_file_errors

    with damaged_file_errors(args.results):
        return _report(args)


def _report(args: argparse.Namespace) -> int:
    from .analytics import open_results, save_views

    _check_outputs(args)
    if args.save_views:
        save_views(args.results)
    con = open_results(args.results, args.predictions, args.threshold)
    try:
        views = public_views(con)
        if args.views:
            wanted = set(args.views)
            views = [v for v in views if v.name in wanted]
            absent = wanted - {v.name for v in views}
            if absent:
                raise ValueError(f"view(s) {', '.join(sorted(absent))} need --predictions")
        if args.bootstrap < 0 or args.trajectories < 0:
            raise ValueError("--bootstrap and --trajectories must be >= 0")
        frames = [(view, con.sql(f"SELECT * FROM {view.name}").df()) for view in views]
        if args.format in CI_FORMATS and args.bootstrap:
            frames = [(view, table1_with_intervals(con, frame, args.bootstrap, args.seed)
                       if view.name == "table1" else frame) for view, frame in frames]
        sys.stdout.write(FORMATTERS[args.format](frames))
        if args.plot:
            from .plots import write_plots

            for path in write_plots(con, args.plot, {"--predictions": args.predictions, "--dataset": args.dataset}):
                print(f"wrote {path}", file=sys.stderr)
        if args.html:
            from .html_report import ReportOptions, write_html

            options = ReportOptions(resamples=args.bootstrap, seed=args.seed, per_source=args.trajectories)
            path = write_html(con, args.html, dataset=args.dataset, results_name=args.results.name,
                              options=options)
            print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)", file=sys.stderr)
    finally:
        con.close()
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """Every output refused before any work: a --plot folder or --html file this tool did not write."""
    if args.plot:
        from .plots import check_plot_dir

        check_plot_dir(args.plot, {"--predictions": args.predictions, "--dataset": args.dataset})
    if args.html:
        from .html_report import check_html_target

        check_html_target(args.html)


def table1_with_intervals(con, frame, resamples: int, seed: int):
    """The table1 frame with its bootstrap 95% CI columns (`<source>_acc_lo`, `…_hi`, …)."""
    from .bootstrap import table1_intervals, with_intervals

    return with_intervals(frame, table1_intervals(con, resamples, seed)) if not frame.empty else frame


# --- presentation -----------------------------------------------------------------------------------------


def paper_layout(name: str, frame):
    """A view as the paper prints it: one decimal, metric pairs joined into one cell per source (empty sources
    dropped), and no setting columns that the `run` label already spells or that say nothing in this file."""
    if frame.empty:
        return frame
    out = frame.round({c: 1 for c in frame.columns if c not in KEEP_PRECISION})
    metrics = PAIRED_METRICS.get(name)
    if metrics:
        out = out[[c for c in out.columns if not any(c.endswith(f"_{m}") for m in metrics)]]
        insert_at = list(out.columns).index("sources")
        for prefix in [*SOURCE_NAMES, "avg"]:
            columns = [f"{prefix}_{m}" for m in metrics]
            if frame[columns].isna().all().all():
                continue
            cells = frame[columns].apply(lambda row: "/".join("-" if v != v else f"{v:.1f}" for v in row), axis=1)
            out.insert(insert_at, source_label(prefix) if prefix != "avg" else "avg " + "/".join(metrics), cells)
            insert_at += 1
    if "source" in out.columns:
        out["source"] = out["source"].map(source_label)
    hidden = set(RUN_LABEL_PARTS) if "run" in out.columns else set()
    hidden |= {c for c in ("hint", "ablation", "variant") if c in out.columns and not out[c].astype(bool).any()}
    if "dataset" in out.columns and out["dataset"].nunique() < 2:
        hidden.add("dataset")
    return out[[c for c in out.columns if c not in hidden]]


def _title(view: View) -> str:
    return f"{view.name}: {view.description}"


def format_table(frames) -> str:
    parts = []
    for view, frame in frames:
        body = "(no rows)" if frame.empty else paper_layout(view.name, frame).to_string(index=False)
        parts.append(f"== {_title(view)}\n{body}\n")
    return "\n".join(parts)


def _markdown_table(frame) -> str:
    def cell(value) -> str:
        text = "" if value is None or value != value else str(value)
        return text.replace("|", "\\|")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def format_markdown(frames) -> str:
    parts = []
    for view, frame in frames:
        body = "_no rows_" if frame.empty else _markdown_table(paper_layout(view.name, frame))
        parts.append(f"### {view.name}\n\n{view.description}\n\n{body}\n")
    return "\n".join(parts)


def format_csv(frames) -> str:
    if len(frames) == 1:  # a single view is plain CSV, ready for a spreadsheet
        return frames[0][1].to_csv(index=False)
    return "\n".join(f"# {view.name}\n{frame.to_csv(index=False)}" for view, frame in frames)


def format_json(frames) -> str:
    payload = {view.name: json.loads(frame.to_json(orient="records", date_format="iso")) for view, frame in frames}
    return json.dumps(payload, indent=2) + "\n"


FORMATTERS: dict[str, Callable] = {
    "table": format_table,
    "markdown": format_markdown,
    "csv": format_csv,
    "json": format_json,
}
