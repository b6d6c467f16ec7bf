"""Workers against a real SQLite file and real processes: the faults of issue 4 that must be survived."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.runs import submit
from app.settings import get_settings
from app.worker.loop import execute_run, run_worker
from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.engine import NONDETERMINISTIC_FIELDS, MemorySink, PSLTrainer, run_experiment
from storage import Store

ROOT = Path(__file__).resolve().parents[2]


def small_config(**overrides) -> ExperimentConfig:
    base = {
        "name": "worker-test",
        "data.dataset": "digits",
        "partition.num_clients": 6,
        "model.arch": "cnn",
        "sampling.batch_size": 64,
        "training.epochs": 2,
        "training.max_steps_per_epoch": 6,
    }
    base.update(overrides)
    return apply_overrides(ExperimentConfig(), base)


@pytest.fixture
def home(db_home):
    return db_home


def science_steps(df) -> list[dict]:
    drop = [c for c in NONDETERMINISTIC_FIELDS if c in df.columns]
    return df.drop(columns=drop).to_dict("records")


def test_worker_trains_a_queued_run_and_stores_every_metric(home):
    store = Store(get_settings().database_url)
    cfg = small_config()
    run_id = submit(store, cfg)
    assert run_worker(exit_when_idle=True) == 1
    record = store.get_run(run_id)
    assert record.status == "completed" and record.progress == pytest.approx(1.0)
    steps = store.read_step_metrics(run_id)
    assert list(steps["step"]) == list(range(1, 13))
    reference = MemorySink()
    run_experiment(cfg, reference)
    expected = [{k: v for k, v in r.items() if k not in NONDETERMINISTIC_FIELDS} for r in reference.steps]
    got = science_steps(steps[[c for c in steps.columns if c in reference.steps[0]]])
    assert got == expected
    assert len(store.read_epoch_metrics(run_id)) == 2
    assert len(store.read_client_stats(run_id)) == 2 * 6
    assert store.latest_checkpoint(run_id).step == 12


def test_exception_marks_run_failed_with_traceback_and_keeps_written_metrics(home, monkeypatch):
    store = Store(get_settings().database_url)
    run_id = submit(store, small_config(**{"training.max_steps_per_epoch": None, "training.epochs": 3}))
    original = PSLTrainer._forward_backward
    calls = {"n": 0}

    def explode(self, x, y):
        calls["n"] += 1
        if calls["n"] == 30:
            raise RuntimeError("simulated GPU fell off the bus")
        return original(self, x, y)

    monkeypatch.setattr(PSLTrainer, "_forward_backward", explode)
    record = store.claim_next_run("w1")
    assert execute_run(store, record.id, "w1") == "failed"
    failed = store.get_run(run_id)
    assert failed.status == "failed"
    assert "simulated GPU fell off the bus" in failed.error
    assert "Traceback" in failed.traceback and "explode" in failed.traceback
    steps = store.read_step_metrics(run_id)
    # Epoch 1 (23 steps) was flushed at its end and stays; of steps 24-29 (the failure came at the 30th
    # call) those already flushed by time stay too — always a gap-free prefix, never past the failure.
    written = list(steps["step"])
    assert written == list(range(1, len(written) + 1)) and 23 <= len(written) <= 29
    assert len(store.read_epoch_metrics(run_id)) == 1


def test_invalid_stored_config_fails_clearly_and_other_runs_continue(home):
    store = Store(get_settings().database_url)
    bad = store.create_run(name="bad", config={"sampling": {"method": "magic"}}, seed=0)
    good = submit(store, small_config())
    assert run_worker(exit_when_idle=True) == 2
    failed = store.get_run(bad)
    assert failed.status == "failed"
    assert "sampling.method" in failed.error and "magic" in failed.error
    assert store.get_run(good).status == "completed"


def test_locked_database_is_waited_for_not_fatal(home):
    store = Store(get_settings().database_url)
    run_id = submit(store, small_config())
    url = os.environ["PSL_DATABASE_URL"]
    locked = threading.Event()

    def hold_lock():
        # Another writer holds the database (SQLite) or the metrics table (PostgreSQL) for 2 s.
        if url.startswith("sqlite"):
            con = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)
            con.execute("BEGIN IMMEDIATE")
        else:
            from sqlalchemy import create_engine, text

            con = create_engine(url).connect()
            con.execute(text("LOCK TABLE step_metrics IN EXCLUSIVE MODE"))
        locked.set()
        time.sleep(2.0)
        con.rollback()
        con.close()

    claimed = store.claim_next_run("w1")
    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait(5)
    assert execute_run(store, claimed.id, "w1") == "completed"
    holder.join()
    assert store.count_step_metrics(run_id) == 12


def _worker_process(home: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PSL_HOME=str(home))  # PSL_DATABASE_URL comes from the fixture
    return subprocess.Popen(
        [sys.executable, "-m", "app", "worker", "--stale-after", "2", "--heartbeat-every", "0.5", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def kill_9_mid_run(
    store: Store, run_id: int, worker: subprocess.Popen, *, min_step: int, rows_past_checkpoint: bool = False
) -> None:
    """Let ``worker`` train ``run_id`` until a checkpoint at ``min_step`` or later exists (and, if
    asked, step rows past it that a resume must drop), then kill it with SIGKILL and reap it."""
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            ckpt = store.latest_checkpoint(run_id)
            if ckpt is not None and ckpt.step >= min_step:
                if not rows_past_checkpoint or store.count_step_metrics(run_id) > ckpt.step:
                    break
            time.sleep(0.05)
        assert store.get_run(run_id).status == "running", "the run ended before it could be killed"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()


def test_kill_9_mid_run_resumes_from_checkpoint_with_identical_metrics(home):
    store = Store(get_settings().database_url)
    cfg = small_config(
        **{
            "training.epochs": 6,
            "training.max_steps_per_epoch": None,
            "sampling.batch_size": 32,
            "sampling.method": "lds",
            "sampling.lds_delta": 0.5,
            "training.checkpoint_every_steps": 10,
        }
    )
    run_id = submit(store, cfg)
    total = 6 * 45
    kill_9_mid_run(store, run_id, _worker_process(home), min_step=30, rows_past_checkpoint=True)
    killed_at = store.count_step_metrics(run_id)
    assert 30 < killed_at < total  # rows past the last checkpoint exist: resume must drop and redo them
    # An --exit-when-idle worker leaves a run that still looks alive (heartbeat younger than
    # --stale-after) to its owner; wait, by the database clock, until the killed worker's run is stale.
    deadline = time.time() + 30
    while run_id not in store.claimable_run_ids(stale_after_s=2) and time.time() < deadline:
        time.sleep(0.1)

    second = _worker_process(home, "--exit-when-idle")
    out, _ = second.communicate(timeout=240)
    assert second.returncode == 0, out.decode()[-2000:]
    record = store.get_run(run_id)
    assert record.status == "completed" and record.attempts == 2
    steps = store.read_step_metrics(run_id)
    assert list(steps["step"]) == list(range(1, total + 1))  # nothing lost, nothing duplicated

    reference = MemorySink()
    run_experiment(cfg, reference)
    expected = [{k: v for k, v in r.items() if k not in NONDETERMINISTIC_FIELDS} for r in reference.steps]
    assert science_steps(steps[[c for c in steps.columns if c in reference.steps[0]]]) == expected
    epochs = store.read_epoch_metrics(run_id)
    assert list(epochs["test_acc"]) == [e["test_acc"] for e in reference.epochs]
    events = [e.message for e in store.read_events(run_id)]
    assert any("resuming from checkpoint" in m for m in events)


def test_dead_local_owner_names_only_dead_processes_of_this_host():
    import socket

    from app.worker.takeover import dead_local_owner, new_worker_id

    host = socket.gethostname()
    assert not dead_local_owner(new_worker_id())  # this very process
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # exited and reaped: its pid names no process now
    assert dead_local_owner(f"{host}-{gone.pid}-abc123")
    assert not dead_local_owner(f"another-host-{gone.pid}-abc123")  # another machine: not ours to judge
    for odd in (None, "", "ray-task-7", f"{host}-notapid-abc123", f"{host}-{gone.pid}"):
        assert not dead_local_owner(odd)


def test_a_take_over_waits_until_the_owner_has_been_silent(home):
    store = Store(get_settings().database_url)
    run_id = submit(store, small_config())
    store.claim_next_run("host-1-aaaaaa")
    assert store.heartbeat(run_id, "host-1-aaaaaa")
    assert store.claim_run(run_id, "me", take_over_prefix="host-1-aaaaaa", take_over_silent_s=5) is None
    time.sleep(0.3)
    taken = store.claim_run(run_id, "me", take_over_prefix="host-1-aaaaaa", take_over_silent_s=0.2)
    assert taken is not None and taken.worker_id == "me" and taken.attempts == 2


def test_an_idle_exiting_worker_started_right_after_a_kill_9_finishes_the_run(home):
    """A worker killed by the OOM killer or kill -9 left its run 'running' until its heartbeat was stale
    (30 s by default), and `psl worker --exit-when-idle` started meanwhile exited at once, leaving the
    run behind. Its process is gone, so the next worker on this host takes the run over and finishes it
    from its checkpoint — with the default --stale-after, without waiting for staleness."""
    store = Store(get_settings().database_url)
    cfg = small_config(**{"training.epochs": 3, "training.max_steps_per_epoch": None,
                          "training.checkpoint_every_steps": 10})  # fmt: skip
    run_id = submit(store, cfg)
    env = dict(os.environ, PSL_HOME=str(home))
    command = [sys.executable, "-m", "app", "worker", "--heartbeat-every", "0.5"]  # default --stale-after 30
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    kill_9_mid_run(store, run_id, first, min_step=10)
    assert store.get_run(run_id).status == "running" and run_id not in store.claimable_run_ids()
    second = subprocess.run(
        [*command, "--exit-when-idle"], cwd=ROOT, env=env, capture_output=True, timeout=240
    )
    assert second.returncode == 0, (second.stdout + second.stderr).decode()[-2000:]
    record = store.get_run(run_id)
    assert record.status == "completed" and record.attempts == 2
    assert list(store.read_step_metrics(run_id)["step"]) == list(range(1, 3 * 23 + 1))  # none lost or twice
    assert any("resuming from checkpoint" in e.message for e in store.read_events(run_id))
    # Taken over as a dead local worker's run (after two missed beats), not as a stale one (30 s).
    log = (home / "logs" / "worker.log").read_text()
    assert f"run {run_id}: its worker" in log and "died on this host; taken over" in log
