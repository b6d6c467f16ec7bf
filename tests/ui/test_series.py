"""Incremental series cache (reads only new rows) and spike-preserving downsampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.ui.views.series import SeriesCache, SeriesError, downsample
from storage import Store


class CountingStore:
    """A real Store wrapped to record the after_step of every step read and the rows returned."""

    def __init__(self, store):
        self.store, self.calls = store, []

    def read_step_metrics(self, run_id, **kwargs):
        frame = self.store.read_step_metrics(run_id, **kwargs)
        self.calls.append((kwargs.get("after_step"), len(frame)))
        return frame

    def read_epoch_metrics(self, run_id, **kwargs):
        return self.store.read_epoch_metrics(run_id, **kwargs)


def test_update_reads_only_new_rows(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/psl.db")
    run = store.create_run(name="r", config={"a": 1}, seed=0)
    store.add_step_metrics(run, [{"step": s, "epoch": 0, "loss": 1.0 / s} for s in range(1, 101)])
    store.add_epoch_metrics(run, [{"epoch": 0, "step": 100, "test_acc": 0.5}])
    counting, cache = CountingStore(store), SeriesCache()
    assert cache.update(counting, run) == 100
    store.add_step_metrics(run, [{"step": s, "epoch": 1, "loss": 0.01} for s in range(101, 131)])
    store.add_epoch_metrics(run, [{"epoch": 1, "step": 130, "test_acc": 0.6}])
    assert cache.update(counting, run) == 30
    assert cache.update(counting, run) == 0
    assert counting.calls == [(None, 100), (100, 30), (130, 0)]
    assert cache.rows_read == 130
    assert list(cache.steps(run)["step"]) == list(range(1, 131))
    assert list(cache.epochs(run)["test_acc"]) == [0.5, 0.6]


def test_downsample_keeps_spikes_and_bounds_size():
    rng = np.random.default_rng(0)
    n = 200_000
    frame = pd.DataFrame({"step": np.arange(n), "loss": rng.normal(1.0, 0.01, n)})
    frame.loc[123_457, "loss"] = 50.0  # one spike
    frame.loc[7, "loss"] = -40.0
    small = downsample(frame, "step", 1000)
    assert len(small) <= 1000
    assert small["loss"].max() == 50.0 and small["loss"].min() == -40.0
    assert small["step"].is_monotonic_increasing
    assert small["step"].iloc[0] == 0 and small["step"].iloc[-1] == n - 1


def test_downsample_handles_nan_and_short_frames():
    frame = pd.DataFrame({"x": np.arange(10.0), "y": [np.nan] * 10})
    assert downsample(frame, "x", 100) is frame  # nothing to drop
    long = pd.DataFrame({"x": np.arange(1000.0), "y": np.where(np.arange(1000) < 500, np.nan, 1.0)})
    assert len(downsample(long, "x", 50)) <= 50
    with pytest.raises(SeriesError, match="x column"):
        downsample(frame, "nope", 100)
    with pytest.raises(SeriesError, match="max_points"):
        downsample(frame, "x", 2)


def test_first_load_is_sampled_then_refreshes_append_exact_rows(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/psl.db")
    run = store.create_run(name="r", config={"a": 1}, seed=0)
    loss = np.full(5000, 1.0)
    loss[1234] = 9.0  # a spike the sample must keep
    store.add_step_metrics(run, [{"step": s + 1, "epoch": 0, "loss": float(loss[s])} for s in range(5000)])
    cache = SeriesCache(max_points=300)
    assert cache.update(store, run) <= 301
    held = cache.steps(run)
    assert cache.is_sampled(run) and cache.rows_stored(run) == 5000
    assert held["step"].iloc[0] == 1 and held["step"].iloc[-1] == 5000 and held["loss"].max() == 9.0
    store.add_step_metrics(run, [{"step": s, "epoch": 1, "loss": 0.5} for s in range(5001, 5021)])
    assert cache.update(store, run) == 20  # the refresh reads the new rows, all of them
    assert cache.steps(run)["step"].iloc[-20:].tolist() == list(range(5001, 5021))
    assert cache.rows_stored(run) == 5020 and cache.runs[run].sampled_through == 5000
    with pytest.raises(SeriesError, match="max_points"):
        SeriesCache(max_points=3)


def test_short_runs_are_held_exactly_with_max_points(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/psl.db")
    run = store.create_run(name="r", config={"a": 1}, seed=0)
    store.add_step_metrics(run, [{"step": s, "epoch": 0, "loss": 1.0 / s} for s in range(1, 101)])
    cache = SeriesCache(max_points=300)
    assert cache.update(store, run) == 100 and not cache.is_sampled(run)
    pd.testing.assert_frame_equal(cache.steps(run), store.read_step_metrics(run, columns=cache.columns))
