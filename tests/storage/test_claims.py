"""The run queue: claims are exclusive across real OS processes; dead workers' runs are resumed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import update

from storage import Store, get_engine
from storage.tables import Run

REPO_ROOT = Path(__file__).resolve().parents[2]

# Each worker says "ready", waits for "go" on stdin (so all four start claiming at the same moment),
# then claims until the queue is empty and prints the ids it got.
CLAIM_LOOP = """
import json, sys
from storage import Store
store = Store(sys.argv[1], migrate=False)
worker = sys.argv[2]
print("ready", flush=True)
sys.stdin.readline()
claimed = []
while (run := store.claim_next_run(worker, stale_after_s=3600)) is not None:
    claimed.append(run.id)
    assert store.heartbeat(run.id, worker, progress=0.5)
print(json.dumps(claimed), flush=True)
"""


def _make_stale(url: str, run_id: int, seconds_ago: float) -> None:
    """Pretend the run's worker last sent a heartbeat ``seconds_ago`` (it died)."""
    then = datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)
    with get_engine(url).begin() as conn:
        conn.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=then))


def test_four_processes_claim_every_run_exactly_once(store_url):
    store = Store(store_url)
    run_ids = {store.create_run(name=f"r{i}", config={"i": i}, seed=i) for i in range(40)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM_LOOP, store_url, f"worker-{n}"],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = []
        for worker in workers:
            out, err = worker.communicate(timeout=60)
            assert worker.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    claimed = [run_id for got in results for run_id in got]
    assert sorted(claimed) == sorted(run_ids)  # all claimed, none twice
    runs = store.list_runs()
    assert all(r.status == "running" and r.attempts == 1 for r in runs)
    owners = {r.id: r.worker_id for r in runs}
    for n, got in enumerate(results):
        assert all(owners[run_id] == f"worker-{n}" for run_id in got)


def test_claims_go_oldest_first_and_none_when_empty(store_url):
    store = Store(store_url)
    first = store.create_run(name="a", config={}, seed=0)
    second = store.create_run(name="b", config={}, seed=0)
    assert store.claim_next_run("w").id == first
    assert store.claim_next_run("w").id == second
    assert store.claim_next_run("w") is None


def test_stale_running_run_is_reclaimed_and_old_worker_loses_it(store_url):
    store = Store(store_url)
    run_id = store.create_run(name="a", config={}, seed=0)
    first = store.claim_next_run("old-worker")
    assert store.claim_next_run("new-worker", stale_after_s=30) is None  # fresh heartbeat: not stale
    assert store.heartbeat(run_id, "old-worker", progress=0.4, step=40, epoch=1) is True
    _make_stale(store_url, run_id, seconds_ago=120)
    resumed = store.claim_next_run("new-worker", stale_after_s=30)
    assert (resumed.id, resumed.worker_id, resumed.attempts) == (run_id, "new-worker", 2)
    assert resumed.started_at == first.started_at and resumed.current_step == 40
    assert store.heartbeat(run_id, "old-worker") is False  # the old worker must stop
    assert store.heartbeat(run_id, "new-worker", progress=0.5) is True
    assert store.get_run(run_id).progress == pytest.approx(0.5)


def test_stale_run_with_cancel_request_is_cancelled_not_resumed(store_url):
    store = Store(store_url)
    run_id = store.create_run(name="a", config={}, seed=0)
    store.claim_next_run("dead-worker")
    store.request_cancel(run_id)
    _make_stale(store_url, run_id, seconds_ago=120)
    assert store.claim_next_run("w2") is None
    run = store.get_run(run_id)
    assert run.status == "cancelled" and run.finished_at is not None and run.attempts == 1


def test_finished_runs_are_never_claimed(store_url):
    store = Store(store_url)
    run_id = store.create_run(name="a", config={}, seed=0)
    store.claim_next_run("w1")
    store.finish_run(run_id, "completed")
    _make_stale(store_url, run_id, seconds_ago=3600)
    assert store.claim_next_run("w2") is None
    assert store.heartbeat(run_id, "w1") is False
