"""Altair charts of the sweep view: a metric over two swept settings, or over one."""

from __future__ import annotations

import altair as alt
import pandas as pd


def sweep_heatmap(frame: pd.DataFrame, x_title: str, y_title: str, value_title: str,
                  x_order: list[str], y_order: list[str], *, percent: bool = False) -> alt.LayerChart:  # fmt: skip
    """Cells coloured by the metric (mean over seeds) with the value written in each cell."""
    fmt = ".1%" if percent else ".3g"
    base = alt.Chart(frame).encode(
        x=alt.X("x:N", title=x_title, sort=x_order, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("y:N", title=y_title, sort=y_order),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.Color("value:Q", title=value_title, scale=alt.Scale(scheme="viridis"),
                        legend=alt.Legend(format=fmt)),
        tooltip=[alt.Tooltip("x:N", title=x_title), alt.Tooltip("y:N", title=y_title),
                 alt.Tooltip("value:Q", title=value_title, format=fmt), "runs:Q"],
    )  # fmt: skip
    text = base.mark_text(fontSize=12).encode(
        text=alt.Text("value:Q", format=fmt),
        color=alt.condition("datum.value > (datum.__max + datum.__min) / 2", alt.value("black"), alt.value("white")),
    ).transform_joinaggregate(__max="max(value)", __min="min(value)")  # fmt: skip
    return (cells + text).properties(height=alt.Step(44), width=alt.Step(90))


def sweep_bars(frame: pd.DataFrame, x_title: str, value_title: str, order: list[str], *,
               percent: bool = False) -> alt.LayerChart:  # fmt: skip
    """One swept setting (frame x, mean, std, runs): the metric's mean over seeds, ± std error bars."""
    data = frame.assign(
        low=frame["mean"] - frame["std"].fillna(0), high=frame["mean"] + frame["std"].fillna(0)
    )
    fmt = ".1%" if percent else ".3g"
    base = alt.Chart(data).encode(x=alt.X("x:N", title=x_title, sort=order, axis=alt.Axis(labelAngle=0)))
    bars = base.mark_bar(color="#4e79a7").encode(
        y=alt.Y("mean:Q", title=value_title, axis=alt.Axis(format=fmt)),
        tooltip=[alt.Tooltip("x:N", title=x_title), alt.Tooltip("mean:Q", format=fmt),
                 alt.Tooltip("std:Q", format=".3g"), "runs:Q"],
    )  # fmt: skip
    # The same y title on both layers: Vega-Lite joins differing titles ("final test accuracy, low").
    errors = base.mark_errorbar(color="black").encode(y=alt.Y("low:Q", title=value_title), y2="high:Q")
    return (bars + errors).properties(height=260)
