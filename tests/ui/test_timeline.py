"""The client timeline rebuilt from a config matches what the engine logs when it trains."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.ui.views.timeline import RunTimeline, TimelineError, idle_summary
from psl_core.config import ExperimentConfig
from psl_core.engine import MemorySink, run_experiment

CONFIG = ExperimentConfig(
    seed=3,
    data={"train_limit": 300, "test_limit": 50},
    partition={"num_clients": 4},
    sampling={"method": "lds", "batch_size": 32, "lds_delta": 0.5},
    training={"epochs": 2, "device": "cpu"},
    system={"stragglers": {"transient_prob": 0.3, "persistent_fraction": 0.25, "persistent_factor": 4.0}},
)


@pytest.fixture(scope="module")
def logged():
    sink = MemorySink()
    run_experiment(CONFIG, sink)
    return pd.DataFrame(sink.steps)


@pytest.fixture(scope="module")
def timeline():
    return RunTimeline(CONFIG.model_dump(mode="json"))


def test_replayed_plans_match_logged_step_times(logged, timeline):
    # Epoch 1 needs the stateful LDS sampler replayed through epoch 0 first.
    window = timeline.window(1, timeline.total_steps)
    per_step = window.groupby("step").agg(step_time=("step_time", "first"), batch=("count", "sum"))
    assert len(per_step) == len(logged)
    assert per_step["step_time"].to_numpy() == pytest.approx(logged["sim_step_time"].to_numpy(), rel=1e-9)
    assert (per_step["batch"].to_numpy() == logged["batch_size"].to_numpy()).all()
    slowest = window[window["slowest"]].set_index("step")["client"]
    assert (slowest.to_numpy() == logged["slowest_client"].to_numpy()).all()


def test_idle_is_step_time_minus_busy_and_stragglers_flagged(timeline):
    window = timeline.window(3, 5)
    assert sorted(window["step"].unique()) == [3, 4, 5, 6, 7]
    assert len(window) == 5 * 4  # every client on every step, idle ones included
    assert np.allclose(window["busy"] + window["idle"], window["step_time"])
    assert (window["idle"] >= -1e-12).all()
    flagged = window["straggler"]
    # A straggler is exactly an active client the straggler model slowed this step.
    assert (flagged == ((window["slowdown"] > 1) & (window["count"] > 0))).all()
    assert flagged.any()
    summary = idle_summary(window)
    assert summary["busy (s)"].sum() + summary["idle (s)"].sum() == pytest.approx(window["step_time"].sum())


def test_window_bounds(timeline):
    with pytest.raises(TimelineError, match="first_step"):
        timeline.window(timeline.total_steps + 5, 3)
    with pytest.raises(TimelineError, match="num_steps"):
        timeline.window(1, 0)
    assert timeline.window(timeline.total_steps - 1, 10)["step"].max() == timeline.total_steps


def test_no_configured_stragglers_means_no_straggler_bars():
    """Defect 8: the slowest client used to be painted as a straggler when none were configured."""
    from app.ui.charts.metrics import TIMELINE_KINDS, timeline_chart

    config = CONFIG.model_copy(update={"system": ExperimentConfig().system}).model_dump(mode="json")
    window = RunTimeline(config).window(1, 8)
    assert not window["straggler"].any()
    assert window.groupby("step")["slowest"].sum().eq(1).all()  # one slowest client per step, flagged
    kinds = set(timeline_chart(window).data["kind"])
    assert "busy, straggler (slowed this step)" not in kinds
    assert "busy, slowest client (sets the step time)" in kinds and set(kinds) <= set(TIMELINE_KINDS)
    assert idle_summary(window)["straggler steps"].sum() == 0


@pytest.mark.parametrize(
    ("total", "last_logged", "span", "first"),
    [(24, 24, 8, 17), (24, 3, 8, 1), (24, None, 8, 1), (5, 5, 8, 1), (100, 40, 30, 11)],
)
def test_timeline_opens_on_a_full_window(total, last_logged, span, first):
    """Defect 8: the timeline opened on the last step alone (one step of 8 shown)."""
    from app.ui.views.timeline import default_first_step

    assert default_first_step(total, last_logged, span) == first
