"""The monitor's step-phase view: phases stacked in time order, adding up to the step time."""

from __future__ import annotations

import pandas as pd
import pytest

from app.ui.charts.metrics import phase_chart
from app.ui.views.compare import METRICS, PHASE_LABELS, CompareError, step_phases
from psl_core.metrics import STEP_PHASE_FIELDS


def steps_frame(n: int = 6) -> pd.DataFrame:
    rows = []
    for s in range(1, n + 1):
        phases = {
            "sim_fwd_phase": 0.1 * s,
            "sim_server": 0.05,
            "sim_head_phase": 0.0,
            "sim_bwd_phase": 0.2,
            "sim_sync": 0.01,
        }
        rows.append(
            {"step": s, "epoch": 0, "sim_time": float(s), "sim_step_time": sum(phases.values()), **phases}
        )
    return pd.DataFrame(rows)


def test_phases_stack_to_the_step_time_in_order():
    frame = steps_frame()
    long = step_phases(frame, "step")
    assert list(long[long["x"] == 1]["phase"]) == list(PHASE_LABELS.values())
    totals = long.groupby("x")["seconds"].sum()
    assert totals.to_numpy() == pytest.approx(frame["sim_step_time"].to_numpy())
    assert set(STEP_PHASE_FIELDS) <= set(METRICS)  # each phase can also be charted or compared alone


def test_downsampling_keeps_whole_steps():
    long = step_phases(steps_frame(400), "sim_time", max_points=40)
    per_step = long.groupby("x")["phase"].count()
    assert len(per_step) <= 40 and (per_step == len(STEP_PHASE_FIELDS)).all()


def test_runs_without_phases_give_an_empty_frame_and_bad_axes_an_error():
    old = steps_frame().drop(columns=list(STEP_PHASE_FIELDS))
    assert step_phases(old, "step").empty and step_phases(pd.DataFrame(), "step").empty
    helpers = steps_frame().assign(**{name: 0.0 for name in STEP_PHASE_FIELDS})  # makespan, no phases
    assert step_phases(helpers, "step").empty
    with pytest.raises(CompareError, match="unknown x axis"):
        step_phases(steps_frame(), "nope")


def test_chart_stacks_the_phases():
    spec = phase_chart(step_phases(steps_frame(), "step"), "step").to_dict()
    assert spec["mark"]["type"] == "area"
    assert spec["encoding"]["y"]["stack"] == "zero"
    assert spec["encoding"]["color"]["scale"]["domain"] == list(PHASE_LABELS.values())
