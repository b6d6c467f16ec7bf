"""Runs: every stored run with status, progress, key settings and accuracy; filter, open and act on
them; import a run bundle."""

from __future__ import annotations

import streamlit as st

from app.runs import delete_runs
from app.settings import get_settings
from app.ui.views.form_fields import rerun_config
from app.ui.views.run_table import accuracy_from_summary, all_tags, filter_runs, run_label, runs_frame
from app.ui.widgets import (
    COMPARE_RUNS,
    PREFILL_CONFIG,
    PREFILL_SOURCE,
    SELECTED_RUN,
    get_store,
    md_text,
    open_page,
    page_link,
    run_url,
    show_user_text,
    sweep_url,
)
from storage import RUN_STATUSES

CONFIRM_DELETE = "runs_confirm_delete"
IMPORTED = "runs_imported"
DELETE_REFUSED = "runs_delete_refused"

st.title("Runs")
store = get_store()


def import_section() -> None:
    """Upload a bundle written by `psl export` or a run page's "Export bundle"."""
    from app.bundles import import_bundle  # the import checks everything before storing anything

    # Lazy: the uploader is drawn only while the section is open (a closed one still cost the browser
    # the uploader's code on every first visit of the default page).
    box = st.expander("Import a run bundle (.zip)", key="runs_import_open", on_change="rerun")
    if not box.open:
        return
    with box:
        upload = st.file_uploader("Run bundle", type=["zip"], key="runs_import_file")
        if upload is not None and st.button("Import", key="runs_import"):
            try:
                run_id = import_bundle(store, upload.getvalue())
            except Exception as err:  # noqa: BLE001 - any refusal is shown, nothing was stored
                st.error("Not imported — nothing was stored:")
                show_user_text(err)
            else:
                st.session_state[IMPORTED] = run_id
        if st.session_state.get(IMPORTED):
            imported = st.session_state[IMPORTED]
            st.success(f"Imported as run #{imported}.")
            page_link("run", f"Open run #{imported}", query_params={"run": imported})


records = store.list_runs()
if not records:
    st.info(
        "No runs yet. Open **New experiment**, pick the *30-second demo (digits)* preset and press "
        "**Launch**; a background worker trains it and the Live monitor shows it as it goes."
    )
    page_link("new_experiment", "New experiment", icon=":material/science:")
    import_section()
    st.stop()
# One aggregate query for every run's final/best accuracy (not one metric query per run).
frame = runs_frame(records, accuracy_from_summary(store.epoch_metric_summary("test_acc")))

left, middle, right = st.columns([2, 1, 2])
statuses = left.multiselect("Status", list(RUN_STATUSES), key="runs_status")
tag = middle.selectbox("Tag", ["(any)", *all_tags(frame)], key="runs_tag")
text = right.text_input("Search", key="runs_text", placeholder="name, tag, dataset, method…")
shown = filter_runs(frame, statuses=statuses, tag=None if tag == "(any)" else tag, text=text)

st.caption(f"{len(shown)} of {len(frame)} runs · click a run's number to open its page")
st.dataframe(
    shown.assign(
        page=[run_url(r) for r in shown["id"]],
        sweep=[sweep_url(s) if s == s and s is not None else None for s in shown["sweep"]],
    ),
    hide_index=True,
    width="stretch",
    column_order=["page", *[c for c in shown.columns if c != "id"]],
    column_config={
        "page": st.column_config.LinkColumn("run", display_text=r"run=(\d+)", width="small"),
        "sweep": st.column_config.LinkColumn("sweep", display_text=r"sweep=(\d+)", width="small"),
        "name": st.column_config.TextColumn("name", width="medium"),
        "status": st.column_config.TextColumn("status", width="small"),
        "progress": st.column_config.ProgressColumn(
            "progress", min_value=0.0, max_value=1.0, format="percent", width="small"
        ),
        # Short headers: with a dozen columns the long ones pushed the accuracies off screen.
        "final test acc": st.column_config.NumberColumn(
            "final acc", format="%.3f", help="test accuracy at the last evaluated epoch", width="small"
        ),
        "best test acc": st.column_config.NumberColumn("best acc", format="%.3f", width="small"),
        "created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
    },
)

labels = {int(r.id): run_label(r.id, r.name, r.status) for r in shown.itertuples()}
chosen = st.multiselect("Selected runs", list(labels), format_func=labels.get, key="runs_selected")

buttons = st.columns(6)
one = len(chosen) == 1
if buttons[0].button("Run page", disabled=not one, help="Select exactly one run"):
    open_page("run", query_params={"run": chosen[0]})
if buttons[1].button("Open in monitor", disabled=not one, help="Select exactly one run"):
    open_page("monitor", query_params={"run": chosen[0]}, **{SELECTED_RUN: chosen[0]})
if buttons[2].button("Compare", disabled=len(chosen) < 2, help="Select two or more runs"):
    open_page("compare", **{COMPARE_RUNS: list(chosen)})
if buttons[3].button("Re-run with edits", disabled=not one, help="Opens the new-experiment form on a copy"):
    record = store.get_run(chosen[0])
    open_page(
        "new_experiment",
        **{PREFILL_CONFIG: rerun_config(record.config, record.id), PREFILL_SOURCE: record.id},
    )
if buttons[4].button("Cancel", disabled=not chosen, help="Ask queued/running runs to stop"):
    active = [r for r in chosen if frame.loc[frame["id"] == r, "status"].iloc[0] in ("queued", "running")]
    for run_id in active:
        store.request_cancel(run_id)
    st.toast(f"cancel requested for {len(active)} run(s)" if active else "none of them is queued or running")
if buttons[5].button("Delete…", disabled=not chosen, type="secondary"):
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
    st.warning(md_text(message, limit=600), icon=":material/block:")  # may quote a run's name
pending = st.session_state.get(CONFIRM_DELETE)
if pending:
    st.warning(
        f"Delete {len(pending)} run(s) {', '.join(f'#{r}' for r in pending)} with all their metrics and "
        "checkpoints? This cannot be undone. Running runs are kept: cancel them first."
    )
    yes, no = st.columns(2)
    yes.button("Yes, delete", type="primary", key="runs_delete_yes", on_click=delete_pending)
    no.button("Keep them", key="runs_delete_no", on_click=keep_pending)
import_section()
