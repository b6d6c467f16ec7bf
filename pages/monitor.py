"""Live monitor: progress and ETA of running runs, live metric charts, client timeline, event log."""

from __future__ import annotations

import streamlit as st

from app.formatting import format_placement
from app.ui.charts.metrics import CHART_WIDTH_POINTS, metric_chart, phase_chart, progress_text, timeline_chart
from app.ui.views.compare import METRICS, X_AXES, align_series, smooth, step_phases
from app.ui.views.placement import placement_frame
from app.ui.views.run_table import run_label
from app.ui.views.series import FIRST_LOAD_POINTS, SeriesCache, downsample
from app.ui.widgets import SELECTED_RUN, get_store

st.title("Live monitor")
store = get_store()


@st.fragment(run_every=2)
def running_now() -> None:
    """Progress and ETA of every running run, refreshed on its own."""
    running = store.list_runs(status="running")
    if running:
        st.subheader("Running now")
    for record in running:
        st.progress(
            min(1.0, record.progress), text=f"{run_label(record.id, record.name)} — {progress_text(record)}"
        )
    if running:
        st.caption("Where runs execute (host, backend: local worker process or Ray task, slot)")
        st.dataframe(placement_frame(running), hide_index=True, width="stretch")


running_now()

records = store.list_runs(status=["running", "completed", "cancelled", "failed"], limit=200)
if not records:
    st.info("No run has started yet. Queue one on the New experiment page.")
    st.stop()
labels = {r.id: run_label(r.id, r.name) for r in records}
ids = list(labels)
preselected = st.session_state.get(SELECTED_RUN)
if "monitor_run" not in st.session_state or st.session_state["monitor_run"] not in ids:
    st.session_state["monitor_run"] = preselected if preselected in ids else ids[0]
run_id = st.selectbox("Run", ids, format_func=labels.get, key="monitor_run")
st.session_state[SELECTED_RUN] = run_id

# The four curves a PSL run is watched by; the fourth slot can show any other logged metric.
LIVE_METRICS = ["loss", "test_acc", "deviation", "sim_step_time"]
c1, c2, c3 = st.columns(3)
metric = c1.selectbox(
    "Fourth chart",
    list(METRICS),
    index=list(METRICS).index("sim_step_time"),
    format_func=lambda m: METRICS[m][1],
    key="monitor_metric",
)
x_axis = c2.selectbox("x axis", list(X_AXES), format_func=X_AXES.get, key="monitor_x")
weight = c3.slider("Smoothing (EMA weight)", 0.0, 0.99, 0.0, 0.01, key="monitor_smoothing")
# Long runs load as a server-side sample (FIRST_LOAD_POINTS rows keeping loss spikes); refreshes add new rows.
cache: SeriesCache = st.session_state.setdefault("monitor_series", SeriesCache(max_points=FIRST_LOAD_POINTS))


@st.fragment(run_every=2)
def live_part() -> None:
    """Re-runs alone every 2 s: reads only the rows newer than the cache holds, then redraws."""
    record = store.get_run(run_id)
    new_rows = cache.update(store, run_id)
    st.progress(min(1.0, record.progress), text=f"{record.status} — {progress_text(record)}")
    st.caption(
        f"Executes on {format_placement(record.host, record.backend, record.slot)}, attempt {record.attempts}"
    )
    steps, epochs = cache.steps(run_id), cache.epochs(run_id)
    shown = LIVE_METRICS[:3] + [metric]
    for row in (shown[:2], shown[2:]):
        for column, name in zip(st.columns(2), row):
            long = smooth(align_series({run_id: steps}, {run_id: epochs}, x_axis, name), weight)
            if long.empty:
                column.caption(f"No {METRICS[name][1]} logged yet.")
            else:
                column.altair_chart(
                    metric_chart(
                        downsample(long, "x", CHART_WIDTH_POINTS, ["value"]), x_axis, name
                    ).properties(height=220),
                    width="stretch",
                )
    phases = step_phases(steps, x_axis, CHART_WIDTH_POINTS)
    st.markdown("**Where the simulated step time goes** — the phases of each synchronous step")
    if phases.empty:
        st.caption(
            "No step phases logged yet (runs from before the phases were logged have none; with helpers a "
            "step is the makespan of the helpers' schedule, not a chain of phases)."
        )
    else:
        st.altair_chart(phase_chart(phases, x_axis), width="stretch")
    sampled = (
        f" · older steps sampled from {cache.rows_stored(run_id):,} stored (loss min/max kept)"
        if cache.is_sampled(run_id)
        else ""
    )
    st.caption(f"{len(steps)} steps held · {new_rows} new rows read this refresh{sampled}")
    if record.is_finished:
        st.caption("Run finished: refreshes only re-check for rows (none expected).")
    if record.cancel_requested:
        st.warning("Cancel requested — the worker stops at the next step.")
    elif record.status in ("queued", "running") and st.button("Cancel this run", key="monitor_cancel"):
        store.request_cancel(run_id)
        st.toast(f"cancel requested for #{run_id}")
    events = st.session_state.setdefault(f"monitor_events_{run_id}", [])
    events.extend(store.read_events(run_id, after_id=events[-1].id if events else None))
    with st.expander(f"Event log ({len(events)})", expanded=False):
        for event in events[-200:]:
            st.text(f"{event.created_at:%H:%M:%S} [{event.level}] {event.message}")


live_part()

st.subheader("Client timeline")
# Replaying the plans costs seconds (build_experiment): only when asked for, then cached per run.
if not st.toggle("Show client timeline", key="monitor_timeline"):
    st.caption("Off: turn on to replay this run's epoch plans (takes a few seconds the first time).")
    st.stop()
# Imported here, not at the top: app.ui.views.timeline pulls in the engine (torch), seconds on a cold process.
from app.ui.views.timeline import RunTimeline, idle_summary, timeline_of  # noqa: E402

st.caption(
    "Rebuilt from the run's config by replaying the engine's epoch plans (planning only, no training): "
    "per step, each client's busy time, its idle time until the slowest client finishes, and stragglers "
    "(slowed this step, or the slowest client) in red."
)


@st.cache_resource(max_entries=8, show_spinner="Replaying the run's epoch plans…")
def run_timeline(run_key: int, config_hash: str) -> RunTimeline:
    """One replayed timeline per run (cached: plans are deterministic)."""
    return timeline_of(store.get_run(run_key).config)


record = store.get_run(run_id)
try:
    timeline = run_timeline(run_id, record.config_hash)
except (ValueError, OSError) as exc:  # e.g. dataset files missing on this host
    st.warning(f"Cannot rebuild this run's plans here: {exc}")
    st.stop()
w1, w2 = st.columns(2)
last_logged = max(1, record.current_step or 1)
first = w1.number_input(
    "First step", 1, timeline.total_steps, min(last_logged, timeline.total_steps), key="monitor_tl_first"
)
span = w2.slider("Steps shown", 1, 30, 8, key="monitor_tl_span")
window = timeline.window(int(first), int(span))
st.altair_chart(timeline_chart(window), width="content")
st.dataframe(idle_summary(window), hide_index=True, width="stretch")
