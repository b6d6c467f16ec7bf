"""Compare: overlaid curves named by what differs, mean ± std across seeds, a paper figure, the summary
and the config diff, with CSV export."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.ui.charts.figure import figure_pdf, figure_png, figure_svg
from app.ui.charts.metrics import CHART_WIDTH_POINTS, metric_chart
from app.ui.views.compare import (
    AXIS_TITLES,
    METRICS,
    X_AXES,
    align_series,
    config_diff,
    mean_band,
    parse_run_ids,
    smooth,
    summary_display,
    summary_table,
    to_csv_bytes,
)
from app.ui.views.labels import group_labels, group_order, run_labels
from app.ui.views.run_table import run_label, steps_per_epoch_hint
from app.ui.views.series import FIRST_LOAD_POINTS, SeriesCache, downsample
from app.ui.widgets import COMPARE_RUNS, get_store, run_series, run_url, show_chart, summary_columns

st.title("Compare runs")
store = get_store()
records = {r.id: r for r in store.list_runs()}
if not records:
    st.info("No runs stored yet.")
    st.stop()
pickers = {run_id: run_label(run_id, r.name) for run_id, r in records.items()}

sweeps = store.list_sweeps()
sweep_names = {s.id: f"sweep #{s.id} {s.name}" for s in sweeps}
sweep = st.selectbox(
    "Whole sweep", [None, *sweep_names], format_func=lambda s: "(none)" if s is None else sweep_names[s]
)
if "compare_runs" not in st.session_state:
    wanted = st.session_state.get(COMPARE_RUNS) or parse_run_ids(st.query_params.get_all("runs"))
    st.session_state["compare_runs"] = [r for r in wanted if r in records]
if sweep is not None and st.session_state.get("compare_last_sweep") != sweep:
    st.session_state["compare_runs"] = [r.id for r in store.list_runs(sweep_id=sweep)]
st.session_state["compare_last_sweep"] = sweep
chosen = st.multiselect("Runs", list(records), format_func=pickers.get, key="compare_runs")
st.session_state[COMPARE_RUNS] = list(chosen)
st.query_params["runs"] = [str(r) for r in chosen]
if not chosen:
    st.info("Pick runs (or a sweep) to compare.")
    st.stop()

configs = {r: records[r].config for r in chosen}
labels = run_labels(configs, {r: records[r].name for r in chosen})
groups = group_labels(configs)
colours = group_order(groups)  # one colour per group in every chart of the page

c1, c2, c3, c4 = st.columns(4)
metric = c1.selectbox("Metric", list(METRICS), format_func=AXIS_TITLES.get, key="compare_metric")
x_axis = c2.selectbox("x axis", list(X_AXES), format_func=X_AXES.get, key="compare_x")
weight = c3.slider("Smoothing (EMA weight)", 0.0, 0.99, 0.0, 0.01, key="compare_smoothing")
band = c4.toggle("Mean ± std across seeds", key="compare_band", help="Runs whose configs differ only by seed")

# Long runs load as a server-side sample (loss min/max kept); totals in the summary stay exact.
# A finished run is read once per server process (shared with the other pages), a live one incrementally.
cache: SeriesCache = st.session_state.setdefault("compare_series", SeriesCache(max_points=FIRST_LOAD_POINTS))
held = {r: run_series(store, records[r], cache)[0] for r in chosen}
steps = {r: held[r].steps for r in chosen}
epochs = {r: held[r].epochs for r in chosen}
hints = {r: steps_per_epoch_hint(records[r]) for r in chosen}

long = smooth(align_series(steps, epochs, x_axis, metric, steps_per_epoch=hints), weight)
if long.empty:
    st.caption(f"None of these runs logged {METRICS[metric][1]} yet.")
else:
    drawn = pd.concat([downsample(g, "x", CHART_WIDTH_POINTS, ["value"]) for _, g in long.groupby("run_id")])
    chart = metric_chart(
        drawn, x_axis, metric, labels=labels, groups=groups, colour_domain=colours,
        band=mean_band(long, groups) if band else None,
    )  # fmt: skip
    show_chart(chart, f"compare_{metric}_{x_axis}")
    if st.toggle("Paper figure (mean ± std by group)", key="compare_paper"):
        paper = metric_chart(long, x_axis, metric, band=mean_band(long, groups), colour_domain=colours)
        st.image(figure_png(paper, dpi=150), caption="Preview at single-column size (3.5 × 2.4 in).")
        d1, d2, d3 = st.columns(3)
        stem = f"paper_{metric}_{x_axis}"
        d1.download_button(
            "SVG",
            lambda: figure_svg(paper),
            f"{stem}.svg",
            "image/svg+xml",
            key="paper_svg",
            on_click="ignore",
        )
        d2.download_button(
            "PNG 300 dpi",
            lambda: figure_png(paper),
            f"{stem}.png",
            "image/png",
            key="paper_png",
            on_click="ignore",
        )
        d3.download_button("PDF", lambda: figure_pdf(paper), f"{stem}.pdf", "application/pdf", key="paper_pdf", on_click="ignore")  # fmt: skip
st.download_button(
    "Series (CSV)",
    to_csv_bytes(long),
    f"series_{metric}_{x_axis}.csv",
    "text/csv",
    key="dl_series",
    help="The series as held: runs longer than a few thousand steps are a sample (loss min/max kept).",
)

st.subheader("Summary")
target = st.number_input("Target test accuracy", 0.0, 1.0, 0.9, 0.01, key="compare_target")
summary = summary_table(labels, steps, epochs, target)
shown = summary_display(summary).assign(page=[run_url(r) for r in summary["run_id"]])
st.dataframe(
    shown,
    hide_index=True,
    width="stretch",
    column_order=["page", *[c for c in shown.columns if c not in ("page", "run_id")]],
    column_config={
        "page": st.column_config.LinkColumn("#", display_text=r"run=(\d+)", width=40),
        **summary_columns(),
    },
)
st.download_button("Summary (CSV)", to_csv_bytes(summary), "summary.csv", "text/csv", key="dl_summary")

st.subheader("Config diff")
only_diff = st.toggle("Differences only", value=True, key="compare_diff_only")
diff = config_diff({labels[r]: configs[r] for r in chosen}, differences_only=only_diff)
if diff.empty:
    st.caption("These runs have the same config" + (" (names aside)." if only_diff else "."))
else:
    st.dataframe(diff, width="stretch")
st.download_button(
    "Config diff (CSV)", to_csv_bytes(diff, index=True), "config_diff.csv", "text/csv", key="dl_diff"
)
with st.expander("Names of these runs"):
    st.dataframe(
        {"#": chosen, "label": [labels[r] for r in chosen], "name": [records[r].name for r in chosen]},
        hide_index=True,
        width="stretch",
    )
