"""Claiming one given run (what a Ray task does), the claimable-run query, and where runs execute."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from storage import Store, get_engine
from storage.tables import Run


def _beat_at(url: str, run_id: int, seconds_ago: float) -> None:
    then = datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)
    with get_engine(url).begin() as conn:
        conn.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=then))


@pytest.fixture
def store(store_url) -> Store:
    return Store(store_url)


def test_claim_run_takes_a_queued_run_and_records_where_it_executes(store):
    run_id = store.create_run(name="a", config={}, seed=0)
    record = store.claim_run(run_id, "ray-abc-node1-42", host="node1", backend="ray", slot="2/4 node 1a2b")
    assert (record.status, record.worker_id, record.attempts) == ("running", "ray-abc-node1-42", 1)
    stored = store.get_run(run_id)
    assert (stored.host, stored.backend, stored.slot) == ("node1", "ray", "2/4 node 1a2b")
    assert store.claim_run(run_id, "someone-else") is None  # alive elsewhere: not claimable


def test_claim_run_takes_over_stale_runs_and_its_own_dead_attempts_only(store, store_url):
    run_id = store.create_run(name="a", config={}, seed=0)
    store.claim_run(run_id, "ray-lease1-hostA-100", host="hostA", backend="ray", slot="1/2")
    # A retry of the same task (same lease) takes over at once, although the heartbeat is fresh.
    retry = store.claim_run(run_id, "ray-lease1-hostB-200", take_over_prefix="ray-lease1-", host="hostB")
    assert (retry.worker_id, retry.attempts, retry.host, retry.backend) == (
        "ray-lease1-hostB-200",
        2,
        "hostB",
        None,
    )
    # Another task's lease does not match; LIKE wildcards in the prefix are taken literally.
    assert store.claim_run(run_id, "ray-lease2-h-1", take_over_prefix="ray-lease2-") is None
    assert store.claim_run(run_id, "x", take_over_prefix="ray-lease_-") is None
    assert store.claim_run(run_id, "x", take_over_prefix="%") is None
    # The old attempt's heartbeat now fails: it learns it lost the run.
    assert store.heartbeat(run_id, "ray-lease1-hostA-100") is False
    _beat_at(store_url, run_id, seconds_ago=60)
    assert store.claim_run(run_id, "local-w", stale_after_s=30).attempts == 3


def test_claim_run_cancels_a_dead_run_whose_cancel_was_requested(store, store_url):
    run_id = store.create_run(name="a", config={}, seed=0)
    store.claim_run(run_id, "ray-l-h-1")
    store.request_cancel(run_id)
    assert store.claim_run(run_id, "ray-l-h-2", take_over_prefix="ray-l-") is None
    assert store.get_run(run_id).status == "cancelled"
    other = store.create_run(name="b", config={}, seed=0)
    store.claim_run(other, "w1")
    store.request_cancel(other)
    _beat_at(store_url, other, seconds_ago=60)
    assert other in store.claimable_run_ids(stale_after_s=30)
    assert store.claim_run(other, "w2", stale_after_s=30) is None
    assert store.get_run(other).status == "cancelled"


def test_claimable_run_ids_oldest_first_by_sweep_and_staleness(store, store_url):
    sweep = store.create_sweep("s", {})
    first = store.create_run(name="1", config={}, seed=0, sweep_id=sweep)
    loose = store.create_run(name="2", config={}, seed=0)
    third = store.create_run(name="3", config={}, seed=0, sweep_id=sweep)
    assert store.claimable_run_ids() == [first, loose, third]
    assert store.claimable_run_ids(sweep_id=sweep) == [first, third]
    assert store.claimable_run_ids(limit=1) == [first]
    store.claim_run(first, "w")
    assert store.claimable_run_ids(sweep_id=sweep) == [third]
    _beat_at(store_url, first, seconds_ago=60)
    assert store.claimable_run_ids(sweep_id=sweep, stale_after_s=30) == [first, third]
    # claim_next_run honours the sweep too, and records the placement it is given
    record = store.claim_next_run(
        "w2", stale_after_s=30, sweep_id=sweep, host="h", backend="local", slot="1/1"
    )
    assert record.id == first and (record.host, record.backend, record.slot) == ("h", "local", "1/1")
    assert store.claim_next_run("w3", sweep_id=sweep).id == third
    assert store.claim_next_run("w4", sweep_id=sweep) is None
    assert store.claim_next_run("w4").id == loose


def test_only_one_of_many_concurrent_claimers_gets_the_run(store):
    run_id = store.create_run(name="a", config={}, seed=0)
    start = threading.Barrier(8)
    winners: list[str] = []

    def claim(name: str) -> None:
        start.wait()
        if store.claim_run(run_id, name) is not None:
            winners.append(name)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert store.get_run(run_id).worker_id == winners[0] and store.get_run(run_id).attempts == 1
