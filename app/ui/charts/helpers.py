"""Altair charts and tables for the helper-scheduling page (pure functions, no Streamlit).

The Gantt chart has one row per helper and one bar per task piece. Colour says what the bar is —
the helper's part-2 forward, its part-2 backward, or the client's tail (download of the cut-1
gradients + part-1 backward, on the client after its backward task) — so colours never repeat
however many clients there are; the client is written on its bars and named in every tooltip.
Each helper row therefore ends where its last client finishes, and a rule marks the makespan.
"""

from __future__ import annotations

from collections.abc import Iterable

import altair as alt
import numpy as np
import pandas as pd

from psl_core.helpers import HelperInstance, Schedule, SolveResult
from psl_core.helpers.solvers import SOLVERS

PHASES = {"fwd": "helper: part-2 forward", "bwd": "helper: part-2 backward", "tail": "client: tail"}
PHASE_COLOURS = ("#4c78a8", "#f58518", "#b6b6b6")
#: Beyond this many clients the client ids are left to the tooltips (labels would overlap).
LABEL_MAX_CLIENTS = 40
COLUMNS = ["helper", "client", "phase", "start", "end"]


def schedule_frame(instance: HelperInstance, schedule: Schedule) -> pd.DataFrame:
    """One row per task piece (ms): helper, client, phase ('fwd' | 'bwd' | 'tail'), start and end.

    The 'tail' row runs from the end of the client's backward task to its completion, so the
    latest end of the frame is the schedule's makespan.
    """
    rows = []
    for j, h in enumerate(np.asarray(schedule.helper, dtype=int)):
        helper, client = f"helper {h}", f"client {j}"
        for phase, pieces in (("fwd", schedule.fwd_pieces[j]), ("bwd", schedule.bwd_pieces[j])):
            rows += [(helper, client, phase, float(s), float(e)) for s, e in pieces]
        end = float(schedule.bwd_pieces[j][-1][1])
        rows.append((helper, client, "tail", end, end + float(instance.tail[j, h])))
    return pd.DataFrame(rows, columns=COLUMNS)


def gantt_chart(
    instance: HelperInstance, schedule: Schedule, makespan_ms: float | None = None
) -> alt.LayerChart:
    """Gantt chart in seconds (see the module docstring) with the makespan marked."""
    df = schedule_frame(instance, schedule)
    df["start_s"], df["end_s"] = df["start"] / 1000.0, df["end"] / 1000.0
    df["duration_ms"] = df["end"] - df["start"]
    df["what"] = df["phase"].map(PHASES)
    df["label"] = df["client"].str.removeprefix("client ")
    makespan = (df["end"].max() if makespan_ms is None else makespan_ms) / 1000.0
    order = sorted(df["helper"].unique(), key=lambda s: int(s.split()[-1]))
    y = alt.Y("helper:N", sort=order, title=None)
    x = alt.X("start_s:Q", title="time (s)", scale=alt.Scale(domain=[0, makespan * 1.04]))
    tooltip = [
        "client", "helper", alt.Tooltip("what:N", title="task"),
        alt.Tooltip("start_s:Q", title="start (s)", format=".3f"), alt.Tooltip("end_s:Q", title="end (s)", format=".3f"),
        alt.Tooltip("duration_ms:Q", title="duration (ms)", format=".1f"),
    ]  # fmt: skip
    colour = alt.Color(
        "what:N",
        title=None,
        scale=alt.Scale(domain=list(PHASES.values()), range=list(PHASE_COLOURS)),
        legend=alt.Legend(orient="bottom", direction="horizontal"),
    )
    tasks = df[df["phase"] != "tail"]
    bars = (
        alt.Chart(tasks)
        .mark_bar(stroke="white", strokeWidth=0.5)
        .encode(y=y, x=x, x2="end_s:Q", color=colour, tooltip=tooltip)
    )
    tails = (
        alt.Chart(df[df["phase"] == "tail"])
        .mark_bar(height=4, yOffset=9, opacity=0.9)  # along the lower edge of the helper's row
        .encode(y=y, x=x, x2="end_s:Q", color=colour, tooltip=tooltip)
    )
    rule_df = pd.DataFrame({"makespan_s": [makespan], "text": [f"makespan {makespan:.3f} s"]})
    rule = (
        alt.Chart(rule_df)
        .mark_rule(color="#d62728", strokeDash=[4, 3], strokeWidth=1.5)
        .encode(x="makespan_s:Q")
    )
    rule_text = (
        alt.Chart(rule_df)
        .mark_text(align="right", baseline="bottom", dx=-4, dy=-2, color="#d62728", fontWeight="bold")
        .encode(x="makespan_s:Q", y=alt.value(0), text="text:N")
    )
    layers = [tails, bars, rule, rule_text]
    if instance.num_clients <= LABEL_MAX_CLIENTS:
        mid = tasks.assign(mid_s=(tasks["start_s"] + tasks["end_s"]) / 2)
        wide = mid[mid["end_s"] - mid["start_s"] > makespan / 60]  # only where the id fits
        layers.append(
            alt.Chart(wide)
            .mark_text(color="white", fontSize=9)
            .encode(y=y, x="mid_s:Q", text="label:N", tooltip=tooltip)
        )
    # One fixed-height band per helper (a step, not a total height, so that no container squeezes rows).
    return alt.layer(*layers).properties(title="Helper schedule (one row per helper)", height=alt.Step(26))


def comparison_table(results: Iterable[SolveResult], lower_bound_ms: float | None = None) -> pd.DataFrame:
    """Solvers side by side: makespan (s), relative to the baseline (or to the worst), time, and
    the gap to ``lower_bound_ms`` (a bound valid for the variant), or each solver's own bound."""
    rows = []
    for r in results:
        bound = lower_bound_ms if lower_bound_ms is not None else r.lower_bound
        if bound is not None and r.lower_bound is not None:
            bound = max(bound, r.lower_bound)
        rows.append(
            {
                "method": r.method,
                "title": SOLVERS[r.method].title if r.method in SOLVERS else r.method,
                "makespan_s": r.makespan / 1000.0,
                "gap_%": None if bound is None else 100 * max(0.0, (r.makespan - bound) / r.makespan),
                "lower_bound_s": None if bound is None else bound / 1000.0,
                "solve_time_s": r.solve_time_s,
                "status": r.status,
                "variant": r.variant,
            }
        )
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    base = df.loc[df["method"] == "baseline", "makespan_s"]
    ref = float(base.iloc[0]) if len(base) else float(df["makespan_s"].max())
    df.insert(5, "vs_baseline", df["makespan_s"] / ref)
    return df.sort_values("makespan_s", kind="stable").reset_index(drop=True)
