"""Helpers & scheduling: generate or edit a helper instance, run the solvers, compare their schedules."""

from __future__ import annotations

import streamlit as st

from app.ui.charts.helpers import gantt_chart
from app.ui.views import helpers as hv
from psl_core.helpers import SOLVERS, HelperInputError

INSTANCE = "helpers_instance"  # session keys: the current instance, the last solver runs, their bound
RUNS = "helpers_runs"
SKIPPED = "helpers_skipped"
BOUND = "helpers_bound"


@st.cache_data(show_spinner=False)
def _generate(scenario, model, heterogeneity, k, h, seed, bandwidth, slack, authors_factor, slotted):
    return hv.generate_instance(
        model, heterogeneity, k, h, seed, scenario=scenario, bandwidth_mbps=bandwidth, memory_slack=slack,
        authors_factor=authors_factor, slotted=slotted,
    )  # fmt: skip


st.title("Helpers & scheduling")
st.markdown(
    "U-shaped split learning with **helpers** (Tirana et al., INFOCOM 2024): part 1 and part 3 of the model "
    "run on each client, part 2 on one helper. Choose each client's helper (memory permitting) and each "
    "helper's task order to minimise the **makespan** of one batch. Times come from the measured device "
    "profiles (CIFAR-10)."
)

with st.form("scenario"):
    c1, c2, c3 = st.columns(3)
    scenario = c1.selectbox("Scenario", list(hv.SCENARIOS), format_func=hv.SCENARIOS.get)
    model = c1.selectbox("Model", list(hv.MODELS), format_func=hv.MODELS.get)
    heterogeneity = c1.radio(
        "Heterogeneity", list(hv.HETEROGENEITY), index=1, format_func=hv.HETEROGENEITY.get
    )
    k = c2.number_input("Clients K", 1, 200, 20)
    h = c2.number_input("Helpers H", 1, 50, 10)
    seed = c2.number_input("Seed", 0, 100_000, 0, help="The authors' scripts always use seed 42.")
    bandwidth = c3.slider(
        "Link bandwidth range (Mbit/s) — ours only", 1.0, 1000.0, (10.0, 100.0), help="Ours only."
    )
    slack = c3.slider(
        "Helper memory slack — ours only",
        1.0,
        3.0,
        1.5,
        0.1,
        help="Ours only: total helper memory / total client part-2 memory.",
    )
    authors_factor = c3.checkbox(
        "Authors' generator only: their KB → Mbit factor (0.0008)", True,
        help="Authors' generator only. Their factor makes every transfer about 10× too short; untick for 0.008192.",
    )  # fmt: skip
    slotted = c3.checkbox(
        "Authors' generator only: whole time slots (100)", True, help="Authors' generator only."
    )
    generated = st.form_submit_button("Generate scenario", type="primary")
if generated or INSTANCE not in st.session_state:
    try:
        st.session_state[INSTANCE] = _generate(
            scenario,
            model,
            heterogeneity,
            int(k),
            int(h),
            int(seed),
            bandwidth,
            slack,
            authors_factor,
            slotted,
        )
        st.session_state.pop(RUNS, None)
    except HelperInputError as exc:
        st.error(str(exc))
        st.stop()
instance = st.session_state[INSTANCE]
meta = instance.meta
edited_note = " (edited)" if meta.get("edited") else ""
st.caption(
    f"Instance{edited_note}: {meta.get('scenario')} scenario, {hv.MODELS.get(meta.get('model'), '?')}, "
    f"{meta.get('heterogeneity')} heterogeneity, K = {instance.num_clients}, H = {instance.num_helpers}, "
    f"seed {meta.get('seed')}."
)

with st.expander("Edit the instance"):
    st.caption(
        "Values are means over the links (release/gap/tail) or over the clients (part-2 times); an edit "
        "scales the whole row, keeping the per-link differences."
    )
    clients_table, helpers_table = hv.instance_tables(instance)
    new_clients = st.data_editor(
        clients_table, disabled=["client", "device"], hide_index=True, key="ed_clients"
    )
    new_helpers = st.data_editor(
        helpers_table, disabled=["helper", "device"], hide_index=True, key="ed_helpers"
    )
    if st.button("Apply edits"):
        try:
            st.session_state[INSTANCE] = hv.apply_edits(instance, new_clients, new_helpers)
            st.session_state.pop(RUNS, None)
            st.rerun()
        except HelperInputError as exc:
            st.error(str(exc))

v1, v2 = st.columns([3, 1])
variant = v1.radio("Problem variant", list(hv.VARIANTS), format_func=hv.VARIANTS.get, horizontal=True)
effort = v2.selectbox(
    "Search effort", list(hv.EFFORT), index=0,
    help="A fixed amount of work (LNS re-solves, CP-SAT deterministic time): the same result on any machine.",
)  # fmt: skip
availability = hv.solver_availability(instance, variant)
usable = [name for name, why in availability.items() if why is None]
methods = st.multiselect(
    "Solvers",
    usable,
    default=[m for m in ("baseline", "greedy", "decomposition", "local_search", "lns") if m in usable],
    format_func=lambda m: SOLVERS[m].title,
)
for name, why in availability.items():
    if why:
        st.caption(f"{SOLVERS[name].title} not offered: {why}.")
if st.button("Run solvers", type="primary"):
    try:
        with st.spinner("Solving…"):
            runs, skipped = hv.run_solvers(
                instance, methods, variant=variant, effort=effort, seed=int(meta.get("seed", 0))
            )
            st.session_state[RUNS], st.session_state[SKIPPED] = runs, skipped
            st.session_state[BOUND] = hv.instance_bound(instance, runs)
    except HelperInputError as exc:
        st.error(str(exc))

runs = st.session_state.get(RUNS)
if runs:
    for method, why in st.session_state.get(SKIPPED, {}).items():
        st.warning(f"{SOLVERS[method].title} did not run: {why}")
    bound = st.session_state.get(BOUND)
    table = hv.results_table(runs, bound)
    st.subheader("Comparison")
    st.caption(
        f"All results below are in the {runs[0].result.variant.replace('_', '-')} variant; the two variants "
        "are different problems and are not compared with each other. The gap is measured to a lower bound "
        "valid for both (chain bound and assignment relaxation, or the exact model's own bound)."
    )
    st.dataframe(
        table.style.format(
            {
                "makespan_s": "{:.3f}",
                "vs_baseline": "{:.3f}",
                "solve_time_s": "{:.3f}",
                "lower_bound_s": "{:.3f}",
                "gap_%": "{:.3f}",
                "shorter than baseline (%)": "{:.1f}",
            },
            na_rep="",
        ),
        hide_index=True,
    )
    st.info(hv.paper_note(table, instance))
    bad = [run.result.method for run in runs if not run.feasible]
    if bad:
        st.error(f"The independent checker rejected: {', '.join(bad)}.")
    st.subheader("Schedules (one row per helper)")
    tabs = st.tabs(
        [f"{SOLVERS[run.result.method].title} — {run.result.makespan / 1000:.3f} s" for run in runs]
    )
    for tab, run in zip(tabs, runs):
        with tab:
            st.altair_chart(gantt_chart(instance, run.result.schedule, run.result.makespan), width="stretch")
            if run.result.schedule.preemptive:
                st.caption("Some helper tasks are split into pieces (preemptive schedule).")
    d1, d2, d3 = st.columns(3)
    d1.download_button("Comparison (CSV)", hv.export_csv(table), "helpers_comparison.csv", "text/csv")
    d2.download_button(
        "Schedules (CSV)", hv.schedules_csv(instance, runs), "helpers_schedules.csv", "text/csv"
    )
    d3.download_button(
        "Instance + schedules (JSON)",
        hv.export_json(instance, runs, bound),
        "helpers_run.json",
        "application/json",
    )
else:
    st.caption(f"Choose solvers and press Run. The paper's reference: up to {hv.PAPER_IMPROVEMENT_PCT} % shorter "
               f"makespan than the baseline ({hv.PAPER_SETTING}).")  # fmt: skip
