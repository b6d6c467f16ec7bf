"""Kept chart samples of finished runs (storage/store_samples.py): exactly what sampling anew returns,
for any column subset; used only while the run stays finished with the same rows; never a reason for
a read or a finish to fail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete, func, select, text

from storage import Store
from storage.store_samples import CHART_SAMPLE_EXTREMES, CHART_SAMPLE_POINTS
from storage.tables import StepSample

N = CHART_SAMPLE_POINTS + 2500  # long enough to be sampled at the charts' default size
DEFAULT = {"max_points": CHART_SAMPLE_POINTS, "extremes": list(CHART_SAMPLE_EXTREMES)}
SUBSETS = [["loss"], ["epoch", "loss", "sim_time", "grad_norm", "never_logged"], ["deviation", "lr"]]


def _steps(first: int, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    loss = rng.normal(1.0, 0.2, n)
    loss[n // 2] = 40.0  # a spike the sample must keep
    return [
        {"step": s, "epoch": s // 500, "loss": float(v), "deviation": 0.1, "sim_time": 0.5 * s}
        | ({"grad_norm": float(s)} if s % 3 else {})  # an extra metric, on some rows only
        for s, v in zip(range(first, first + n), loss)
    ]


def _finished_long_run(store: Store, first: int = 1) -> int:
    run = store.create_run(name="long", config={}, seed=0)
    store.add_step_metrics(run, _steps(first, N, seed=1))
    store.finish_run(run, "completed")
    return run


def _kept(store: Store, run: int) -> int:
    return store._read(lambda s: s.execute(select(func.count()).where(StepSample.run_id == run)).scalar_one())


def _forget_kept(store: Store) -> None:
    store._write(lambda s: s.execute(delete(StepSample)))


def _sampled_anew(store: Store, run: int, columns: list[str]) -> pd.DataFrame:
    """The reference: sample the stored rows again, with no kept copy around."""
    _forget_kept(store)
    return store.read_step_series(run, columns, **DEFAULT)


def test_finish_keeps_a_sample_that_equals_sampling_anew(store_url, monkeypatch):
    store = Store(store_url)
    run = _finished_long_run(store, first=7)
    assert _kept(store, run) == 1
    from_copy = {tuple(c): store.read_step_series(run, c, **DEFAULT) for c in SUBSETS}
    for columns in SUBSETS:
        expected = _sampled_anew(store, run, columns)
        got = from_copy[tuple(columns)]
        pd.testing.assert_frame_equal(got, expected)
        assert got.attrs["sampled_from"] == N
        assert 40.0 in got["loss"].tolist() if "loss" in columns else True
    # The copy is what answers: with sampling made impossible, the read still works.
    assert _kept(store, run) == 1
    monkeypatch.setattr(store, "_sample_rows", lambda *a, **k: pytest.fail("sampled again"))
    pd.testing.assert_frame_equal(store.read_step_series(run, ["loss"], **DEFAULT), from_copy[("loss",)])


def test_a_copy_is_used_only_while_the_run_stays_finished_with_the_same_rows(store_url):
    store = Store(store_url)
    run = _finished_long_run(store)
    before = store.read_step_series(run, ["loss"], **DEFAULT)
    # Re-queued and resumed from a checkpoint at step 100: the steps after it are trained again.
    store.requeue_run(run)
    store.truncate_metrics_after(run, step=100, epoch=0)
    store.add_step_metrics(run, _steps(101, N - 100, seed=2))
    live = store.read_step_series(run, ["loss"], **DEFAULT)  # running: sampled, nothing kept or used
    assert not live["loss"].equals(before["loss"])
    store.finish_run(run, "completed")
    after = store.read_step_series(run, ["loss"], **DEFAULT)
    pd.testing.assert_frame_equal(after, live)
    pd.testing.assert_frame_equal(after, _sampled_anew(store, run, ["loss"]))
    # Rows added to a finished run (not a product flow, but possible): the last step changed.
    store.add_step_metrics(run, [{"step": N + 50, "loss": 0.5}])
    assert store.read_step_series(run, ["loss"], **DEFAULT)["step"].iloc[-1] == N + 50


def test_short_runs_other_sizes_and_live_runs_keep_nothing(store_url):
    store = Store(store_url)
    short = store.create_run(name="short", config={}, seed=0)
    store.add_step_metrics(short, _steps(1, 500, seed=1))
    store.finish_run(short, "completed")
    assert _kept(store, short) == 0
    long = store.create_run(name="long", config={}, seed=0)
    store.add_step_metrics(long, _steps(1, N, seed=1))
    store.read_step_series(long, ["loss"], **DEFAULT)  # still queued: not finished
    store.read_step_series(long, ["loss"], max_points=900, extremes=["loss"])
    assert _kept(store, long) == 0
    store.finish_run(long, "failed", error="boom")  # a failed run's rows are final as well
    assert _kept(store, long) == 1
    store.delete_run(long)
    assert _kept(store, long) == 0


def test_a_run_whose_sample_cannot_be_copied_exactly_is_sampled_every_time(store_url):
    store = Store(store_url)
    run = store.create_run(name="lists", config={}, seed=0)
    rows = _steps(1, N, seed=1)
    for row in rows[::100]:
        row["per_client"] = [1.0, 2.0]  # Arrow would hand it back as an array, not this list
    store.add_step_metrics(run, rows)
    store.finish_run(run, "completed")
    assert _kept(store, run) == 0
    got = store.read_step_series(run, ["loss", "per_client"], **DEFAULT)
    assert got.attrs["sampled_from"] == N and got["per_client"].dropna().iloc[0] == [1.0, 2.0]


def test_a_damaged_copy_is_ignored(store_url):
    store = Store(store_url)
    run = _finished_long_run(store)
    expected = store.read_step_series(run, ["loss"], **DEFAULT)
    store._write(lambda s: s.execute(text("UPDATE step_samples SET frame = :b"), {"b": b"not arrow"}))
    pd.testing.assert_frame_equal(store.read_step_series(run, ["loss"], **DEFAULT), expected)


def test_a_read_only_store_reads_long_runs_without_keeping(tmp_path):
    url = f"sqlite:///{tmp_path}/psl.db"
    store = Store(url)
    run = _finished_long_run(store)
    _forget_kept(store)
    reader = Store(url, read_only=True)
    got = reader.read_step_series(run, ["loss"], **DEFAULT)
    assert got.attrs["sampled_from"] == N and _kept(store, run) == 0
