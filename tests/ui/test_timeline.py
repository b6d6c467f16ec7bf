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
    assert (window.loc[window["slowest"] & (window["count"] > 0), "straggler"]).all()
    assert (
        window.loc[window["slowdown"] > 1, "straggler"] | (window.loc[window["slowdown"] > 1, "count"] == 0)
    ).all()
    assert flagged.any()
    summary = idle_summary(window)
    assert summary["busy (s)"].sum() + summary["idle (s)"].sum() == pytest.approx(window["step_time"].sum())


def test_window_bounds(timeline):
    with pytest.raises(TimelineError, match="first_step"):
        timeline.window(timeline.total_steps + 5, 3)
    with pytest.raises(TimelineError, match="num_steps"):
        timeline.window(1, 0)
    assert timeline.window(timeline.total_steps - 1, 10)["step"].max() == timeline.total_steps
