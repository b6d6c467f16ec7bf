"""Altair charts of the Split planner page (pure functions of the planner's frames, no Streamlit)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from app.ui.views.planner import method_phases_frame

PHASE_COLOURS = {
    "forward + upload": "#4c78a8",
    "server": "#9d755d",
    "download + backward": "#f58518",
    "client-part sync": "#b279a2",
}


def methods_chart(methods: pd.DataFrame) -> alt.Chart:
    """One stacked bar per method: its step time split into the time model's phases."""
    long = method_phases_frame(methods)
    order = list(methods[methods["feasible"]].sort_values("step_time_s")["method"])
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=alt.Y("method:N", sort=order, title=None, axis=alt.Axis(labelLimit=320)),
            x=alt.X("seconds:Q", stack="zero", title="step time (s)"),
            color=alt.Color(
                "phase:N",
                scale=alt.Scale(domain=list(PHASE_COLOURS), range=list(PHASE_COLOURS.values())),
                legend=alt.Legend(orient="bottom", title=None),
            ),
            order=alt.Order("order:Q"),
            tooltip=["method", "phase", alt.Tooltip("seconds:Q", format=".4g")],
        )
        .properties(title="Step time per method, by phase", height=alt.Step(34))
    )


def pareto_chart(front: pd.DataFrame, methods: pd.DataFrame) -> alt.LayerChart:
    """Step time against energy: the front (line and points), the chosen point ringed and labelled,
    and the four methods' plans as distinct symbols."""
    base = alt.Chart(front)
    # 14 px of padding: a plan at the edge of the range (often the slowest method) drew half a symbol.
    x = alt.X("step_time_s:Q", title="step time (s)", scale=alt.Scale(zero=False, padding=14),
              axis=alt.Axis(format=".4~g"))  # fmt: skip
    y = alt.Y("energy_j:Q", title="client energy per step (J)", scale=alt.Scale(zero=False, padding=14),
              axis=alt.Axis(format=".4~g"))  # fmt: skip
    tooltip = [
        alt.Tooltip("step_time_s:Q", title="step time (s)", format=".4g"),
        alt.Tooltip("energy_j:Q", title="energy (J)", format=".4g"),
        alt.Tooltip("cuts:N", title="cuts per group"),
    ]
    line = base.mark_line(color="#4c78a8", interpolate="step-after").encode(x=x, y=y)
    points = base.mark_circle(size=70, color="#4c78a8").encode(x=x, y=y, tooltip=tooltip)
    chosen = base.transform_filter(alt.datum.chosen)
    ring = chosen.mark_point(size=320, shape="circle", filled=False, color="#e45756", strokeWidth=2.5).encode(
        x=x, y=y, tooltip=tooltip
    )
    label = chosen.mark_text(align="left", dx=12, dy=-10, color="#e45756", fontWeight="bold").encode(
        x=x, y=y, text=alt.value("chosen")
    )
    feasible = methods[methods["feasible"]][["method", "step_time_s", "energy_j"]]
    legend = alt.Legend(orient="bottom", title=None, columns=2, labelLimit=320)
    marks = (
        alt.Chart(feasible)
        .mark_point(size=110, filled=True, opacity=0.9)
        .encode(
            x="step_time_s:Q",
            y="energy_j:Q",
            # One legend for both channels: Vega-Lite merges legends of the same field only when they match.
            shape=alt.Shape("method:N", legend=legend),
            color=alt.Color("method:N", legend=legend, scale=alt.Scale(scheme="dark2")),
            tooltip=[
                "method",
                alt.Tooltip("step_time_s:Q", title="step time (s)", format=".4g"),
                alt.Tooltip("energy_j:Q", title="energy (J)", format=".4g"),
            ],
        )
    )
    return alt.layer(line, points, marks, ring, label).properties(
        title="Step time vs client energy (ε-constraint front)", height=340
    )
