"""Altair charts of run metrics (lines with an optional mean ± std band), the client timeline, and
the progress / ETA text the Runs and monitor pages show."""

from __future__ import annotations

from datetime import datetime, timezone

import altair as alt
import pandas as pd

from app.formatting import format_duration
from app.ui.views.compare import METRICS, PHASE_LABELS, X_AXES

CHART_WIDTH_POINTS = 1500  # series are downsampled to about this many points per run before drawing


def metric_chart(
    long: pd.DataFrame,
    x: str,
    metric: str,
    *,
    labels: dict[int, str] | None = None,
    band: pd.DataFrame | None = None,
) -> alt.Chart:
    """Lines of ``metric`` per run (long frame run_id, x, value); with ``band`` (compare.mean_band)
    draw each seed group's mean line and a shaded ± std band instead."""
    x_title, y_title = X_AXES.get(x, x), METRICS.get(metric, (None, metric))[1]
    if band is not None and not band.empty:
        base = alt.Chart(band).encode(x=alt.X("x:Q", title=x_title), color=alt.Color("group:N", title="runs"))
        area = base.mark_area(opacity=0.25).encode(y=alt.Y("lower:Q", title=y_title), y2="upper:Q")
        line = base.mark_line().encode(y="mean:Q", tooltip=["group:N", "x:Q", "mean:Q", "std:Q", "runs:Q"])
        return (area + line).properties(height=300).interactive()
    data = long.copy()
    labels = labels or {}
    data["run"] = data["run_id"].map(lambda r: labels.get(r, f"#{r}"))
    return (
        alt.Chart(data)
        .mark_line()
        .encode(
            x=alt.X("x:Q", title=x_title),
            y=alt.Y("value:Q", title=y_title, scale=alt.Scale(zero=False)),
            color=alt.Color("run:N", title="run"),
            tooltip=["run:N", alt.Tooltip("x:Q", title=x_title), alt.Tooltip("value:Q", title=y_title)],
        )
        .properties(height=300)
        .interactive()
    )


def phase_chart(phases: pd.DataFrame, x: str) -> alt.Chart:
    """Stacked areas of a run's step phases (compare.step_phases): where the simulated step time goes."""
    domain = list(PHASE_LABELS.values())
    return (
        alt.Chart(phases)
        .mark_area()
        .encode(
            x=alt.X("x:Q", title=X_AXES.get(x, x)),
            y=alt.Y("seconds:Q", stack="zero", title="simulated step time (s)"),
            color=alt.Color("phase:N", title="phase", scale=alt.Scale(domain=domain), sort=domain),
            order=alt.Order("order:Q"),
            tooltip=[
                "phase:N",
                alt.Tooltip("x:Q", title=X_AXES.get(x, x)),
                alt.Tooltip("seconds:Q", format=".4f"),
            ],
        )
        .properties(height=220)
        .interactive()
    )


def timeline_chart(window: pd.DataFrame) -> alt.Chart:
    """Stacked bars per client per step: busy time, then idle time up to the step's end; stragglers
    (slowed, or the slowest client of the step) get a red busy bar."""
    busy = window.assign(part="busy", start=0.0, end=window["busy"])
    idle = window.assign(part="idle", start=window["busy"], end=window["step_time"])
    data = pd.concat([busy, idle], ignore_index=True)
    data["kind"] = data["part"]
    data.loc[(data["part"] == "busy") & data["straggler"], "kind"] = "busy (straggler)"
    color = alt.Color(
        "kind:N",
        title="",
        scale=alt.Scale(domain=["busy", "busy (straggler)", "idle"], range=["#4c78a8", "#e45756", "#e0e0e0"]),
    )
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("client:O", title="client"),
            x=alt.X("start:Q", title="simulated time within the step (s)"),
            x2="end:Q",
            color=color,
            row=alt.Row("step:O", title="step", spacing=2),
            tooltip=["step:O", "client:O", "count:Q", "busy:Q", "idle:Q", "slowdown:Q", "slowest:N"],
        )
        .properties(height=max(60, 9 * int(window["client"].nunique())), width=600)
    )


def idle_heatmap(window: pd.DataFrame) -> alt.Chart:
    """Compact view for many steps: idle share per (step, client), stragglers outlined."""
    data = window.assign(idle_share=(window["idle"] / window["step_time"].where(window["step_time"] > 0, 1)))
    base = alt.Chart(data).encode(x=alt.X("step:O", title="step"), y=alt.Y("client:O", title="client"))
    cells = base.mark_rect().encode(
        color=alt.Color("idle_share:Q", title="idle share", scale=alt.Scale(scheme="greys", domain=[0, 1])),
        tooltip=["step:O", "client:O", "count:Q", "busy:Q", "idle:Q", "slowdown:Q", "straggler:N"],
    )
    marks = base.transform_filter("datum.straggler").mark_point(shape="diamond", color="#e45756", filled=True)
    return (cells + marks).properties(height=max(120, 12 * int(window["client"].nunique())))


def eta_seconds(progress: float, started_at: datetime | None, now: datetime | None = None) -> float | None:
    """Remaining wall seconds assuming the rate so far holds; None before any progress."""
    if started_at is None or not progress or progress <= 0:
        return None
    now = now or datetime.now(timezone.utc)
    elapsed = (now - started_at).total_seconds()
    return max(0.0, elapsed * (1.0 - min(progress, 1.0)) / progress)


def progress_text(record, now: datetime | None = None) -> str:  # noqa: ANN001 - a storage.RunRecord
    """``step 120/500 (24 %) · ETA 3m 05s`` for a run record."""
    step = record.current_step or 0
    total = f"/{record.total_steps}" if record.total_steps else ""
    text = f"step {step}{total} ({record.progress:.0%})"
    if record.status == "running":
        text += f" · ETA {format_duration(eta_seconds(record.progress, record.started_at, now))}"
    return text
