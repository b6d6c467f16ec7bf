"""The New-experiment config form: every ExperimentConfig knob as a widget, grouped in sections.

Each widget's help is the pydantic field's description; problems from parse_config (and from the
catalog/model checks) are shown inside the section they concern, with what to change. Widget keys
are namespaced (``ne.<path>``) so another page can prefill the form through PREFILL_CONFIG.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from app.ui.views.form_fields import (
    FORM_PREFIX,
    NO_CUT2,
    SECTIONS,
    FieldSpec,
    config_from_state,
    custom_frame,
    cut_label,
    cut_options,
    field_help,
    field_relevant,
    field_rows,
    form_state_from_config,
    groups_frame,
    merged_with_defaults,
    widget_key,
)
from app.ui.views.form_problems import validate_form
from app.ui.views.presets import DEMO_PRESET, preset_config
from app.ui.widgets import keep_undrawn
from psl_core.config import ExperimentConfig
from psl_core.data import DATASETS, PARTITION_SCHEMES
from psl_core.devices import load_catalog
from psl_core.models import ARCHITECTURES
from psl_core.paradigms import PARADIGMS
from psl_core.sampling import SAMPLING_METHODS

_TITLES = {
    "data.dataset": {k: v.title for k, v in DATASETS.items()},
    "partition.scheme": {k: v.title for k, v in PARTITION_SCHEMES.items()},
    "model.arch": {k: v.title for k, v in ARCHITECTURES.items()},
    "sampling.method": {k: v.title + (" (project definition)" if v.project_definition else "")
                        for k, v in SAMPLING_METHODS.items()},
    "paradigm.name": {k: v.title for k, v in PARADIGMS.items()},
}  # fmt: skip
_OPEN_SECTIONS = ("Run", "Data", "Partition (non-IID)", "Model & split", "Paradigm", "Sampling")
DEVICES_SECTION = "Devices & stragglers"


def section_key(section: str, prefix: str = FORM_PREFIX) -> str:
    """The session-state key of a lazy section's expander (True while it is open)."""
    return f"{prefix}:open:{section}"


def _meta(prefix: str, name: str) -> str:
    # Non-widget keys (':' instead of '.'): Streamlit keeps them when the page is not shown.
    return f"{prefix}:{name}"


# The config dict the New-experiment form last produced (other pages plan or preview it).
FORM_CONFIG_KEY = _meta(FORM_PREFIX, "last_config")


def load_config_into_form(config: dict[str, Any], prefix: str = FORM_PREFIX) -> None:
    """Show ``config`` in the form (missing fields take defaults; an invalid config still shows)."""
    full = merged_with_defaults(config)
    st.session_state.update(form_state_from_config(full, prefix))
    st.session_state[_meta(prefix, "groups")] = groups_frame(full)
    st.session_state[_meta(prefix, "custom")] = custom_frame(full)
    for name in ("groups_edited", "custom_edited"):  # edits of the tables the form showed before
        st.session_state.pop(_meta(prefix, name), None)
    # A new editor key makes the tables start from the new rows instead of replaying old edits.
    st.session_state[_meta(prefix, "version")] = st.session_state.get(_meta(prefix, "version"), 0) + 1


def ensure_form_state(prefix: str = FORM_PREFIX) -> None:
    """Fill the form once per session (the demo preset), or again after Streamlit dropped its widgets'
    state because another page was shown (from the last config the form produced)."""
    if widget_key("name", prefix) in st.session_state and _meta(prefix, "groups") in st.session_state:
        return
    last = st.session_state.get(_meta(prefix, "last_config"))
    load_config_into_form(last or preset_config(DEMO_PRESET), prefix)


def _with_current(options: list, current: Any) -> list:
    # An invalid current value stays selectable so the validation message can name it.
    return options if current in options else [*options, current]


def _render_field(spec: FieldSpec, prefix: str) -> None:
    key = widget_key(spec.path, prefix)
    state = st.session_state
    kwargs = {"key": key, "help": field_help(spec.path) or None}
    if spec.kind == "select":
        titles = _TITLES.get(spec.path, {})
        st.selectbox(spec.label, list(spec.options), format_func=lambda v: titles.get(v, str(v)), **kwargs)
    elif spec.kind in ("int", "opt_int"):
        st.number_input(spec.label, step=1, **kwargs)
    elif spec.kind in ("float", "opt_float"):
        st.number_input(spec.label, format="%g", **kwargs)
    elif spec.kind in ("text", "opt_text", "fl_clients"):
        st.text_input(spec.label, **kwargs)
    elif spec.kind == "bool":
        st.checkbox(spec.label, **kwargs)
    elif spec.kind in ("cut", "cut2"):
        arch = state[widget_key("model.arch", prefix)]
        options: list = cut_options(arch)
        if spec.kind == "cut2":
            cut = state.get(widget_key("model.cut", prefix))
            options = [NO_CUT2] + [c for c in options if isinstance(cut, int) and c > cut]
        options = _with_current(options, state.get(key))
        st.selectbox(spec.label, options, format_func=lambda c: _safe_cut_label(arch, c), **kwargs)
    elif spec.kind == "server":
        ids = list(load_catalog()) + _custom_ids(prefix)
        st.selectbox(spec.label, _with_current(ids, state.get(key)), **kwargs)


def _safe_cut_label(arch: str, cut: Any) -> str:
    try:
        return cut_label(arch, cut)
    except (IndexError, TypeError):
        return f"{cut!r} (invalid for {arch})"


def _custom_ids(prefix: str) -> list[str]:
    df = st.session_state.get(_meta(prefix, "custom_edited"))
    if df is None:
        df = st.session_state[_meta(prefix, "custom")]
    return [str(i) for i in df["id"].dropna() if str(i).strip()]


def _render_device_tables(prefix: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    version = st.session_state[_meta(prefix, "version")]
    col = st.column_config
    st.markdown("**Client groups** — one row per device kind; fractions must sum to 1. Blank link/cut "
                "cells use the device's defaults and the model's cut.")  # fmt: skip
    custom_ids = _custom_ids(prefix)
    groups = st.data_editor(
        st.session_state[_meta(prefix, "groups")],
        key=f"{prefix}:groups_editor{version}",
        num_rows="dynamic",
        width="stretch",
        column_config={
            "device": col.SelectboxColumn("device", options=list(load_catalog()) + custom_ids, required=True,
                                          help="Device id from the catalog or a custom device below."),
            "fraction": col.NumberColumn("fraction", min_value=0.0, max_value=1.0, format="%.3f",
                                         help="Share of the clients with this device."),
            "up_mbps": col.NumberColumn("up Mbit/s", help="Uplink (blank = the device's default)."),
            "down_mbps": col.NumberColumn("down Mbit/s", help="Downlink (blank = the device's default)."),
            "latency_ms": col.NumberColumn("latency ms", help="Per-message latency (blank = default)."),
            "cut": col.TextColumn("cut", help="Per-device cut, index or block name (cost only; blank = "
                                              "the model's cut)."),
            "uplink_share": col.NumberColumn("uplink share", min_value=0.0, max_value=1.0, format="%.4g",
                                             help="Share of the shared uplink W for each client of the group "
                                                  "(blank = split what is left equally; the Split planner fills it)."),
        },
    )  # fmt: skip
    st.session_state[_meta(prefix, "groups_edited")] = groups
    with st.expander("Custom devices", expanded=bool(custom_ids)):
        custom = st.data_editor(
            st.session_state[_meta(prefix, "custom")],
            key=f"{prefix}:custom_editor{version}",
            num_rows="dynamic",
            width="stretch",
            column_config={"gflops": col.NumberColumn("GFLOP/s", help="Effective training throughput.")},
        )
    st.session_state[_meta(prefix, "custom_edited")] = custom
    return groups, custom


def _keep_undrawn_fields(specs: list[FieldSpec], prefix: str) -> None:
    """Keep the values of fields drawn in no widget this run (closed section, no effect now)."""
    keep_undrawn(widget_key(spec.path, prefix) for spec in specs)


def _closed_device_tables(prefix: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The device tables while their section is closed: as last edited. Edits are folded into the
    tables' rows under a new editor key, so the tables show them again when the section reopens (an
    editor's own edit state is dropped while it is not drawn)."""
    state = st.session_state
    folded = False
    for name in ("groups", "custom"):
        edited = state.pop(_meta(prefix, f"{name}_edited"), None)
        if edited is not None and not edited.equals(state[_meta(prefix, name)]):
            state[_meta(prefix, name)] = edited
            folded = True
    if folded:
        state[_meta(prefix, "version")] += 1
    return state[_meta(prefix, "groups")], state[_meta(prefix, "custom")]


def render_config_form(prefix: str = FORM_PREFIX) -> tuple[dict[str, Any], ExperimentConfig | None]:
    """Draw the form; return (the config dict it shows, the validated config or None if invalid).

    The sections closed by default (Training, Devices & stragglers) are lazy: their widgets are drawn
    only while they are open (about a quarter of the page's browser time), their values kept. Fields
    without effect under the current choices are not drawn either (values kept as well)."""
    ensure_form_state(prefix)
    problem_slots = {}
    groups = custom = None
    for section, specs in SECTIONS.items():
        if section in _OPEN_SECTIONS:
            expander = st.expander(section, expanded=True)
        else:
            problem_slots[section] = st.container()  # shown even while the section is closed
            expander = st.expander(section, key=section_key(section, prefix), on_change="rerun")
            if not expander.open:
                _keep_undrawn_fields(specs, prefix)
                if section == DEVICES_SECTION:
                    groups, custom = _closed_device_tables(prefix)
                continue
        # Only the fields that matter for the current choices (e.g. no shard count under a Dirichlet
        # partition); they appear when a choice makes them matter. A third fewer widgets to draw.
        shown = [spec for spec in specs if field_relevant(spec.path, st.session_state, prefix)]
        _keep_undrawn_fields([spec for spec in specs if spec not in shown], prefix)
        with expander:
            if section not in problem_slots:
                problem_slots[section] = st.container()
            for row in field_rows(shown):
                for column, spec in zip(st.columns(len(row)) if len(row) > 1 else [st.container()], row):
                    with column:
                        _render_field(spec, prefix)
            if section == DEVICES_SECTION:
                groups, custom = _render_device_tables(prefix)
    config = config_from_state(st.session_state, groups, custom, prefix)
    st.session_state[_meta(prefix, "last_config")] = config
    checked = validate_form(config)
    for section, lines in checked.errors.items():
        problem_slots[section].error("Fix before launching:\n" + "\n".join(lines))
    for section, lines in checked.warnings.items():
        problem_slots[section].warning("Worth a look (does not stop the launch):\n" + "\n".join(lines))
    return config, checked.config
