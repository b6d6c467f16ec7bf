"""Sweeps (``sweeps?sweep=3``): a sweep's grid points with final/best metrics (seeds pooled), and a
metric over two swept settings as a heat map."""

from __future__ import annotations

import streamlit as st

from app.ui.charts.sweep import sweep_bars, sweep_heatmap
from app.ui.views.compare import to_csv_bytes
from app.ui.views.sweep import (
    METRIC_TITLES,
    SWEEP_METRICS,
    axis_order,
    bars_frame,
    best_point,
    groups_table,
    heatmap_frame,
    key_title,
    runs_table,
    short_key,
    swept_keys,
)
from app.ui.widgets import COMPARE_RUNS, get_store, md_text, open_page, query_int, run_url, show_chart

st.title("Sweeps")
store = get_store()
sweeps = {s.id: s for s in store.list_sweeps()}
if not sweeps:
    st.info("No sweep yet. Build one in the sweep builder of New experiment (grid × seeds), or `psl sweep`.")
    st.stop()
asked = query_int("sweep")
if "sweep_pick" not in st.session_state or (asked in sweeps and asked != st.session_state["sweep_pick"]):
    st.session_state["sweep_pick"] = asked if asked in sweeps else next(iter(sweeps))
sweep_id = st.selectbox(
    "Sweep",
    list(sweeps),
    key="sweep_pick",
    format_func=lambda s: f"#{s} {sweeps[s].name} ({sweeps[s].created_at:%Y-%m-%d %H:%M})",
)
st.query_params["sweep"] = str(sweep_id)
sweep = sweeps[sweep_id]
records = store.list_runs(sweep_id=sweep_id)
if not records:
    st.info("This sweep has no runs left (they were deleted).")
    st.stop()
keys = swept_keys(sweep.spec, records)
seeds = sweep.spec.get("seeds") or sorted({r.seed for r in records})
st.caption(
    f"{len(records)} runs · grid: " + md_text("; ".join(f"{k} ∈ {sweep.spec.get('grid', {}).get(k, '…')}" for k in keys))
    + f" · seeds {md_text(seeds)}"
)  # fmt: skip

ids = [r.id for r in records]
summaries = {metric: store.epoch_metric_summary(metric, run_ids=ids) for metric in SWEEP_METRICS}
runs = runs_table(records, keys, summaries)
if not keys:
    st.info("The runs of this sweep do not differ in any setting but the seed.")
    st.dataframe(runs, hide_index=True, width="stretch")
    st.stop()
groups = groups_table(runs, keys)

metric = st.selectbox("Metric", list(SWEEP_METRICS), format_func=METRIC_TITLES.get, key="sweep_metric")
which = st.radio("Value", ["final", "best"], horizontal=True, key="sweep_which",
                 help="final: at the last evaluated epoch; best: the best epoch of each run")  # fmt: skip
value = f"{which} {metric} mean"
title = f"{which} {METRIC_TITLES[metric]}"  # a mean over the seeds of each grid point (said below)
percent = metric == "test_acc"
best = best_point(groups, value, SWEEP_METRICS[metric])
if best is not None:
    where = " · ".join(f"{short_key(k)} = {best[k]}" for k in keys)
    shown = f"{best[value]:.1%}" if percent else f"{best[value]:.4g}"
    st.success(
        f"Best grid point: {md_text(where)} — {md_text(title)} {shown} over {int(best['runs'])} run(s)."
    )

if len(keys) >= 2:
    c1, c2 = st.columns(2)
    x_key = c1.selectbox("Columns", keys, index=0, format_func=key_title, key="sweep_x")
    y_key = c2.selectbox(
        "Rows", [k for k in keys if k != x_key], index=0, format_func=key_title, key="sweep_y"
    )
    st.caption("Each cell: the mean over the seeds of its grid point"
               + (", other swept settings averaged." if len(keys) > 2 else "."))  # fmt: skip
    frame = heatmap_frame(groups, x_key, y_key, value)
    chart = sweep_heatmap(frame, key_title(x_key), key_title(y_key), title, axis_order(frame["x"]),
                          axis_order(frame["y"]), percent=percent)  # fmt: skip
    show_chart(chart, f"sweep{sweep_id}_{which}_{metric}", width="content")
else:
    frame = bars_frame(groups, keys[0], value)
    chart = sweep_bars(frame, key_title(keys[0]), title, axis_order(frame["x"]), percent=percent)
    show_chart(chart, f"sweep{sweep_id}_{which}_{metric}")

st.subheader("Grid points")
st.dataframe(groups.rename(columns={k: short_key(k) for k in keys}), hide_index=True, width="stretch")
st.download_button("Grid points (CSV)", to_csv_bytes(groups), f"sweep{sweep_id}_groups.csv", "text/csv")
with st.expander(f"All {len(runs)} runs"):
    st.dataframe(
        runs.assign(page=[run_url(r) for r in runs["run_id"]]),
        hide_index=True,
        width="stretch",
        column_config={"page": st.column_config.LinkColumn("run page", display_text=r"run=(\d+)")},
    )
if st.button("Compare this sweep's runs", key="sweep_compare"):
    open_page("compare", **{COMPARE_RUNS: ids})
