"""The experiment store's API on SQLite and PostgreSQL (fixture ``store_url`` in conftest.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from datetime import timezone

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from storage import Store, dispose_engine, get_engine
from storage.session import retry_transient

CONFIG = {"model": {"name": "mlp", "cut": 2}, "data": {"clients": 4, "alpha": 0.5}, "lr": 0.1}


@pytest.fixture
def store(store_url):
    return Store(store_url)


def test_create_and_get_run_round_trips_config_and_hash(store):
    run_id = store.create_run(
        name=" ugs-a ", config=CONFIG, seed=7, tags=["ugs", " ugs", "k4"], total_steps=90
    )
    run = store.get_run(run_id)
    canonical = json.dumps(CONFIG, sort_keys=True, separators=(",", ":"))
    assert run.config == CONFIG
    assert run.config_hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert (run.name, run.seed, run.tags, run.status, run.total_steps) == (
        "ugs-a",
        7,
        ["ugs", "k4"],
        "queued",
        90,
    )
    assert run.attempts == 0 and run.pinned is False and run.cancel_requested is False
    assert run.created_at.tzinfo == timezone.utc and run.started_at is None


def test_get_missing_run_raises_key_error_naming_the_id(store):
    with pytest.raises(KeyError, match="12345"):
        store.get_run(12345)


def test_bad_input_raises_value_errors_that_say_what_to_use(store):
    with pytest.raises(ValueError, match="queued"):
        store.list_runs(status="done")
    run_id = store.create_run(name="a", config={}, seed=0)
    with pytest.raises(ValueError, match="completed"):
        store.finish_run(run_id, "running")
    with pytest.raises(ValueError, match="warning"):
        store.add_event(run_id, "x", level="debug")
    with pytest.raises(ValueError, match="JSON"):
        store.create_run(name="a", config={"x": float("nan")}, seed=0)
    with pytest.raises(ValueError, match="step"):
        store.add_step_metrics(run_id, [{"loss": 1.0}])


def test_list_runs_filters_and_orders_newest_first(store):
    sweep = store.create_sweep("alpha-sweep", {"alpha": [0.1, 1.0]})
    first = store.create_run(
        name="baseline FLS", config=CONFIG, seed=1, tags=["fls", "t1"], notes="first try"
    )
    second = store.create_run(name="ugs", config=CONFIG, seed=2, tags=["t10"], sweep_id=sweep)
    third = store.create_run(name="lds", config=CONFIG, seed=3, tags=["t_1"], notes="Straggler heavy")
    store.finish_run(second, "failed", error="boom")
    assert [r.id for r in store.list_runs()] == [third, second, first]
    assert [r.id for r in store.list_runs(limit=2)] == [third, second]
    assert [r.id for r in store.list_runs(status="failed")] == [second]
    assert [r.id for r in store.list_runs(status=["queued", "failed"])] == [third, second, first]
    assert [r.id for r in store.list_runs(tag="t1")] == [first]  # exact tag: not t10, not t_1
    assert [r.id for r in store.list_runs(text="STRAGGLER")] == [third]
    assert [r.id for r in store.list_runs(text="fls")] == [first]
    assert [r.id for r in store.list_runs(sweep_id=sweep)] == [second]
    assert [(s.id, s.spec) for s in store.list_sweeps()] == [(sweep, {"alpha": [0.1, 1.0]})]


def test_update_run_changes_only_given_fields(store):
    run_id = store.create_run(name="a", config=CONFIG, seed=1, tags=["x"], notes="n")
    store.update_run(run_id, name="b", tags="p, q", pinned=True)
    run = store.get_run(run_id)
    assert (run.name, run.tags, run.notes, run.pinned) == ("b", ["p", "q"], "n", True)


def test_cancel_queued_run_is_immediate_and_running_run_is_flagged(store):
    queued = store.create_run(name="q", config=CONFIG, seed=1)
    running = store.create_run(name="r", config=CONFIG, seed=1)
    store.request_cancel(queued)
    assert store.get_run(queued).status == "cancelled" and store.get_run(queued).finished_at is not None
    assert store.claim_next_run("w").id == running
    assert store.is_cancel_requested(running) is False
    store.request_cancel(running)
    assert store.is_cancel_requested(running) is True
    assert store.get_run(running).status == "running"
    store.finish_run(running, "cancelled")
    assert store.get_run(running).status == "cancelled"


def test_finish_and_requeue(store):
    run_id = store.create_run(name="a", config=CONFIG, seed=1)
    store.claim_next_run("w1")
    store.finish_run(run_id, "failed", error="CUDA? no", traceback="Traceback ...")
    failed = store.get_run(run_id)
    assert (failed.status, failed.error, failed.traceback) == ("failed", "CUDA? no", "Traceback ...")
    store.requeue_run(run_id)
    again = store.claim_next_run("w2")
    assert (again.id, again.attempts, again.worker_id, again.error) == (run_id, 2, "w2", None)
    store.finish_run(run_id, "completed")
    done = store.get_run(run_id)
    assert done.progress == 1.0 and done.finished_at >= done.started_at


def test_step_metrics_upsert_never_duplicates_and_keeps_extras(store):
    run_id = store.create_run(name="a", config=CONFIG, seed=1)
    rows = [
        {"step": s, "epoch": s // 5, "loss": 1.0 / (s + 1), "batch_size": np.int64(64), "grad_norm": s}
        for s in range(10)
    ]
    store.add_step_metrics(run_id, rows)
    store.add_step_metrics(run_id, [{"step": s, "epoch": 1, "loss": np.float32(9.0)} for s in (5, 6, 7)])
    frame = store.read_step_metrics(run_id)
    assert store.count_step_metrics(run_id) == 10
    assert frame["step"].tolist() == list(range(10))
    assert frame.loc[frame.step == 6, "loss"].item() == 9.0
    assert frame.loc[frame.step == 6, "grad_norm"].isna().item()  # a rewrite replaces the whole row
    assert frame.loc[frame.step == 8, "grad_norm"].item() == 8
    assert frame.loc[frame.step == 8, "batch_size"].item() == 64


def test_step_metric_reads_are_incremental(store):
    run_id = store.create_run(name="a", config=CONFIG, seed=1)
    store.add_step_metrics(run_id, [{"step": s, "loss": float(s), "deviation": 0.5} for s in range(50)])
    assert store.read_step_metrics(run_id, after_step=44)["step"].tolist() == [45, 46, 47, 48, 49]
    newest = store.read_step_metrics(run_id, last=3, columns=["loss"])
    assert list(newest.columns) == ["step", "loss"] and newest["step"].tolist() == [47, 48, 49]
    assert store.read_step_metrics(run_id, after_step=49).empty
    assert store.read_step_metrics(12345).empty


def test_epoch_metrics_and_client_stats(store):
    run_id = store.create_run(name="a", config=CONFIG, seed=1)
    store.add_epoch_metrics(
        run_id,
        [{"epoch": e, "step": 10 * e, "test_acc": 0.5 + e / 10, "per_class_acc": [0.1, e]} for e in range(3)],
    )
    store.add_epoch_metrics(run_id, [{"epoch": 2, "test_acc": 0.9, "per_class_acc": np.array([0.2, 0.3])}])
    epochs = store.read_epoch_metrics(run_id)
    assert epochs["epoch"].tolist() == [0, 1, 2]
    assert epochs["per_class_acc"].tolist() == [[0.1, 0], [0.1, 1], [0.2, 0.3]]
    assert store.read_epoch_metrics(run_id, after_epoch=1)["test_acc"].tolist() == [0.9]
    stats = [
        {"epoch": e, "client": k, "samples": 10 * k, "busy_time": 1.0, "idle_time": 0.5}
        for e in (1, 0)
        for k in (1, 0)
    ]
    store.add_client_stats(run_id, stats)
    store.add_client_stats(run_id, [{"epoch": 0, "client": 1, "samples": 99}])
    frame = store.read_client_stats(run_id)
    assert list(zip(frame.epoch, frame.client)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert frame.loc[(frame.epoch == 0) & (frame.client == 1), "samples"].item() == 99


def test_truncate_metrics_after_checkpoint(store):
    run_id = store.create_run(name="a", config=CONFIG, seed=1)
    store.add_step_metrics(run_id, [{"step": s, "epoch": s // 10} for s in range(30)])
    store.add_epoch_metrics(run_id, [{"epoch": e} for e in range(3)])
    store.add_client_stats(run_id, [{"epoch": e, "client": 0} for e in range(3)])
    store.truncate_metrics_after(run_id, step=19, epoch=1)
    assert store.read_step_metrics(run_id)["step"].max() == 19 and store.count_step_metrics(run_id) == 20
    assert store.read_epoch_metrics(run_id)["epoch"].tolist() == [0, 1]
    assert store.read_client_stats(run_id)["epoch"].tolist() == [0, 1]


def test_events_and_checkpoints(store):
    run_id = store.create_run(name="a", config=CONFIG, seed=1)
    assert store.latest_checkpoint(run_id) is None
    store.add_event(run_id, "started")
    store.add_event(run_id, "slow client 3", level="warning", kind="straggler")
    events = store.read_events(run_id)
    assert [(e.message, e.level, e.kind) for e in events] == [
        ("started", "info", "info"),
        ("slow client 3", "warning", "straggler"),
    ]
    assert [e.message for e in store.read_events(run_id, after_id=events[0].id)] == ["slow client 3"]
    store.add_checkpoint(run_id, step=100, epoch=1, path="/ck/100.pt")
    store.add_checkpoint(run_id, step=200, epoch=2, path="/ck/200.pt")
    store.add_checkpoint(run_id, step=150, epoch=1, path="/ck/150.pt")
    assert store.latest_checkpoint(run_id).path == "/ck/200.pt"


def test_writes_for_missing_run_raise_key_error(store):
    with pytest.raises(KeyError, match="777"):
        store.add_step_metrics(777, [{"step": 0, "loss": 1.0}])
    with pytest.raises(KeyError, match="777"):
        store.add_event(777, "nobody")


def test_delete_run_removes_everything_it_owns(store):
    doomed = store.create_run(name="a", config=CONFIG, seed=1)
    kept = store.create_run(name="b", config=CONFIG, seed=1)
    for run_id in (doomed, kept):
        store.add_step_metrics(run_id, [{"step": 0}])
        store.add_epoch_metrics(run_id, [{"epoch": 0}])
        store.add_client_stats(run_id, [{"epoch": 0, "client": 0}])
        store.add_event(run_id, "hi")
        store.add_checkpoint(run_id, step=0, epoch=0, path="p")
    store.delete_run(doomed)
    with pytest.raises(KeyError):
        store.get_run(doomed)
    assert store.count_step_metrics(doomed) == 0 and store.read_epoch_metrics(doomed).empty
    assert store.read_client_stats(doomed).empty and store.read_events(doomed) == []
    assert store.latest_checkpoint(doomed) is None
    assert store.count_step_metrics(kept) == 1 and len(store.read_events(kept)) == 1


# ---- SQLite specifics -----------------------------------------------------------------------------


def test_sqlite_connection_settings(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Store(url)
    dispose_engine(url)
    Store(url)  # migrating an up-to-date file must hand its connection back with foreign keys on
    with get_engine(url).connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 10_000


def test_write_waits_for_a_lock_held_by_another_connection(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    store = Store(url)
    run_id = store.create_run(name="a", config=CONFIG, seed=1)
    import sqlite3

    blocker = sqlite3.connect(tmp_path / "x.db", isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    blocker.execute("UPDATE runs SET notes = 'held' WHERE id = ?", (run_id,))
    release = threading.Timer(0.3, lambda: blocker.execute("COMMIT"))
    release.start()
    store.add_step_metrics(run_id, [{"step": 0, "loss": 1.0}])  # must wait, not fail
    release.join()
    blocker.close()
    assert store.count_step_metrics(run_id) == 1 and store.get_run(run_id).notes == "held"


def test_retry_transient_retries_locks_and_reraises_other_errors():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return "ok"

    assert retry_transient(flaky) == "ok" and len(calls) == 3
    with pytest.raises(OperationalError, match="no such table"):
        retry_transient(
            lambda: (_ for _ in ()).throw(OperationalError("x", {}, Exception("no such table: x")))
        )
    started = time.monotonic()
    with pytest.raises(OperationalError, match="locked"):
        retry_transient(
            lambda: (_ for _ in ()).throw(OperationalError("x", {}, Exception("database is locked"))),
            budget_s=0.2,
        )
    assert time.monotonic() - started < 5  # bounded: gives up after its budget


def test_storage_imports_no_upper_floor():
    code = (
        "import sys, storage\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('psl_core', 'app', 'pages', 'streamlit'))\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
