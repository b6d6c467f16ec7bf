"""The worker: claims queued runs from the store and trains them.

Crash safety, in order of what can go wrong:
- the stored config is invalid → the run fails with the validation message; the worker goes on;
- training raises → the run fails with the traceback; metrics already written stay;
- the worker is asked to stop (SIGTERM/SIGINT, e.g. by ``psl ui`` shutting down) → the run stops
  between steps and goes back to the queue; the next worker resumes it from its last checkpoint;
- the worker process dies (kill -9) → its heartbeat goes stale, another worker reclaims the run,
  truncates metrics newer than the last checkpoint and resumes from it, so the final metrics equal
  an uninterrupted run's and no row is lost or duplicated;
- the database is busy → the store retries; a run is never failed for it.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import traceback
import uuid
from pathlib import Path

from app.logs import get_logger
from app.settings import CHECKPOINT_ENV, Settings, get_settings
from app.worker.checkpoints import CheckpointLocation
from app.worker.store_sink import StoreSink
from psl_core.config import ConfigError
from psl_core.engine import run_experiment
from psl_core.validation import validate_config
from storage import CheckpointRecord, Store

HEARTBEAT_EVERY_S = 3.0
STALE_AFTER_S = 30.0
STALE_HEARTBEATS = (
    3  # a run is stale after this many missed beats; fewer and a live worker's run is taken twice
)
FLUSH_INTERVAL_S = 1.0  # step rows reach the store at least this often (the monitor polls every 2 s)

log = get_logger("worker")


def check_timing(stale_after_s: float, heartbeat_s: float) -> None:
    """Refuse heartbeat settings under which live workers' runs would be reclaimed (ValueError)."""
    if not heartbeat_s > 0:
        raise ValueError(f"the heartbeat interval must be positive, got {heartbeat_s!r}")
    if not stale_after_s >= STALE_HEARTBEATS * heartbeat_s:
        raise ValueError(
            f"--stale-after {stale_after_s:g} s is shorter than {STALE_HEARTBEATS} heartbeats "
            f"({STALE_HEARTBEATS * heartbeat_s:g} s at one beat every {heartbeat_s:g} s): a live worker's run "
            "would be taken over by another worker; raise --stale-after or lower --heartbeat-every"
        )


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class ShutdownFlag:
    """Set by SIGTERM/SIGINT: the worker finishes the current step, re-queues its run and exits."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self) -> bool:
        return self.event.is_set()

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread (e.g. not in tests' threads)

        def on_signal(signum, _frame):
            log.info("signal %s: stopping after the current step", signal.Signals(signum).name)
            self.event.set()

        self.previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    def uninstall(self) -> None:
        """Put back the handlers :meth:`install` replaced (a process that goes on after draining)."""
        for sig, handler in getattr(self, "previous", {}).items():
            signal.signal(sig, handler)
        self.previous = {}


class Heartbeat(threading.Thread):
    """Beats while a run trains, so a long step never looks like a dead worker."""

    def __init__(self, sink: StoreSink, every_s: float = HEARTBEAT_EVERY_S):
        super().__init__(daemon=True)
        self.sink, self.every_s = sink, every_s
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every_s):
            try:
                self.sink.beat()
            except Exception as err:  # a missed beat is retried next time; never kill the run for it
                log.warning("run %s: heartbeat failed: %s", self.sink.run_id, err)


def _resume_point(
    store: Store, run_id: int, checkpoints: CheckpointLocation
) -> tuple[CheckpointRecord | None, Path | None]:
    """The run's latest checkpoint and a local path to resume from, or (None, None) to start clean.

    A checkpoint this host cannot read (another host wrote it to a location not shared with this one)
    is said in the run's events, with what to change, and the run starts from step 0."""
    checkpoint = store.latest_checkpoint(run_id)
    if checkpoint is None:
        return None, None
    try:
        local = checkpoints.fetch(checkpoint.path, run_id)
    except Exception as err:  # noqa: BLE001 - an unreachable object store: restart rather than fail
        local, why = None, f"{type(err).__name__}: {err}"
    else:
        why = "not found"
    if local is not None:
        return checkpoint, local
    message = (
        f"checkpoint at step {checkpoint.step} ({checkpoint.path}) cannot be read on {socket.gethostname()} "
        f"({why}); starting from step 0. Point {CHECKPOINT_ENV} of every worker host at one shared "
        "folder or object-store URL"
    )
    log.warning("run %s: %s", run_id, message)
    store.add_event(run_id, message, level="warning", kind="resume")
    return None, None


def execute_run(
    store: Store,
    run_id: int,
    worker_id: str,
    *,
    settings: Settings | None = None,
    shutdown: ShutdownFlag | None = None,
    heartbeat_s: float = HEARTBEAT_EVERY_S,
) -> str:
    """Train one claimed run to its end; returns the final status written to the store
    ('completed', 'failed', 'cancelled'), 'lost' if another worker took it over, or 'requeued'
    if this worker was asked to shut down."""
    settings = settings or get_settings()
    shutdown = shutdown or ShutdownFlag()
    record = store.get_run(run_id)
    try:
        config, _warnings = validate_config(record.config)
    except ConfigError as err:
        log.error("run %s: stored config is invalid: %s", run_id, err)
        store.add_event(run_id, str(err), level="error", kind="config")
        store.finish_run(run_id, "failed", error=f"stored config is invalid: {err}")
        return "failed"
    checkpoints = CheckpointLocation(settings)
    checkpoint, resume_from = _resume_point(store, run_id, checkpoints)
    if resume_from is not None:
        store.truncate_metrics_after(run_id, step=checkpoint.step, epoch=checkpoint.epoch)
    else:  # an earlier attempt that died before its first checkpoint: start clean
        store.truncate_metrics_after(run_id, step=0, epoch=0)
    if record.attempts > 1:
        where = f"checkpoint at step {checkpoint.step}" if resume_from else "the start"
        log.info("run %s: attempt %s, resuming from %s", run_id, record.attempts, where)
        store.add_event(
            run_id, f"attempt {record.attempts} by {worker_id}, resuming from {where}", kind="resume"
        )
    else:
        log.info("run %s: starting %r", run_id, config.name)
    sink = StoreSink(
        store,
        run_id,
        worker_id,
        stop_requested=shutdown,
        publish_checkpoint=lambda path: checkpoints.publish(path, run_id),
    )
    beat = Heartbeat(sink, heartbeat_s)
    beat.start()
    try:
        result = run_experiment(
            config,
            sink,
            checkpoint_dir=checkpoints.engine_dir(run_id),
            resume_from=resume_from,
            flush_interval_s=FLUSH_INTERVAL_S,
        )
        sink.close()  # every metric row is written before the run is marked finished
    except Exception as err:  # the traceback is the most useful thing a failed run can keep
        trace = traceback.format_exc()
        log.error("run %s failed: %s: %s", run_id, type(err).__name__, err)
        log.debug("run %s traceback:\n%s", run_id, trace)
        try:
            sink.close()  # keep every metric reported before the failure
        except RuntimeError:
            pass
        store.finish_run(run_id, "failed", error=f"{type(err).__name__}: {err}", traceback=trace)
        store.add_event(run_id, f"failed: {type(err).__name__}: {err}", level="error", kind="failed")
        return "failed"
    finally:
        beat.stopped.set()
        beat.join(timeout=5)
        checkpoints.discard_staging(run_id)
    if sink.lost_ownership:
        log.warning("run %s: another worker took it over; leaving it", run_id)
        return "lost"  # another worker took the run over; it owns the outcome now
    if result.status != "completed" and shutdown() and not store.is_cancel_requested(run_id):
        store.release_run(run_id, worker_id)
        store.add_event(run_id, f"worker {worker_id} shut down; run back in the queue", kind="requeue")
        log.info("run %s: back in the queue (worker shutting down)", run_id)
        return "requeued"
    status = "completed" if result.status == "completed" else "cancelled"
    store.finish_run(run_id, status)
    log.info("run %s: %s after %s steps", run_id, status, result.steps)
    return status


def run_worker(
    store_url: str | None = None,
    *,
    worker_id: str | None = None,
    poll_s: float = 1.0,
    stale_after_s: float = STALE_AFTER_S,
    heartbeat_s: float = HEARTBEAT_EVERY_S,
    max_runs: int | None = None,
    exit_when_idle: bool = False,
    settings: Settings | None = None,
    sweep_id: int | None = None,
    slot: str = "1/1",
) -> int:
    """Claim and train runs (only those of ``sweep_id``, if given) until stopped (SIGTERM/SIGINT), idle
    (with ``exit_when_idle``) or ``max_runs``; returns the number of runs executed. ``slot`` says which
    of the local executor's processes this is (recorded with each run it claims)."""
    check_timing(stale_after_s, heartbeat_s)
    settings = settings or get_settings()
    CheckpointLocation(settings)  # an unusable checkpoint location is refused before any run is claimed
    store = Store(store_url or settings.database_url)
    worker_id = worker_id or new_worker_id()
    shutdown = ShutdownFlag()
    shutdown.install()
    try:
        log.info("worker %s started (database %s)", worker_id, store)
        done = 0
        while (max_runs is None or done < max_runs) and not shutdown():
            record = store.claim_next_run(
                worker_id,
                stale_after_s=stale_after_s,
                sweep_id=sweep_id,
                host=socket.gethostname(),
                backend="local",
                slot=slot,
            )
            if record is None:
                if exit_when_idle:
                    break
                shutdown.event.wait(poll_s)
                continue
            log.info("run %s claimed (attempt %s)", record.id, record.attempts)
            execute_run(
                store, record.id, worker_id, settings=settings, shutdown=shutdown, heartbeat_s=heartbeat_s
            )
            done += 1
    finally:
        shutdown.uninstall()  # a process that goes on (tests, the Ray driver) gets its handlers back
    log.info("worker %s stopping after %s runs", worker_id, done)
    return done
