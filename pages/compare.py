"""Compare: overlaid curves, mean ± std across seeds, config diff and a summary table, with CSV export."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.ui.charts.metrics import CHART_WIDTH_POINTS, metric_chart
from app.ui.views.compare import (
    METRICS,
    X_AXES,
    align_series,
    config_diff,
    mean_band,
    seed_groups,
    smooth,
    summary_table,
    to_csv_bytes,
)
from app.ui.views.run_table import run_label
from app.ui.views.series import FIRST_LOAD_POINTS, SeriesCache, downsample
from app.ui.widgets import COMPARE_RUNS, get_store

st.title("Compare runs")
store = get_store()
records = {r.id: r for r in store.list_runs()}
if not records:
    st.info("No runs stored yet.")
    st.stop()
labels = {run_id: run_label(run_id, r.name) for run_id, r in records.items()}

sweeps = store.list_sweeps()
sweep_names = {s.id: f"sweep #{s.id} {s.name}" for s in sweeps}
sweep = st.selectbox(
    "Whole sweep", [None, *sweep_names], format_func=lambda s: "(none)" if s is None else sweep_names[s]
)
if "compare_runs" not in st.session_state:
    st.session_state["compare_runs"] = [r for r in st.session_state.get(COMPARE_RUNS, []) if r in records]
if sweep is not None and st.session_state.get("compare_last_sweep") != sweep:
    st.session_state["compare_runs"] = [r.id for r in store.list_runs(sweep_id=sweep)]
st.session_state["compare_last_sweep"] = sweep
chosen = st.multiselect("Runs", list(records), format_func=labels.get, key="compare_runs")
st.session_state[COMPARE_RUNS] = list(chosen)
if not chosen:
    st.info("Pick runs (or a sweep) to compare.")
    st.stop()

c1, c2, c3, c4 = st.columns(4)
metric = c1.selectbox("Metric", list(METRICS), format_func=lambda m: METRICS[m][1], key="compare_metric")
x_axis = c2.selectbox("x axis", list(X_AXES), format_func=X_AXES.get, key="compare_x")
weight = c3.slider("Smoothing (EMA weight)", 0.0, 0.99, 0.0, 0.01, key="compare_smoothing")
band = c4.toggle("Mean ± std across seeds", key="compare_band", help="Runs whose configs differ only by seed")

# Long runs load as a server-side sample (loss min/max kept); totals in the summary stay exact.
cache: SeriesCache = st.session_state.setdefault("compare_series", SeriesCache(max_points=FIRST_LOAD_POINTS))
for run_id in chosen:
    cache.update(store, run_id)
steps = {r: cache.steps(r) for r in chosen}
epochs = {r: cache.epochs(r) for r in chosen}

long = smooth(align_series(steps, epochs, x_axis, metric), weight)
if long.empty:
    st.caption(f"None of these runs logged {METRICS[metric][1]} yet.")
else:
    drawn = pd.concat([downsample(g, "x", CHART_WIDTH_POINTS, ["value"]) for _, g in long.groupby("run_id")])
    groups = seed_groups({r: records[r].config for r in chosen}) if band else None
    st.altair_chart(
        metric_chart(drawn, x_axis, metric, labels=labels, band=mean_band(long, groups) if band else None),
        width="stretch",
    )
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
summary = summary_table({r: labels[r] for r in chosen}, steps, epochs, target)
st.dataframe(summary, hide_index=True, width="stretch")
st.download_button("Summary (CSV)", to_csv_bytes(summary), "summary.csv", "text/csv", key="dl_summary")

st.subheader("Config diff")
only_diff = st.toggle("Differences only", value=True, key="compare_diff_only")
diff = config_diff({labels[r]: records[r].config for r in chosen}, differences_only=only_diff)
st.dataframe(diff, width="stretch")
st.download_button(
    "Config diff (CSV)", to_csv_bytes(diff, index=True), "config_diff.csv", "text/csv", key="dl_diff"
)
