"""Store.read_step_series: exact column reads and server-side sampling, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from storage import Store, StoreValueError

COLUMNS = ["epoch", "loss", "deviation", "sim_time", "grad_norm"]  # grad_norm lives in extra_json


def _fill(store: Store, n: int, *, first: int = 1) -> tuple[int, np.ndarray]:
    run = store.create_run(name="long", config={"a": 1}, seed=0)
    rng = np.random.default_rng(0)
    loss = 1.0 + rng.normal(0, 0.01, n)
    loss[n // 3 + 7] = 50.0  # a spike and a dip that a stride sample would miss
    loss[2 * n // 3 + 11] = -40.0
    steps = np.arange(first, first + n)
    store.add_step_metrics(
        run,
        [
            {"step": int(s), "epoch": int(s // 100), "loss": float(v), "deviation": 0.1, "sim_time": 0.5 * s}
            | ({"grad_norm": float(s)} if s % 2 else {})
            for s, v in zip(steps, loss)
        ],
    )
    return run, loss


def test_unsampled_read_equals_read_step_metrics(store_url):
    store = Store(store_url)
    run, _ = _fill(store, 300)
    for after in (None, 250):
        expected = store.read_step_metrics(run, after_step=after, columns=COLUMNS)
        got = store.read_step_series(run, COLUMNS, after_step=after)
        pd.testing.assert_frame_equal(got, expected)
        roomy = store.read_step_series(run, COLUMNS, after_step=after, max_points=1000, extremes=["loss"])
        pd.testing.assert_frame_equal(roomy, expected)
        assert "sampled_from" not in roomy.attrs
    # Fast path of read_step_metrics itself: same values as building the frame row by row.
    full = store.read_step_metrics(run)
    assert full["step"].tolist() == list(range(1, 301)) and full["grad_norm"].iloc[0] == 1.0
    assert np.isnan(full["grad_norm"].iloc[1])


@pytest.mark.parametrize("extremes", [[], ["loss"]])
def test_sampled_read_is_bounded_and_keeps_ends(store_url, extremes):
    store = Store(store_url)
    run, loss = _fill(store, 5000, first=3)
    full = store.read_step_metrics(run, columns=COLUMNS)
    sample = store.read_step_series(run, COLUMNS, max_points=200, extremes=extremes)
    assert list(sample.columns) == ["step", *COLUMNS]
    assert 50 <= len(sample) <= 201 and sample.attrs["sampled_from"] == 5000
    assert sample["step"].iloc[0] == 3 and sample["step"].iloc[-1] == 5002
    assert sample["step"].is_monotonic_increasing and sample["step"].is_unique
    # Every sampled row is a real stored row, column for column.
    pd.testing.assert_frame_equal(
        sample.reset_index(drop=True),
        full[full["step"].isin(sample["step"])].reset_index(drop=True),
        check_like=False,
    )
    if extremes:
        assert sample["loss"].max() == loss.max() and sample["loss"].min() == loss.min()
    else:  # a plain stride sample: evenly spaced steps
        gaps = np.diff(sample["step"].to_numpy()[:-1])
        assert len(set(gaps.tolist())) == 1


def test_sampled_incremental_and_constant_extremes(store_url):
    store = Store(store_url)
    run, _ = _fill(store, 3000)
    tail = store.read_step_series(run, ["loss"], max_points=100, after_step=2950, extremes=["loss"])
    assert tail["step"].tolist() == list(range(2951, 3001))  # 50 rows fit: exact, not sampled
    # A constant column ties in every bucket: one row per bucket, not all 3000.
    flat = store.read_step_series(run, ["deviation"], max_points=100, extremes=["deviation"])
    assert len(flat) <= 101 and set(flat["deviation"]) == {0.1}


def test_bad_arguments_say_what_to_change(store_url):
    store = Store(store_url)
    run, _ = _fill(store, 40)
    with pytest.raises(StoreValueError, match="extremes must be step table columns"):
        store.read_step_series(run, ["loss"], max_points=100, extremes=["grad_norm"])
    with pytest.raises(StoreValueError, match="max_points must be at least 4"):
        store.read_step_series(run, ["loss"], max_points=3, extremes=["loss"])
    assert store.read_step_series(12345, ["loss"], max_points=100).empty


def test_epoch_report_writes_metrics_stats_and_event_together(store_url):
    from storage import Store

    store = Store(store_url)
    run = store.create_run(name="r", config={}, seed=0)
    clients = [{"epoch": 1, "client": c, "samples": 10 + c, "steps_active": 3} for c in range(4)]
    store.add_epoch_report(
        run, {"epoch": 1, "step": 9, "test_acc": 0.5, "per_class_acc": [0.4, 0.6]}, clients, "done"
    )
    epochs = store.read_epoch_metrics(run)
    assert epochs["test_acc"].tolist() == [0.5] and epochs["per_class_acc"].tolist() == [[0.4, 0.6]]
    assert store.read_client_stats(run)["samples"].tolist() == [10, 11, 12, 13]
    assert [(e.kind, e.message) for e in store.read_events(run)] == [("epoch", "done")]
    store.add_epoch_report(run, {"epoch": 1, "step": 9, "test_acc": 0.7}, clients)  # upsert, no duplicate
    assert store.read_epoch_metrics(run)["test_acc"].tolist() == [0.7]
    assert len(store.read_client_stats(run)) == 4
