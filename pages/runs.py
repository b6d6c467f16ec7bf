"""Runs: every stored run with status, progress, key settings and accuracy; filter and act on them."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.runs import delete_runs
from app.settings import get_settings
from app.ui.views.run_table import accuracy_by_run, all_tags, filter_runs, run_label, runs_frame
from app.ui.widgets import COMPARE_RUNS, PREFILL_CONFIG, SELECTED_RUN, get_store, open_page, page_path
from storage import RUN_STATUSES

PAGES = Path(__file__).resolve().parent
CONFIRM_DELETE = "runs_confirm_delete"
DELETE_REFUSED = "runs_delete_refused"

st.title("Runs")
store = get_store()
records = store.list_runs()
if not records:
    st.info(
        "No runs yet. Open **New experiment**, pick the *30-second demo (digits)* preset and press "
        "**Launch**; a background worker trains it and the Live monitor shows it as it goes."
    )
    st.page_link(page_path("new_experiment"), label="New experiment", icon=":material/science:")
    st.stop()
frame = runs_frame(
    records, accuracy_by_run(store, records, st.session_state.setdefault("runs_acc_cache", {}))
)

left, middle, right = st.columns([2, 1, 2])
statuses = left.multiselect("Status", list(RUN_STATUSES), key="runs_status")
tag = middle.selectbox("Tag", ["(any)", *all_tags(frame)], key="runs_tag")
text = right.text_input("Search", key="runs_text", placeholder="name, tag, dataset, method…")
shown = filter_runs(frame, statuses=statuses, tag=None if tag == "(any)" else tag, text=text)

st.caption(f"{len(shown)} of {len(frame)} runs")
st.dataframe(
    shown,
    hide_index=True,
    width="stretch",
    column_config={
        "progress": st.column_config.ProgressColumn(
            "progress", min_value=0.0, max_value=1.0, format="percent"
        ),
        "final test acc": st.column_config.NumberColumn(format="%.3f"),
        "best test acc": st.column_config.NumberColumn(format="%.3f"),
        "created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
    },
)

labels = {int(r.id): run_label(r.id, r.name, r.status) for r in shown.itertuples()}
chosen = st.multiselect("Selected runs", list(labels), format_func=labels.get, key="runs_selected")

buttons = st.columns(5)
if buttons[0].button("Open in monitor", disabled=len(chosen) != 1, help="Select exactly one run"):
    open_page(str(PAGES / "monitor.py"), **{SELECTED_RUN: chosen[0]})
if buttons[1].button("Compare", disabled=len(chosen) < 2, help="Select two or more runs"):
    open_page(str(PAGES / "compare.py"), **{COMPARE_RUNS: list(chosen)})
if buttons[2].button("Re-run with edits", disabled=len(chosen) != 1, help="Opens the new-experiment form"):
    open_page(str(PAGES / "new_experiment.py"), **{PREFILL_CONFIG: store.get_run(chosen[0]).config})
if buttons[3].button("Cancel", disabled=not chosen, help="Ask queued/running runs to stop"):
    active = [r for r in chosen if frame.loc[frame["id"] == r, "status"].iloc[0] in ("queued", "running")]
    for run_id in active:
        store.request_cancel(run_id)
    st.toast(f"cancel requested for {len(active)} run(s)" if active else "none of them is queued or running")
if buttons[4].button("Delete…", disabled=not chosen, type="secondary"):
    st.session_state[CONFIRM_DELETE] = list(chosen)


def delete_pending() -> None:
    """Runs before the page re-renders (a button callback), so the table no longer lists them.
    Running runs are refused ("cancel it first"); their messages are shown once."""
    pending = st.session_state.get(CONFIRM_DELETE) or []
    st.session_state[DELETE_REFUSED] = delete_runs(store, get_settings(), pending)
    st.session_state[CONFIRM_DELETE] = None
    st.session_state["runs_selected"] = []


def keep_pending() -> None:
    st.session_state[CONFIRM_DELETE] = None


for message in st.session_state.pop(DELETE_REFUSED, None) or []:
    st.warning(message, icon=":material/block:")
pending = st.session_state.get(CONFIRM_DELETE)
if pending:
    st.warning(
        f"Delete {len(pending)} run(s) {', '.join(f'#{r}' for r in pending)} with all their metrics and "
        "checkpoints? This cannot be undone. Running runs are kept: cancel them first."
    )
    yes, no = st.columns(2)
    yes.button("Yes, delete", type="primary", key="runs_delete_yes", on_click=delete_pending)
    no.button("Keep them", key="runs_delete_no", on_click=keep_pending)
