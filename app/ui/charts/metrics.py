"""Altair charts of run metrics (lines with an optional mean ± std band), the client timeline, and
the progress / ETA text the Runs and monitor pages show."""

from __future__ import annotations

from datetime import datetime, timezone

import altair as alt
import numpy as np
import pandas as pd

from app.formatting import format_duration
from app.ui.charts.figure import PALETTE
from app.ui.views.compare import AXIS_TITLES, METRICS, PERCENT_METRICS, PHASE_LABELS, X_AXES

# Series are downsampled to about this many points per run before drawing (min and max per bucket
# kept, so spikes survive): ~400 buckets for a full-width chart of 500-700 px. 1,500 cost ~0.15 s of
# browser time per chart on every visit for no visible difference.
CHART_WIDTH_POINTS = 800
# The same for a chart in one of two columns (~340 px wide on a 1,400-px screen): ~160 buckets, a min
# and a max every two pixel columns. Vega spends ~40 us per point drawn (a line item per point): the
# monitor and the run page draw four such charts per visit, and 500 points each cost their first view
# ~0.1 s more (A/B, 8 fresh browsers each: 0.98 -> 0.82 s at 250 points).
HALF_WIDTH_POINTS = 320
POINTS_UP_TO = 60  # a series this short gets a dot per value (one point alone draws no line)
X_PADDING_PX = 6


def colour_scale(domain: list[str] | None) -> alt.Scale:
    """The page's colour scale: a fixed domain gives every group the same colour in every chart."""
    if not domain:
        return alt.Scale(range=PALETTE)
    return alt.Scale(domain=list(domain), range=[PALETTE[i % len(PALETTE)] for i in range(len(domain))])


def _x_axis(x: str, title: str, values: pd.Series, x_max: float | None = None) -> alt.X:
    """The x encoding, spanning exactly [0, x_max] (default: the largest x drawn): steps, epochs and
    times all start at 0, and charts shown together line up when given one ``x_max``. Steps and
    epochs are whole numbers: over a short range the ticks are the integers themselves (no '1.5
    epochs'; Vega's tickMinStep is not honoured everywhere)."""
    if x_max is None:
        x_max = float(values.max()) if len(values) else 1.0
    # Steps and epochs in SI units (100k, 1M: '~g' printed 1e+5, and 1e+1 for the 10th epoch);
    # times keep Vega's own number format.
    counts = x in ("step", "epoch")
    axis = alt.Axis(format="~s") if counts else alt.Axis()
    if counts and np.ceil(x_max) <= 12:
        axis = alt.Axis(format="~s", values=[int(v) for v in np.arange(0, np.ceil(x_max) + 1)])
    # A few pixels of padding: a dot on the first or last value is drawn whole, not cut by the edge.
    scale = alt.Scale(domain=[0, float(x_max)], nice=False, padding=X_PADDING_PX)
    return alt.X("x:Q", title=title, axis=axis, scale=scale)


def shared_x_max(*longs: pd.DataFrame) -> float | None:
    """The largest x over the frames (None if all are empty): one x range for charts shown together
    (the accuracy, logged once per epoch, would otherwise start its axis at the first epoch's step)."""
    highs = [float(long["x"].max()) for long in longs if len(long)]
    return max(highs) if highs else None


def _y_axis(metric: str, field: str, title: str) -> alt.Y:
    percent = metric in PERCENT_METRICS
    return alt.Y(
        field, title=title, scale=alt.Scale(zero=False), axis=alt.Axis(format=".0%" if percent else "~g")
    )


def metric_chart(
    long: pd.DataFrame,
    x: str,
    metric: str,
    *,
    labels: dict[int, str] | None = None,
    groups: dict[int, str] | None = None,
    colour_domain: list[str] | None = None,
    band: pd.DataFrame | None = None,
    height: int = 300,
    x_max: float | None = None,
) -> alt.Chart:
    """Lines of ``metric`` per run (long frame run_id, x, value), coloured by group (``groups``: run id
    -> group label; default: each run its own group, named by ``labels``). With ``band``
    (compare.mean_band) each group's mean line over a shaded ± std band instead. ``colour_domain``
    fixes the group colours across the charts of a page. ``x_max``: the x axis spans [0, x_max]
    (see ``shared_x_max``). Short series get a dot per value."""
    x_title = X_AXES.get(x, x)
    y_title = AXIS_TITLES.get(metric) or METRICS.get(metric, (None, metric))[1]
    drawn_groups = (
        band["group"].nunique() if band is not None and not band.empty else long["run_id"].nunique()
    )
    legend = (
        alt.Legend(orient="bottom", columns=2, symbolOpacity=1, symbolType="stroke", symbolStrokeWidth=3)
        if drawn_groups > 1 or labels or groups
        else None
    )
    colour = alt.Color("group:N", title=None, scale=colour_scale(colour_domain), legend=legend)
    if band is not None and not band.empty:
        base = alt.Chart(band).encode(x=_x_axis(x, x_title, band["x"], x_max), color=colour)
        area = base.mark_area(opacity=0.22).encode(y=_y_axis(metric, "lower:Q", y_title), y2="upper:Q")
        line = base.mark_line(point=bool(band.groupby("group").size().max() <= POINTS_UP_TO)).encode(
            y="mean:Q",
            tooltip=["group:N", alt.Tooltip("x:Q", title=x_title), alt.Tooltip("mean:Q", format=".4g"),
                     alt.Tooltip("std:Q", format=".3g"), "runs:Q"],
        )  # fmt: skip
        return (area + line).properties(height=height).interactive()
    data = long.copy()
    labels = labels or {}
    data["run"] = data["run_id"].map(lambda r: labels.get(r, f"#{r}"))
    data["group"] = data["run_id"].map(groups).fillna(data["run"]) if groups else data["run"]
    few = data.groupby("run_id").size().max() <= POINTS_UP_TO if len(data) else True
    return (
        alt.Chart(data)
        .mark_line(point=bool(few))
        .encode(
            x=_x_axis(x, x_title, data["x"], x_max),
            y=_y_axis(metric, "value:Q", y_title),
            color=colour,
            detail="run_id:N",
            tooltip=[
                "run:N",
                alt.Tooltip("x:Q", title=x_title),
                alt.Tooltip("value:Q", title=y_title, format=".4g"),
            ],
        )
        .properties(height=height)
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


# The timeline's bar kinds: a straggler is a client slowed this step (a configured straggler); the
# slowest client sets the step's end without being a straggler.
TIMELINE_KINDS = {
    "busy": "#4c78a8",
    "busy, slowest client (sets the step time)": "#1d3557",
    "busy, straggler (slowed this step)": "#e45756",
    "idle (waits for the slowest)": "#e0e0e0",
}


def timeline_chart(window: pd.DataFrame) -> alt.Chart:
    """Bars per client per step: busy time, then idle time up to the step's end. A straggler (slowed
    by the configured straggler model) is red; the slowest client of the step is dark blue."""
    busy = window.assign(part="busy", start=0.0, end=window["busy"])
    idle = window.assign(part="idle", start=window["busy"], end=window["step_time"])
    data = pd.concat([busy, idle], ignore_index=True)
    kinds = list(TIMELINE_KINDS)
    data["kind"] = np.where(data["part"] == "idle", kinds[3], kinds[0])
    is_busy = data["part"] == "busy"
    data.loc[is_busy & data["slowest"].astype(bool), "kind"] = kinds[1]
    data.loc[is_busy & data["straggler"].astype(bool), "kind"] = kinds[2]
    shown = [k for k in kinds if k in set(data["kind"])]  # the legend lists only what is drawn
    color = alt.Color(
        "kind:N", title=None, scale=alt.Scale(domain=shown, range=[TIMELINE_KINDS[k] for k in shown]),
        legend=alt.Legend(orient="bottom", columns=2, labelLimit=320),
    )  # fmt: skip
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("client:O", title="client"),
            x=alt.X("start:Q", title="simulated time within the step (s)"),
            x2="end:Q",
            color=color,
            row=alt.Row("step:O", title="step", spacing=2),
            tooltip=[
                "step:O",
                "client:O",
                "count:Q",
                alt.Tooltip("busy:Q", format=".3g"),
                alt.Tooltip("idle:Q", format=".3g"),
                alt.Tooltip("slowdown:Q", format=".3g"),
                "slowest:N",
            ],
        )  # fmt: skip
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


def progress_text(record, now: datetime | None = None, *, last_stored_step: int | None = None) -> str:  # noqa: ANN001 - a storage.RunRecord
    """``step 120/500 (24 %) · ETA 3m 05s`` for a run record. ``last_stored_step``: the newest step
    row held, used when the record has no current step (a run whose rows were written by something
    other than a worker, e.g. a script through the Store, said "step 0" beside 10^6 stored steps)."""
    step = record.current_step if record.current_step is not None else (last_stored_step or 0)
    total = f"/{record.total_steps}" if record.total_steps else ""
    text = f"step {step}{total} ({record.progress:.0%})"
    if record.status == "running":
        text += f" · ETA {format_duration(eta_seconds(record.progress, record.started_at, now))}"
    return text
