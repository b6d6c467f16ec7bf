"""The store under faults and odd data, on SQLite and PostgreSQL: ids are never reused, running runs
are not deleted, times come from the database's clock, imports are all-or-nothing, stored junk
never breaks a reader, a replaced database file stops writers, a read-only store only reads."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text, update
from sqlmodel import Session

import storage.records
import storage.store_metrics
import storage.store_runs
from storage import (
    DatabaseFileChanged,
    RunIsActive,
    Store,
    StoreReadOnly,
    StoreValueError,
    database_now,
    dispose_engine,
    get_engine,
    init_db,
)
from storage.tables import ClientStat, EpochMetric, Event, Run, StepMetric


@pytest.fixture
def store(store_url):
    return Store(store_url)


def _count(url: str, table) -> int:
    with Session(get_engine(url)) as session:
        return session.execute(select(func.count()).select_from(table)).scalar_one()


def _new(store: Store, name: str = "r", **kwargs) -> int:
    return store.create_run(name=name, config={"name": name}, seed=kwargs.pop("seed", 0), **kwargs)


# ---------------------------------------------------------------- ids, seeds, deletion
def test_the_id_of_a_deleted_newest_run_is_never_handed_out_again(store):
    ids = [_new(store, f"r{i}") for i in range(3)]
    store.delete_run(ids[-1])
    assert _new(store, "after") == ids[-1] + 1
    sweep = store.create_sweep("s", {})
    store.delete_run(ids[0])
    assert store.create_sweep("t", {}) == sweep + 1


def test_upgrading_an_old_database_keeps_rows_and_stops_id_reuse(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    init_db(url, revision="0002")
    with get_engine(url).begin() as conn:
        for i in (1, 2, 3):
            conn.execute(
                text(
                    "INSERT INTO runs (id, name, tags, notes, config_json, config_hash, seed, status, "
                    "created_at, progress, cancel_requested, attempts, pinned) VALUES "
                    "(:id, 'old', '[]', '', '{}', 'h', 1, 'completed', '2024-01-01 00:00:00', 1.0, 0, 0, 0)"
                ),
                {"id": i},
            )
        conn.execute(text("INSERT INTO step_metrics (run_id, step, loss) VALUES (3, 1, 0.5)"))
    dispose_engine(url)
    store = Store(url)
    assert store.read_step_metrics(3)["loss"].tolist() == [0.5]
    store.delete_run(3)
    assert _new(store) == 4
    dispose_engine(url)


def test_a_64_bit_seed_is_stored_and_read_back(store):
    run_id = _new(store, seed=2**63 - 1)
    assert store.get_run(run_id).seed == 2**63 - 1
    with pytest.raises(StoreValueError, match="64 bits"):
        _new(store, seed=2**63)


@pytest.mark.parametrize("bad_id", [0, -1, 2**31, 2**40, 2**70])
def test_ids_outside_the_id_column_are_just_missing_runs(store, bad_id):
    with pytest.raises(KeyError, match="no run"):
        store.get_run(bad_id)
    with pytest.raises(KeyError):
        store.delete_run(bad_id)


def test_a_running_run_cannot_be_deleted_until_it_stops_or_its_worker_is_dead(store_url):
    store = Store(store_url)
    run_id = _new(store)
    store.claim_next_run("w1")
    store.add_checkpoint(run_id, step=3, epoch=0, path="/ckpt/3.pt")
    with pytest.raises(RunIsActive, match="cancel it first"):
        store.delete_run(run_id)
    assert store.get_run(run_id).status == "running"
    with get_engine(store_url).begin() as conn:  # its worker died an hour ago
        conn.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(heartbeat_at=datetime.now(timezone.utc) - timedelta(hours=1))
        )
    assert store.delete_run(run_id) == ["/ckpt/3.pt"]
    assert not store.run_exists(run_id)


# ---------------------------------------------------------------- the database's clock
def _skew_host_clock(monkeypatch, offset: timedelta) -> None:
    """Every host-clock source the store might use runs ``offset`` off the true time."""

    def skewed() -> datetime:
        return datetime.now(timezone.utc) + offset

    for module in (storage.records, storage.store_runs, storage.store_metrics):
        monkeypatch.setattr(module, "utc_now", skewed, raising=False)


@pytest.mark.parametrize("offset_h", [-1, 1])
def test_heartbeats_and_staleness_use_the_database_clock(store_url, monkeypatch, offset_h):
    store = Store(store_url)
    run_id = _new(store)
    _skew_host_clock(monkeypatch, timedelta(hours=offset_h))  # worker A's host clock is off
    assert store.claim_next_run("A").id == run_id
    assert store.heartbeat(run_id, "A", progress=0.1)
    monkeypatch.undo()
    _skew_host_clock(monkeypatch, timedelta(hours=-offset_h))  # worker B's is off the other way
    assert store.claim_next_run("B", stale_after_s=30) is None  # A's run is alive
    with Session(get_engine(store_url)) as session:
        now = database_now(session)
    beat = store.get_run(run_id).heartbeat_at
    assert abs((now - beat).total_seconds()) < 60
    # Claiming one given run (a Ray task) and listing claimable runs judge A's beat the same way.
    assert store.claim_run(run_id, "B", stale_after_s=30) is None
    assert store.claimable_run_ids(stale_after_s=30) == []
    assert store.get_run(run_id).worker_id == "A"


@pytest.mark.parametrize("offset_h", [-1, 1])
def test_a_dead_workers_run_is_taken_over_whatever_the_claimers_clock(store_url, monkeypatch, offset_h):
    store = Store(store_url)
    run_id = _new(store)
    assert store.claim_next_run("A").id == run_id
    with Session(get_engine(store_url)) as session:
        dead_since = database_now(session) - timedelta(seconds=120)  # by the database's clock
    with get_engine(store_url).begin() as conn:
        conn.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=dead_since))
    _skew_host_clock(monkeypatch, timedelta(hours=offset_h))  # the claimer's host clock is off
    assert store.claimable_run_ids(stale_after_s=30) == [run_id]
    record = store.claim_run(run_id, "B", stale_after_s=30, host="b", backend="ray", slot="task 1")
    assert (record.worker_id, record.attempts, record.backend) == ("B", 2, "ray")


# ---------------------------------------------------------------- checkpoints
def test_prune_keeps_the_newest_checkpoints_and_returns_the_others(store):
    run_id = _new(store)
    for step in (10, 20, 30, 40, 50):
        store.add_checkpoint(run_id, step=step, epoch=0, path=f"/c/{step}.pt")
    assert sorted(store.prune_checkpoints(run_id, keep=2)) == ["/c/10.pt", "/c/20.pt", "/c/30.pt"]
    assert [c.step for c in store.list_checkpoints(run_id)] == [40, 50]
    assert store.prune_checkpoints(run_id, keep=2) == []
    with pytest.raises(StoreValueError):
        store.prune_checkpoints(run_id, keep=0)


# ---------------------------------------------------------------- bulk import
def _import(store: Store, steps=(), **run):
    fields = {"name": "imp", "config": {"a": 1}, "seed": 1, "status": "completed", **run}
    return store.import_run(
        fields,
        steps=list(steps),
        epochs=[{"epoch": 1, "step": 2, "test_acc": 0.5, "per_class_acc": [0.5, 0.5]}],
        clients=[{"epoch": 1, "client": 0, "samples": 10}],
        events=[{"message": "hello", "created_at": datetime(2024, 5, 1, tzinfo=timezone.utc)}],
    )


def test_import_stores_a_finished_run_with_everything_in_one_go(store):
    run_id = _import(store, steps=[{"step": 1, "loss": 1.0, "my_metric": 3}, {"step": 2, "loss": 0.5}])
    record = store.get_run(run_id)
    assert (record.status, record.finished_at is not None, record.progress) == ("completed", True, 1.0)
    assert store.read_step_metrics(run_id)["my_metric"].tolist()[0] == 3
    assert store.read_epoch_metrics(run_id)["per_class_acc"].tolist() == [[0.5, 0.5]]
    assert store.read_events(run_id)[0].created_at == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert store.claim_next_run("w") is None  # never queued


@pytest.mark.parametrize(
    "steps, run",
    [
        ([{"step": 1}, {"step": 2**70}], {}),  # beyond either database's INTEGER
        ([{"step": 1}, {"loss": 1.0}], {}),  # a row without its key
        ([{"step": 1, "extra_json": "not json"}], {}),
        ([{"step": 1}], {"status": "queued"}),
        ([{"step": 1}], {"status": "running"}),
        ([{"step": 1}], {"name": "   "}),
        ([{"step": 1}], {"seed": 2**64}),
        ([{"step": 1}], {"created_at": "yesterday"}),
    ],
)
def test_a_bad_import_stores_nothing(store_url, steps, run):
    store = Store(store_url)
    with pytest.raises(StoreValueError):
        _import(store, steps=steps, **run)
    for table in (Run, StepMetric, EpochMetric, ClientStat, Event):
        assert _count(store_url, table) == 0, table


def test_import_of_twenty_thousand_events_is_one_transaction(store):
    events = [{"message": f"event {i}"} for i in range(20_000)]
    run_id = store.import_run({"name": "many", "config": {}, "seed": 0, "status": "failed"}, events=events)
    assert len(store.read_events(run_id)) == 20_000


# ---------------------------------------------------------------- junk in stored rows
def test_readers_survive_junk_written_by_hand_or_an_old_import(store_url):
    store = Store(store_url)
    run_id = _new(store)
    store.add_step_metrics(run_id, [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5, "x": 1}])
    store.add_epoch_metrics(run_id, [{"epoch": 1, "per_class_acc": [0.1]}])
    with get_engine(store_url).begin() as conn:
        conn.execute(update(StepMetric).where(StepMetric.step == 1).values(extra_json="not json"))
        conn.execute(update(StepMetric).where(StepMetric.step == 2).values(extra_json="[1, 2]"))
        conn.execute(update(EpochMetric).values(per_class_acc_json="{oops", extra_json='"text"'))
        conn.execute(update(Run).values(tags="nope", config_json="[]"))
    frame = store.read_step_metrics(run_id)
    assert frame["loss"].tolist() == [1.0, 0.5]
    assert store.read_epoch_metrics(run_id)["per_class_acc"].tolist() == [None]
    record = store.get_run(run_id)
    assert (record.tags, record.config) == ([], {})


def test_raw_extra_json_text_is_refused_at_write(store):
    run_id = _new(store)
    with pytest.raises(StoreValueError, match="extra_json"):
        store.add_step_metrics(run_id, [{"step": 1, "extra_json": "raw text"}])
    store.add_step_metrics(run_id, [{"step": 1, "extra_json": '{"k": 2}'}])
    assert store.read_step_metrics(run_id)["k"].tolist() == [2]


def test_nul_characters_and_lone_surrogates_in_texts_are_stored(store):
    run_id = _new(store, "a\x00b")
    store.add_event(run_id, "bad \x00 byte \udcff")
    store.finish_run(run_id, "failed", error="ValueError: \x00", traceback="tb \udc80")
    record = store.get_run(run_id)
    assert record.status == "failed" and "\x00" not in record.error and "\x00" not in record.name


# ---------------------------------------------------------------- the database file
def test_a_removed_or_replaced_sqlite_file_stops_every_write(tmp_path):
    path = tmp_path / "psl.db"
    url = init_db(f"sqlite:///{path}")
    store = Store(url)
    run_id = _new(store)
    shutil.copy(path, tmp_path / "copy.db")
    os.replace(tmp_path / "copy.db", path)  # same path, another file
    with pytest.raises(DatabaseFileChanged, match="replaced"):
        store.add_event(run_id, "lost?")
    with pytest.raises(DatabaseFileChanged):
        store.claim_next_run("w")
    path.unlink()
    with pytest.raises(DatabaseFileChanged, match="removed"):
        store.verify_database_file()
    dispose_engine(url)


def test_a_read_only_store_reads_and_refuses_writes(store_url):
    writer = Store(store_url)
    run_id = _new(writer, "visible")
    reader = Store(store_url, read_only=True)
    assert [r.name for r in reader.list_runs()] == ["visible"]
    assert reader.read_step_metrics(run_id).empty
    with pytest.raises(StoreReadOnly, match="read-only"):
        reader.add_event(run_id, "x")
    assert _count(store_url, Event) == 0


def test_a_read_only_store_refuses_an_old_schema(tmp_path):
    url = init_db(f"sqlite:///{tmp_path / 'old.db'}", revision="0002")
    dispose_engine(url)
    with pytest.raises(StoreReadOnly, match="write access to upgrade"):
        Store(url, read_only=True)
