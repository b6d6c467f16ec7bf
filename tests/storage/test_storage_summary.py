"""Store.epoch_metric_summary (one query for any number of runs) and list_checkpoints, on SQLite and
PostgreSQL, checked against a plain pandas computation over the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import event

from storage import Store, StoreValueError


def _fill(store: Store, runs: int, seed: int = 0) -> dict[int, list[dict]]:
    """Runs with random epoch rows: gaps (no test_acc at some epochs), runs with none at all."""
    rng = np.random.default_rng(seed)
    written = {}
    for i in range(runs):
        run = store.create_run(name=f"r{i}", config={"i": i}, seed=0)
        rows = []
        for epoch in range(1, int(rng.integers(0, 7)) + 1):
            row = {"epoch": epoch, "step": 10 * epoch, "train_loss": float(rng.random())}
            if rng.random() < 0.7:
                row["test_acc"] = float(rng.random())
            rows.append(row)
        if rows:
            store.add_epoch_metrics(run, rows)
        written[run] = rows
    return written


def _expected(written: dict[int, list[dict]], column: str) -> pd.DataFrame:
    out = []
    for run, rows in written.items():
        have = [r for r in rows if column in r]
        if have:
            values = [r[column] for r in have]
            out.append([run, have[-1][column], max(values), min(values), len(have), have[-1]["epoch"]])
    return pd.DataFrame(out, columns=["run_id", "final", "highest", "lowest", "epochs", "last_epoch"])


def test_summary_matches_pandas_in_one_query(store_url):
    store = Store(store_url)
    written = _fill(store, 60)
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - before_cursor_execute(conn, cursor, statement, ...)
    event.listen(store._engine, "before_cursor_execute", listener)
    try:
        got = store.epoch_metric_summary("test_acc")
    finally:
        event.remove(store._engine, "before_cursor_execute", listener)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    expected = _expected(written, "test_acc")
    assert len(expected) > 20  # the random fill produced runs with and without accuracies
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, check_dtype=False)


def test_summary_other_column_and_run_filter(store_url):
    store = Store(store_url)
    written = _fill(store, 25, seed=3)
    chosen = sorted(written)[::3]
    got = store.epoch_metric_summary("train_loss", run_ids=chosen)
    expected = _expected({r: written[r] for r in chosen}, "train_loss")
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, check_dtype=False)
    assert store.epoch_metric_summary("test_acc", run_ids=[]).empty


def test_summary_refuses_unknown_column(store_url):
    store = Store(store_url)
    with pytest.raises(StoreValueError, match="test_acc"):
        store.epoch_metric_summary("accuracy; DROP TABLE runs")


def test_list_checkpoints_in_step_order(store_url):
    store = Store(store_url)
    run = store.create_run(name="c", config={}, seed=0)
    for step in (30, 10, 20):
        store.add_checkpoint(run, step=step, epoch=step // 10, path=f"/ckpt/{step}.pt")
    assert [c.step for c in store.list_checkpoints(run)] == [10, 20, 30]
    assert store.list_checkpoints(run)[0].path == "/ckpt/10.pt"


def test_run_states_newest_first(store_url):
    store = Store(store_url)
    a = store.create_run(name="a", config={}, seed=0)
    b = store.create_run(name="b", config={}, seed=0)
    store.request_cancel(a)
    assert store.run_states() == [(b, "queued"), (a, "cancelled")]
    assert store.run_states(limit=1) == [(b, "queued")]
