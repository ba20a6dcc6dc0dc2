"""PNG figures of the analytics views (the paper's Table 1 as bars, Fig. 3, Fig. 4, Table 2 as bars).

Figures are built with `matplotlib.figure.Figure` (the Agg canvas, no pyplot), so plotting never touches a
global backend or a display. Each plot reads its view from a connection on which the views exist
(`analytics.open_results`) and returns None when the view has no rows.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from proactivebench.safe_files import OutputFolder
from proactivebench.sources import SOURCE_NAMES

from .analytics import ANSWER_KINDS, source_label

log = logging.getLogger(__name__)

ACTION_COLORS = {
    "proactive": "#2a9d8f", "abstain": "#e9c46a", "correct_category": "#4c72b0",
    "wrong_category": "#e76f51", "unparsed": "#9e9e9e", "error": "#333333",
}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _sources_in(frame) -> list[str]:
    """Sources present in a frame, in the paper's order (unknown ones last)."""
    present = set(frame["source"])
    return [s for s in SOURCE_NAMES if s in present] + sorted(present - set(SOURCE_NAMES))


def _grouped_bars(ax, groups: list[str], series: dict[str, list[float]], ylabel: str) -> None:
    """One cluster of bars per group, one bar per series; NaN/None values leave a gap."""
    import numpy as np

    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for i, (label, values) in enumerate(series.items()):
        heights = np.array([np.nan if v is None else float(v) for v in values])
        ax.bar(x + (i - (len(series) - 1) / 2) * width, np.nan_to_num(heights), width,
               label=label, alpha=0.0 if np.isnan(heights).all() else 1.0)
    ax.set_xticks(x, groups)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _per_source_metrics(long_frame, wide_frame, metrics: dict[str, str], title: str, run_key: str = "run"):
    """One panel per metric: sources (+ the macro average) on x, one bar per run."""
    if long_frame.empty:
        return None
    sources = _sources_in(long_frame)
    runs = list(dict.fromkeys(long_frame[run_key]))
    fig = _figure(max(6.0, 1.1 * (len(sources) + 1) + 0.3 * len(runs)), 3.2 * len(metrics))
    axes = fig.subplots(len(metrics), 1, squeeze=False)[:, 0]
    for ax, (metric, ylabel) in zip(axes, metrics.items()):
        series = {}
        for run in runs:
            rows = long_frame[long_frame[run_key] == run].set_index("source")[metric]
            average = wide_frame.loc[wide_frame[run_key] == run, f"avg_{metric}"]
            series[run] = [rows.get(s) for s in sources] + [average.iloc[0] if len(average) else None]
        _grouped_bars(ax, [source_label(s) for s in sources] + ["avg"], series, ylabel)
    axes[0].set_title(title)
    axes[0].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_table1(con):
    long_frame = con.sql("SELECT * FROM source_accuracy WHERE mode NOT IN ('reference', 'oeg')").df()
    return _per_source_metrics(long_frame, con.sql("SELECT * FROM table1").df(),
                               {"acc": "accuracy (%)", "psr": "proactive suggestions (mean)"},
                               "ProactiveBench MCQA per source (Table 1)")


def plot_reference_gap(con):
    frame = con.sql("SELECT * FROM reference_gap WHERE proactive_acc IS NOT NULL").df()
    if frame.empty:
        return None
    # The paper's Fig. 3 averages over models; with one model this is that model.
    means = frame.groupby("source")[["reference_acc", "proactive_acc"]].mean()
    sources = _sources_in(frame)
    models = sorted(set(frame["model"]))
    fig = _figure(max(7.0, 1.0 * len(sources) + 3), 3.6)
    ax = fig.subplots()
    _grouped_bars(ax, [source_label(s) for s in sources], {
        "reference frame": [means.loc[s, "reference_acc"] for s in sources],
        "proactive (MCQA)": [means.loc[s, "proactive_acc"] for s in sources],
    }, "accuracy (%)")
    who = models[0] if len(models) == 1 else f"mean over {len(models)} models"
    ax.set_title(f"Reference vs proactive accuracy ({who})")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_action_distribution(con):
    frame = con.sql("SELECT * FROM action_distribution WHERE source = 'all'").df()
    if frame.empty:
        return None
    fig = _figure(9.0, max(2.4, 1.2 + 0.45 * len(frame)))
    ax = fig.subplots()
    left = [0.0] * len(frame)
    labels = list(frame["run"])
    for action in ANSWER_KINDS:
        shares = list(frame[action])
        ax.barh(labels, shares, left=left, color=ACTION_COLORS[action], label=action.replace("_", " "))
        left = [a + b for a, b in zip(left, shares)]
    ax.invert_yaxis()  # first run on top
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of turns (%)")
    ax.set_title("Choices per turn (Fig. 4)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_oeg(con):
    long_frame = con.sql("SELECT *, run || ' / ' || judge_model AS run_judge FROM oeg_source").df()
    wide_frame = con.sql("SELECT *, run || ' / ' || judge_model AS run_judge FROM oeg_table").df()
    return _per_source_metrics(long_frame, wide_frame, {"cc": "category (%)", "ps": "proactive (%)"},
                               "Open-ended generation per source (Table 2)", run_key="run_judge")


# name → figure builder; the file is <name>.png.
PLOTS: dict[str, Callable] = {
    "table1": plot_table1,
    "reference_gap": plot_reference_gap,
    "action_distribution": plot_action_distribution,
    "oeg_table": plot_oeg,
}


def plot_files(out_dir: str | Path) -> list[Path]:
    return [Path(out_dir) / f"{name}.png" for name in PLOTS]


def check_plot_dir(out_dir: str | Path, inputs: dict | None = None) -> None:
    """Refuse (one line) a --plot folder this tool may not write into, before any work: a folder of the user's
    (no manifest) or a PNG there it did not write (proactivebench/safe_files.py, the one safe writer)."""
    OutputFolder.check(out_dir, "--plot", inputs).check_replaceable(plot_files(out_dir))


def write_plots(con, out_dir: str | Path, inputs: dict | None = None) -> list[Path]:
    """Write every plot whose view has rows as <out_dir>/<name>.png (atomically, listed in the folder's manifest);
    a figure of an earlier report whose view is now empty is removed, so no stale figure stays. Return the paths."""
    check_plot_dir(out_dir, inputs)
    folder = OutputFolder.claim(out_dir, "--plot", inputs)
    written = []
    try:
        for name, build in PLOTS.items():
            fig = build(con)
            if fig is None:
                log.info("plot %s: no rows, skipped", name)
                folder.remove(f"{name}.png")
                continue
            with folder.member(f"{name}.png") as temporary:
                fig.savefig(temporary, format="png")
            written.append(folder.root / f"{name}.png")
    finally:
        folder.undo_claim()
    return written
