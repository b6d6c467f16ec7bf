"""Altair charts of the "Learn PSL" page (pure functions: DataFrames in, charts out, no Streamlit)."""

from __future__ import annotations

import altair as alt
import pandas as pd

METHOD_ORDER = ["FLS", "FPLS", "UGS", "LDS"]
# The phases of a synchronous step (docs/methods.md §4), in time order, then waiting and the server.
PHASE_ORDER = [
    "forward", "upload", "head", "download", "backward", "sync",
    "waiting", "server", "server forward", "server backward",
]  # fmt: skip
PHASE_COLOURS = [
    "#4c78a8", "#f58518", "#e45756", "#54a24b", "#72b7b2", "#eeca3b",
    "#d9d9d9", "#b279a2", "#b279a2", "#9d755d",
]  # fmt: skip


def composition_chart(frame: pd.DataFrame, by: str, selected_step: int) -> alt.Chart:
    """Stacked bars of the first batches (one row of bars per method), coloured by class or client.

    The step chosen on the slider is drawn opaque, the others faded. The frame holds one row per
    (method, step, group), so bars stack the rows as they are: an aggregate would drop the
    ``selected`` flag from the data and fade every bar.
    """
    data = frame.assign(selected=frame["step"] == selected_step)
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("step:O", title="step t"),
            y=alt.Y("count:Q", title="samples", stack="zero"),
            color=alt.Color(f"{by}:N", title=by, scale=alt.Scale(scheme="tableau20")),
            opacity=alt.condition("datum.selected", alt.value(1.0), alt.value(0.35)),
            row=alt.Row("method:N", sort=METHOD_ORDER, title=None),
            tooltip=["method", "step", by, "count"],
        )
        .properties(height=90, width=620)
    )


def class_share_chart(shares: pd.DataFrame) -> alt.LayerChart:
    """Label histogram of one global batch per method (bars) against the training set's p(c) (ticks)."""
    base = alt.Chart(shares).encode(x=alt.X("class:O", title="class"))
    bars = base.mark_bar(color="#4c78a8").encode(
        y=alt.Y("batch share:Q", title="share"),
        tooltip=["method", "class", alt.Tooltip("batch share:Q", format=".2f")],
    )
    ticks = base.mark_tick(color="black", thickness=2, size=16).encode(
        y="dataset share:Q", tooltip=[alt.Tooltip("dataset share:Q", format=".3f")]
    )
    return (
        alt.layer(bars, ticks, data=shares)
        .properties(width=140, height=140)
        .facet(column=alt.Column("method:N", sort=METHOD_ORDER, title=None))
    )


def deviation_chart(frame: pd.DataFrame, selected_step: int | None = None) -> alt.LayerChart:
    """Batch deviation dev_t over one epoch, one line per method; a rule marks the selected step."""
    lines = (
        alt.Chart(frame)
        .mark_line(point=False)
        .encode(
            x=alt.X("step:Q", title="step t"),
            y=alt.Y("deviation:Q", title="batch deviation Σ|p̂_t(c) − p(c)|"),
            color=alt.Color("method:N", sort=METHOD_ORDER),
            tooltip=["method", "step", alt.Tooltip("deviation:Q", format=".3f")],
        )
    )
    layers = [lines]
    if selected_step is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"step": [selected_step]})).mark_rule(strokeDash=[4, 4]).encode(x="step:Q")
        )
    return alt.layer(*layers).properties(height=260)


def cut_cost_chart(frame: pd.DataFrame, selected_cut: int) -> alt.HConcatChart:
    """Per cut: client share of the FLOPs, client memory and smashed bytes per sample (three bar charts)."""
    data = frame.assign(selected=frame["cut"] == selected_cut)
    base = alt.Chart(data).encode(
        x=alt.X("after block:N", sort=list(frame["after block"]), title="cut after block"),
        opacity=alt.condition("datum.selected", alt.value(1.0), alt.value(0.4)),
    )
    charts = [
        base.mark_bar(color=colour).encode(
            y=alt.Y(f"{column}:Q", title=column), tooltip=["after block", column]
        )
        for column, colour in (
            ("client FLOPs share (%)", "#4c78a8"),
            ("client memory (KiB)", "#54a24b"),
            ("smashed bytes / sample", "#f58518"),
        )
    ]
    return alt.hconcat(*[c.properties(width=200, height=180) for c in charts])


def leakage_chart(frame: pd.DataFrame, selected_cut: int) -> alt.Chart:
    """Best-channel |correlation| with the input image per cut (flat activations are left out)."""
    data = frame.dropna().assign(selected=lambda d: d["cut"] == selected_cut)
    column = "best-channel |correlation| with input"
    return (
        alt.Chart(data)
        .mark_bar(color="#e45756")
        .encode(
            x=alt.X(
                "after block:N",
                sort=list(frame["after block"]),
                title="cut after block",
                axis=alt.Axis(labelAngle=0),
            ),
            y=alt.Y(f"{column}:Q", scale=alt.Scale(domain=[0, 1]), title="best |corr| with input"),
            opacity=alt.condition("datum.selected", alt.value(1.0), alt.value(0.4)),
            tooltip=["after block", "activation shape", alt.Tooltip(f"{column}:Q", format=".2f")],
        )
        .properties(height=280)
    )


def timeline_chart(timeline: pd.DataFrame, title: str, max_ms: float | None = None) -> alt.Chart:
    """One synchronous step as a Gantt chart: a row per client (then the server), bars per phase (ms).

    ``max_ms`` fixes the time axis so that two schedules' steps can be compared side by side.
    """
    data = timeline.assign(start_ms=timeline["start"] * 1000, end_ms=timeline["end"] * 1000)
    order = list(dict.fromkeys(data.sort_values("client", key=lambda c: c.where(c >= 0, 10**9))["who"]))
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("who:N", sort=order, title=None),
            x=alt.X(
                "start_ms:Q",
                title="time in the step (ms)",
                scale=alt.Scale(domain=[0, max_ms]) if max_ms else alt.Undefined,
            ),
            x2="end_ms:Q",
            color=alt.Color("phase:N", scale=alt.Scale(domain=PHASE_ORDER, range=PHASE_COLOURS)),
            tooltip=[
                "who",
                "device",
                "samples",
                "phase",
                alt.Tooltip("start_ms:Q", format=".1f"),
                alt.Tooltip("end_ms:Q", format=".1f"),
            ],
        )
        # Streamlit fits the whole chart (title, axes) into this height: leave room beyond the rows.
        .properties(title=title, height=110 + 22 * len(order))
    )


def paradigm_cost_chart(costs: pd.DataFrame) -> alt.HConcatChart:
    """Three bar charts side by side: simulated time, traffic per client, energy per client."""
    base = alt.Chart(costs).encode(
        y=alt.Y("paradigm:N", sort=list(costs["paradigm"]), title=None),
        color=alt.Color("paradigm:N", legend=None, sort=list(costs["paradigm"])),
    )
    panels = [
        base.mark_bar()
        .encode(
            x=alt.X(f"{column}:Q", title=column),
            tooltip=["paradigm", alt.Tooltip(f"{column}:Q", format=".3g")],
        )
        .properties(width=210, height=200)
        for column in ("simulated time (s)", "MB per client", "J per client")
    ]
    return alt.hconcat(
        panels[0],
        panels[1].encode(y=alt.Y("paradigm:N", sort=list(costs["paradigm"]), axis=None)),
        panels[2].encode(y=alt.Y("paradigm:N", sort=list(costs["paradigm"]), axis=None)),
    )
