"""Live monitor: progress and ETA, live metric charts, client timeline, event log of one run.

Only a queued or running run refreshes on its own (every 2 s); a finished run is drawn once and costs
nothing afterwards. A small watcher notices runs queued or started after the page was opened and
offers them.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.formatting import format_placement
from app.ui.charts.metrics import (
    CHART_WIDTH_POINTS,
    HALF_WIDTH_POINTS,
    metric_chart,
    phase_chart,
    progress_text,
    shared_x_max,
    timeline_chart,
)
from app.ui.views.compare import AXIS_TITLES, METRICS, X_AXES, align_series, smooth, step_phases
from app.ui.views.monitor import default_run, failure_summary, no_phases_reason
from app.ui.views.placement import placement_frame
from app.ui.views.run_table import run_label, steps_per_epoch_hint
from app.ui.views.series import FIRST_LOAD_POINTS, SeriesCache, downsample
from app.ui.widgets import (
    SELECTED_RUN,
    get_store,
    link_to_run,
    md_text,
    query_int,
    run_series,
    show_chart,
    show_user_text,
)

st.title("Live monitor")
store = get_store()
records = store.list_runs(limit=200)
if not records:
    st.info("No run yet. Queue one on the New experiment page.")
    st.stop()
# No status in the label: a keyed select box keeps showing the label it had when the value was chosen.
labels = {r.id: run_label(r.id, r.name) for r in records}
ids = list(labels)

# The run to open: the URL's ?run=, a run handed over by another page (once), the run already shown,
# else the newest running run, else the newest run.
handed = st.session_state.pop(SELECTED_RUN, None)
asked = query_int("run") if handed is None else handed
if asked in ids and (handed is not None or "monitor_run" not in st.session_state):
    st.session_state["monitor_run"] = asked
if st.session_state.get("monitor_run") not in ids:
    st.session_state["monitor_run"] = default_run(records)
run_id = st.selectbox("Run", ids, format_func=labels.get, key="monitor_run")
st.query_params["run"] = str(run_id)
record = store.get_run(run_id)
active = record.status in ("queued", "running")


@st.fragment(run_every=5)
def watch_for_new_runs() -> None:
    """Reruns the page when a run was queued or started after it was drawn, or when the shown run
    changed status (so a run that finished stops refreshing). Cheap: one (id, status) query."""
    states = dict(store.run_states(limit=200))
    if set(states) != set(ids) or states.get(run_id) != record.status:
        st.rerun(scope="app")
    running = [i for i, status in states.items() if status == "running" and i != run_id]
    if running:
        st.caption("Also running: " + ", ".join(f"#{i}" for i in running) + " (pick one above)")
    # Where runs execute: a table, not progress bars (the shown run has its own bar below).
    if "running" in states.values():
        st.caption("Where runs execute (host, backend: local worker process or Ray task, slot)")
        st.dataframe(placement_frame(store.list_runs(status="running")), hide_index=True, width="stretch")


watch_for_new_runs()
head_left, head_right = st.columns([3, 1])
link_to_run(run_id, container=head_right)
failure = failure_summary(record)
if failure:
    head_left.error(f"**Failed** at step {record.current_step or 0}: {md_text(failure, limit=800)}")
    if record.traceback:
        with st.expander("Traceback"):
            show_user_text(record.traceback)

# The four curves a PSL run is watched by; the fourth slot can show any other logged metric.
LIVE_METRICS = ["loss", "test_acc", "deviation", "sim_step_time"]
c1, c2, c3 = st.columns(3)
metric = c1.selectbox(
    "Fourth chart",
    list(METRICS),
    index=list(METRICS).index("sim_step_time"),
    format_func=AXIS_TITLES.get,
    key="monitor_metric",
)
x_axis = c2.selectbox("x axis", list(X_AXES), format_func=X_AXES.get, key="monitor_x")
weight = c3.slider("Smoothing (EMA weight)", 0.0, 0.99, 0.0, 0.01, key="monitor_smoothing")
# Long runs load as a server-side sample (FIRST_LOAD_POINTS rows keeping loss spikes); refreshes add new rows.
cache: SeriesCache = st.session_state.setdefault("monitor_series", SeriesCache(max_points=FIRST_LOAD_POINTS))


def live_part() -> None:
    """Progress, the four charts and the events; reads only the rows newer than the cache holds."""
    current = store.get_run(run_id)
    held, new_rows = run_series(store, current, cache)
    status = progress_text(current, last_stored_step=held.last_step)
    st.progress(min(1.0, current.progress), text=f"{current.status} — {status}")
    if current.host:
        st.caption(
            f"Executes on {format_placement(current.host, current.backend, current.slot)}, "
            f"attempt {current.attempts}"
        )
    steps, epochs = held.steps, held.epochs
    hint = {run_id: steps_per_epoch_hint(current)}
    shown = LIVE_METRICS[:3] + [metric]
    longs = [
        smooth(align_series({run_id: steps}, {run_id: epochs}, x_axis, name, steps_per_epoch=hint), weight)
        for name in shown
    ]
    x_max = shared_x_max(*longs)  # the four charts share one x range
    for row in ((0, 1), (2, 3)):
        for column, slot in zip(st.columns(2), row):
            name, long = shown[slot], longs[slot]
            with column:
                if long.empty:
                    st.caption(f"No {METRICS[name][1]} logged yet.")
                    continue
                chart = metric_chart(
                    downsample(long, "x", HALF_WIDTH_POINTS, ["value"]),
                    x_axis,
                    name,
                    height=220,
                    x_max=x_max,
                )
                show_chart(chart, f"run{run_id}_{name}_{x_axis}", key=f"monitor_export_{slot}")
    phases = step_phases(steps, x_axis, CHART_WIDTH_POINTS)
    st.markdown("**Where the simulated step time goes** — the phases of each synchronous step")
    if phases.empty:
        st.caption(no_phases_reason(current.config))
    else:
        show_chart(phase_chart(phases, x_axis), f"run{run_id}_phases_{x_axis}", key="monitor_export_phases")
    sampled = (
        f" · older steps sampled from {held.rows_stored:,} stored (loss min/max kept)"
        if held.sampled_through is not None
        else ""
    )
    st.caption(f"{len(steps)} steps held · {new_rows} new rows read this refresh{sampled}")
    if current.cancel_requested and not current.is_finished:
        st.warning("Cancel requested — the worker stops at the next step.")
    elif current.status in ("queued", "running") and st.button("Cancel this run", key="monitor_cancel"):
        store.request_cancel(run_id)
        st.toast(f"cancel requested for #{run_id}")
    events = st.session_state.setdefault(f"monitor_events_{run_id}", [])
    events.extend(store.read_events(run_id, after_id=events[-1].id if events else None))
    # Lazy: the table is drawn only while the log is open (a closed table still cost browser time).
    log_box = st.expander(
        f"Event log ({len(events)})",
        expanded=current.status == "failed",
        key=f"monitor_events_open_{run_id}",
        on_change="rerun",
    )
    if log_box.open:
        frame = pd.DataFrame(
            [(e.created_at.strftime("%H:%M:%S"), e.level, e.message) for e in events[-200:]],
            columns=["time", "level", "message"],
        )
        log_box.dataframe(frame, hide_index=True, width="stretch")
    if current.is_finished and active:
        st.rerun(scope="app")  # it just finished: redraw once without the 2-second refresh


# A queued/running run refreshes every 2 s; a finished one is drawn once (no background work).
st.fragment(live_part, run_every=2 if active else None)()

st.subheader("Client timeline")
# Replaying the plans costs seconds (build_experiment): only when asked for, then cached per run.
if not st.toggle("Show client timeline", key="monitor_timeline"):
    st.caption("Off: turn on to replay this run's epoch plans (takes a few seconds the first time).")
    st.stop()
# Imported here, not at the top: app.ui.views.timeline pulls in the engine (torch), seconds on a cold process.
from app.ui.views.timeline import RunTimeline, default_first_step, idle_summary, timeline_of  # noqa: E402

st.caption(
    "Rebuilt from the run's config by replaying the engine's epoch plans (planning only, no training): "
    "per step, each client's busy time and its idle time until the slowest client finishes. The slowest "
    "client of each step is dark blue; clients slowed by the configured straggler model are red."
)


@st.cache_resource(max_entries=8, show_spinner="Replaying the run's epoch plans…")
def run_timeline(run_key: int, config_hash: str) -> RunTimeline:
    """One replayed timeline per run (cached: plans are deterministic)."""
    return timeline_of(store.get_run(run_key).config)


try:
    timeline = run_timeline(run_id, record.config_hash)
except (ValueError, OSError) as exc:  # e.g. dataset files missing on this host
    st.warning(f"Cannot rebuild this run's plans here: {md_text(exc)}")
    st.stop()
w1, w2 = st.columns(2)
span = w2.slider("Steps shown", 1, 30, 8, key="monitor_tl_span")
opening = default_first_step(timeline.total_steps, record.current_step, span)
first = w1.number_input("First step", 1, timeline.total_steps, opening, key="monitor_tl_first")
window = timeline.window(int(first), int(span))
show_chart(
    timeline_chart(window), f"run{run_id}_timeline_{first}", key="monitor_export_timeline", width="content"
)
st.dataframe(idle_summary(window), hide_index=True, width="stretch")
