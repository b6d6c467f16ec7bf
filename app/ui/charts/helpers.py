"""Altair charts and tables for the helper-scheduling page (pure functions, no Streamlit)."""

from __future__ import annotations

from collections.abc import Iterable

import altair as alt
import pandas as pd

from psl_core.helpers import HelperInstance, Schedule, SolveResult
from psl_core.helpers.solvers import SOLVERS


def schedule_frame(instance: HelperInstance, schedule: Schedule) -> pd.DataFrame:
    """One row per task piece: helper, client, phase (fwd/bwd), start and end (ms)."""
    rows = []
    for j, h in enumerate(schedule.helper):
        h = int(h)
        s = float(schedule.fwd_start[j])
        rows.append({"helper": f"helper {h}", "client": f"client {j}", "phase": "fwd", "start": s,
                     "end": s + float(instance.p_fwd[j, h])})  # fmt: skip
        for s, e in schedule.bwd_pieces[j]:
            rows.append(
                {"helper": f"helper {h}", "client": f"client {j}", "phase": "bwd", "start": s, "end": e}
            )
    return pd.DataFrame(rows, columns=["helper", "client", "phase", "start", "end"])


def gantt_chart(instance: HelperInstance, schedule: Schedule) -> alt.Chart:
    """Gantt chart: one row per helper, one bar per task piece, coloured by client, fwd/bwd by opacity."""
    df = schedule_frame(instance, schedule)
    return (
        alt.Chart(df)
        .mark_bar(stroke="black", strokeWidth=0.3)
        .encode(
            y=alt.Y("helper:N", title="helper"),
            x=alt.X("start:Q", title="time (ms)"),
            x2="end:Q",
            color=alt.Color("client:N", legend=alt.Legend(columns=2, symbolLimit=40)),
            opacity=alt.Opacity("phase:N", scale=alt.Scale(domain=["fwd", "bwd"], range=[0.55, 1.0])),
            tooltip=[
                "helper",
                "client",
                "phase",
                alt.Tooltip("start:Q", format=".1f"),
                alt.Tooltip("end:Q", format=".1f"),
            ],
        )
        .properties(title="Helper schedule (one row per helper)")
    )


def comparison_table(results: Iterable[SolveResult]) -> pd.DataFrame:
    """Solvers side by side: makespan (s), relative to the baseline (or to the worst), time, gap."""
    rows = [
        {
            "method": r.method,
            "title": SOLVERS[r.method].title if r.method in SOLVERS else r.method,
            "makespan_s": r.makespan / 1000.0,
            "solve_time_s": r.solve_time_s,
            "status": r.status,
            "gap": r.gap,
            "lower_bound_s": None if r.lower_bound is None else r.lower_bound / 1000.0,
        }
        for r in results
    ]
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    base = df.loc[df["method"] == "baseline", "makespan_s"]
    ref = float(base.iloc[0]) if len(base) else float(df["makespan_s"].max())
    df.insert(3, "vs_baseline", df["makespan_s"] / ref)
    return df.sort_values("makespan_s", kind="stable").reset_index(drop=True)
