"""Split planner: per device group, the cut and the share of a shared uplink that make the step
shortest; the four planning methods side by side, the energy front, and "apply to experiment"."""

from __future__ import annotations

import json

import streamlit as st

from app.ui.charts.planner import methods_chart, pareto_chart
from app.ui.form import FORM_CONFIG_KEY
from app.ui.views import planner as pv
from app.ui.views.presets import MIXED_PRESET, PRESETS, preset_config
from app.ui.widgets import PREFILL_CONFIG, open_page
from psl_core.config import ConfigError, parse_config
from psl_core.planner import PlanningError

REPORT = "planner:report"
FORM_SOURCE = "The experiment in the New-experiment form"


@st.cache_data(show_spinner="Loading the data to size the clients…", max_entries=16)
def _sizes(config_json: str):
    return pv.client_sizes(parse_config(json.loads(config_json)))


@st.cache_data(show_spinner="Planning…", max_entries=16)
def _report(config_json: str, uplink: float | None, target: float | None, per_client: bool):
    config = parse_config(json.loads(config_json))
    sizes, why = _sizes(config_json)
    report = pv.plan_config(config, uplink_mbps=uplink, sizes=sizes, target_s=target, per_client=per_client)
    if why:
        report.notes.insert(0, why)
    return report


st.title("Split planner")
st.markdown(
    "Which cut should each device group use, and how should a **shared uplink** of W Mbit/s (a wireless "
    "cell) be divided, so that the synchronous step is shortest? The planner uses the same time model as "
    "the simulator (forward + upload, server, download + backward, client-part sync) and solves it "
    "**exactly**; three simpler methods run on the same instance for comparison. Clients of one group "
    "share a cut and a per-client share, which is what an experiment config can hold."
)

presets = [MIXED_PRESET] + [name for name in PRESETS if name != MIXED_PRESET]
sources = ([FORM_SOURCE] if st.session_state.get(FORM_CONFIG_KEY) else []) + presets
with st.form("planner:inputs"):
    c1, c2, c3 = st.columns([2, 1, 1])
    source = c1.selectbox("Experiment", sources, help="The device mix, model and schedule to plan.")
    uplink = c2.number_input(
        "Shared uplink W (Mbit/s)", min_value=0.0, value=pv.DEFAULT_UPLINK_MBPS, step=10.0,
        help="0 = no shared uplink: every device keeps its own uplink and only the cuts are planned.",
    )  # fmt: skip
    target = c3.number_input(
        "Step-time target (s, optional)", min_value=0.0, value=0.0, step=0.1,
        help="If no plan reaches it, the planner says what would (e.g. which W).",
    )  # fmt: skip
    per_client = st.checkbox(
        "Plan every client on its own (a cut and share per client)",
        help="Exact per client (small experiments), but a config holds one cut and share per device group, "
        "so such a plan is shown, not applied.",
    )
    submitted = st.form_submit_button("Plan", type="primary")

config_dict = st.session_state[FORM_CONFIG_KEY] if source == FORM_SOURCE else preset_config(source)
if submitted or REPORT not in st.session_state:
    try:
        st.session_state[REPORT] = _report(
            json.dumps(config_dict, sort_keys=True), uplink or None, target or None, per_client
        )
    except (PlanningError, ConfigError) as err:
        st.session_state.pop(REPORT, None)
        st.error(str(err))
        st.stop()
report: pv.PlannerReport = st.session_state[REPORT]
inst, exact = report.instance, report.exact

best_baseline = report.methods[(report.methods["key"] != "exact") & report.methods["feasible"]][
    "vs_exact"
].min()
m1, m2, m3, m4 = st.columns(4)
m1.metric("Exact step time", f"{exact.step_time_s:.4g} s")
m2.metric("Best simple method", f"{best_baseline:.3f} × exact")
m3.metric("Clients / groups", f"{inst.num_clients} / {inst.num_classes}")
proof = "proven optimal" if exact.optimal else f"not proven: optimum ≥ {exact.lower_bound_s:.4g} s"
m4.metric("Planning time", f"{exact.seconds:.2f} s", proof, delta_color="off", delta_arrow="off")
for note in report.notes:
    st.caption(note)

st.subheader("Four methods on the same instance")
st.altair_chart(methods_chart(report.methods), width="stretch")
shown = report.methods[["method", "step_time_s", "vs_exact", "energy_j", "cuts", "plan_seconds", "note"]]
st.dataframe(
    shown.rename(columns={"step_time_s": "step time (s)", "vs_exact": "× exact", "energy_j": "energy (J)",
                          "plan_seconds": "planning (s)"}),
    hide_index=True, width="stretch",
)  # fmt: skip

st.subheader("The exact plan")
st.dataframe(
    report.groups.rename(columns={"class": "group", "samples_per_step": "samples / step", "after_block": "after block",
                                  "uplink_mbps": "uplink (Mbit/s)", "forward_upload_s": "forward+upload (s)",
                                  "download_backward_s": "download+backward (s)", "sync_s": "sync (s)",
                                  "client_memory_mib": "client memory (MiB)", "memory_mib": "device memory (MiB)"}),
    hide_index=True, width="stretch",
)  # fmt: skip
with st.expander(f"Per client ({inst.num_clients} clients)"):
    st.dataframe(pv.plan_columns(report, exact), hide_index=True, width="stretch")

st.subheader("Step time against energy")
if report.pareto is None:
    st.info("No energy front for this instance (see the note above).")
elif len(report.pareto.plans) == 1:
    st.info(f"One plan is both the fastest and the most frugal here. {report.pareto.explanation}")
else:
    st.altair_chart(pareto_chart(report.front, report.methods), width="stretch")
    st.markdown(report.pareto.explanation)
    st.caption(
        "Each point is the fastest plan whose client energy per step stays within a budget (the ε-constraint "
        "method); energy = busy power × compute time + radio power × airtime, with the catalog's power figures "
        "(sourced or marked assumed). A larger uplink share means less airtime, so the fastest shares are not "
        "the most frugal ones."
    )

st.subheader("Apply to an experiment")
if inst.per_client:
    st.info("A per-client plan cannot be applied: a config holds one cut and share per device group. "
            "Plan without “Plan every client on its own” to apply.")  # fmt: skip
    st.stop()
choices = {"exact": "The exact plan (fastest)"}
if report.pareto is not None:
    choices["chosen"] = "The chosen point of the energy front"
which = st.radio("Plan to apply", list(choices), format_func=choices.get, horizontal=True)
st.caption("Writes each group's cut and uplink share, and the shared uplink W, into the config and opens it "
           "in the New-experiment form, ready to launch.")  # fmt: skip
if st.button("Apply to experiment", type="primary"):
    try:
        planned = pv.applied_config(report, which)
    except (PlanningError, ConfigError) as err:
        st.error(str(err))
    else:
        open_page("pages/new_experiment.py", **{PREFILL_CONFIG: planned.model_dump(mode="json")})
