"""Run page (one URL per run: ``run?run=12``): failure reason, facts, metrics, config, events,
checkpoints, and the actions on one run (monitor, compare, re-run with edits, export the bundle)."""

from __future__ import annotations

import json

import streamlit as st

from app.ui.charts.metrics import HALF_WIDTH_POINTS, metric_chart
from app.ui.views.compare import METRICS, align_series, summary_display, summary_table
from app.ui.views.form_fields import rerun_config
from app.ui.views.monitor import failure_summary
from app.ui.views.run_page import checkpoints_frame, config_table, events_frame, facts
from app.ui.views.run_table import run_label, steps_per_epoch_hint
from app.ui.views.series import FIRST_LOAD_POINTS, SeriesCache, downsample
from app.ui.widgets import (
    COMPARE_RUNS,
    PREFILL_CONFIG,
    PREFILL_SOURCE,
    get_store,
    md_text,
    open_page,
    page_link,
    query_int,
    run_series,
    show_chart,
    show_user_text,
    summary_columns,
)

store = get_store()
run_id = query_int("run")
try:
    record = store.get_run(run_id) if run_id is not None else None
except KeyError:
    record = None
if record is None:
    st.title("Run")
    recent = store.list_runs(limit=200)
    if run_id is not None:
        st.warning(f"There is no run #{run_id} (deleted, or another database).")
    if not recent:
        st.info("No runs stored yet.")
        st.stop()
    pick = st.selectbox("Open a run", [r.id for r in recent], index=None,
                        format_func={r.id: run_label(r.id, r.name, r.status) for r in recent}.get)  # fmt: skip
    if pick is not None:
        st.query_params["run"] = str(pick)
        st.rerun()
    st.stop()

st.title(f"Run #{record.id}: {md_text(record.name, limit=120)}")
failure = failure_summary(record)
if failure:
    st.error(f"**Failed** at step {record.current_step or 0}: {md_text(failure, limit=800)}")
    if record.traceback:
        with st.expander("Traceback"):
            show_user_text(record.traceback)
elif record.status in ("queued", "running"):
    st.info(f"This run is {record.status}: the Live monitor follows it as it trains.")

actions = st.columns(5)
page_link(
    "monitor",
    "Live monitor",
    query_params={"run": record.id},
    icon=":material/monitoring:",
    container=actions[0],
)
if actions[1].button("Compare with…", help="Opens Compare with this run selected"):
    open_page("compare", **{COMPARE_RUNS: [record.id]})
if actions[2].button("Re-run with edits", help="Opens the new-experiment form on a copy"):
    open_page(
        "new_experiment",
        **{PREFILL_CONFIG: rerun_config(record.config, record.id), PREFILL_SOURCE: record.id},
    )
if record.sweep_id:
    page_link("sweeps", f"Sweep #{record.sweep_id}", query_params={"sweep": record.sweep_id},
              icon=":material/grid_view:", container=actions[3])  # fmt: skip


def bundle() -> bytes:
    from app.bundles import export_bundle

    return export_bundle(store, record.id)


actions[4].download_button("Export bundle (.zip)", bundle, f"psl-run-{record.id}.zip", "application/zip",
                           on_click="ignore", help="Config, metrics and events; import it on the Runs page or "
                           "with `psl import`")  # fmt: skip

tab_metrics, tab_config, tab_events, tab_checkpoints, tab_facts = st.tabs(
    ["Metrics", "Config", "Events", "Checkpoints", "Details"]
)
with tab_metrics:
    cache: SeriesCache = st.session_state.setdefault(
        "run_page_series", SeriesCache(max_points=FIRST_LOAD_POINTS)
    )
    held, _ = run_series(store, record, cache)
    steps, epochs = {record.id: held.steps}, {record.id: held.epochs}
    summary = summary_table({record.id: record.name}, steps, epochs, target_acc=1.01)
    shown = summary_display(summary).drop(columns=["run", "run_id", "steps to target", "sim s to target",
                                                   "wall s to target"])  # fmt: skip
    st.dataframe(shown, hide_index=True, width="stretch", column_config=summary_columns())
    hint = {record.id: steps_per_epoch_hint(record)}
    columns = st.columns(2)
    for column, (name, x) in zip(columns * 2, [("loss", "step"), ("test_acc", "epoch"), ("deviation", "step"),
                                                ("sim_step_time", "step")]):  # fmt: skip
        long = align_series(steps, epochs, x, name, steps_per_epoch=hint)
        with column:
            if long.empty:
                st.caption(f"No {METRICS[name][1]} logged.")
                continue
            chart = metric_chart(downsample(long, "x", HALF_WIDTH_POINTS, ["value"]), x, name, height=220)
            show_chart(chart, f"run{record.id}_{name}", key=f"run_export_{name}")
    if held.sampled_through is not None:
        st.caption(f"Older steps drawn from a sample of the {held.rows_stored:,} stored (loss min/max kept).")
with tab_config:
    st.dataframe(config_table(record.config), hide_index=True, width="stretch", height=420)
    st.download_button("Config (JSON)", json.dumps(record.config, indent=2), f"run-{record.id}-config.json",
                       "application/json", key="run_config_json")  # fmt: skip
with tab_events:
    events = store.read_events(record.id)
    st.dataframe(events_frame(events), hide_index=True, width="stretch")
with tab_checkpoints:
    checkpoints = store.list_checkpoints(record.id)
    if checkpoints:
        st.dataframe(checkpoints_frame(checkpoints), hide_index=True, width="stretch")
    else:
        st.caption("No checkpoint was saved for this run.")
with tab_facts:
    st.dataframe(facts(record), hide_index=True, width="stretch")
    if record.notes:
        st.markdown("**Notes**")
        show_user_text(record.notes)
