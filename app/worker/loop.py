"""The worker: claims queued runs from the store and trains them.

Crash safety, in order of what can go wrong:
- the stored config is invalid → the run fails with the validation message; the worker goes on;
- training raises → the run fails with the traceback; metrics already written stay;
- the worker is asked to stop (SIGTERM/SIGINT, e.g. by ``psl ui`` shutting down) → the run stops
  between steps and goes back to the queue; the next worker resumes it from its last checkpoint;
- the worker process dies (kill -9) → its heartbeat goes stale, another worker reclaims the run,
  truncates metrics newer than the last checkpoint and resumes from it, so the final metrics equal
  an uninterrupted run's and no row is lost or duplicated;
- the database is busy → the store retries; a run is never failed for it;
- the run is deleted under the worker → the worker drops it and goes on with the queue;
- the disk is full (or the database unreachable) → the run fails with that reason, written as soon
  as the database accepts it again (the worker retries, it never leaves the run 'running');
- the database cannot even be read while a run starts or ends → the worker lives on and waits; the
  run's heartbeat goes stale and the next claim resumes it from its checkpoint;
- the SQLite file is removed or replaced → the worker stops at once with exit status 3 (what it
  would write next would land in a file nobody reads).
"""

from __future__ import annotations

import errno
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from app.logs import get_logger
from app.settings import CHECKPOINT_ENV, Settings, get_settings
from app.worker.checkpoints import CheckpointLocation
from app.worker.store_sink import CANCEL_CHECK_EVERY_S, StoreSink
from app.worker.takeover import new_worker_id, take_over_dead_local_run
from app.worker.threads import apply_thread_budget, available_cores, torch_threads
from app.worker.timing import HEARTBEAT_EVERY_S, STALE_AFTER_S, check_timing
from psl_core.config import ConfigError
from psl_core.engine import RunResult, run_experiment
from psl_core.validation import validate_config
from storage import CheckpointRecord, DatabaseFileChanged, Store, StoreUnavailable

FLUSH_INTERVAL_S = 1.0  # step rows reach the store at least this often (the monitor polls every 2 s)
RETRY_FIRST_WAIT_S = 0.5  # first pause before writing to a full / unreachable database again
RETRY_MAX_WAIT_S = 10.0  # longest pause (the pause doubles each time)

log = get_logger("worker")


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
    """Beats while a run trains, so a long step never looks like a dead worker, and reads the run's
    cancel flag every ``cancel_every_s`` (so the training thread never queries the database)."""

    def __init__(
        self,
        sink: StoreSink,
        every_s: float = HEARTBEAT_EVERY_S,
        cancel_every_s: float = CANCEL_CHECK_EVERY_S,
    ):
        super().__init__(daemon=True, name=f"heartbeat-{sink.run_id}")
        self.sink, self.every_s, self.cancel_every_s = sink, every_s, cancel_every_s
        self.stopped = threading.Event()

    def run(self) -> None:
        next_beat = time.monotonic() + self.every_s
        while not self.stopped.wait(min(self.every_s, self.cancel_every_s)):
            try:
                self.sink.poll_cancel()
            except Exception as err:  # read again next time; never kill the run for it
                log.warning("run %s: reading the cancel flag failed: %s", self.sink.run_id, err)
            if time.monotonic() < next_beat:
                continue
            next_beat += self.every_s
            try:
                self.sink.beat()
            except Exception as err:  # a missed beat is retried next time; never kill the run for it
                log.warning("run %s: heartbeat failed: %s", self.sink.run_id, err)


def _causes(err: BaseException):
    """``err`` and every exception it was raised from or during (the sink wraps write errors)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        yield from (x for x in (getattr(err, "orig", None),) if isinstance(x, BaseException))
        err = err.__cause__ or err.__context__


def _is_disk_full(err: BaseException) -> bool:
    for cause in _causes(err):
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(cause).lower()
        if "database or disk is full" in text or "no space left" in text or "could not extend file" in text:
            return True
    return False


def describe_failure(err: BaseException, settings: Settings) -> str:
    """The error text a failed run keeps, with what to do when the cause is a full disk."""
    text = f"{type(err).__name__}: {err}"
    if _is_disk_full(err):
        return f"disk full: {text} — free space (PSL_HOME is {settings.home}) and re-run it"
    return text


def _database_file_changed(err: BaseException) -> DatabaseFileChanged | None:
    return next((c for c in _causes(err) if isinstance(c, DatabaseFileChanged)), None)


def record_with_retry(run_id: int, what: str, write: Callable[[], None], shutdown: ShutdownFlag) -> bool:
    """Call ``write`` until the database takes it: a full disk or a database that is down only
    delays the record, it never leaves the run 'running'. False if the run vanished meanwhile or
    the worker is stopping (its heartbeat then goes stale and the next worker finishes the job)."""
    delay = RETRY_FIRST_WAIT_S
    while True:
        try:
            write()
            return True
        except KeyError:
            log.warning("run %s was deleted before its %s could be recorded", run_id, what)
            return False
        except (StoreUnavailable, OSError) as err:
            if _database_file_changed(err):
                raise
            if shutdown():
                log.error("run %s: could not record %s before stopping: %s", run_id, what, err)
                return False
            log.warning("run %s: cannot record %s yet (%s); retrying in %.1f s", run_id, what, err, delay)
            shutdown.event.wait(delay)
            delay = min(delay * 2, RETRY_MAX_WAIT_S)


def _fail(store: Store, run_id: int, shutdown: ShutdownFlag, error: str, trace: str | None = None) -> str:
    def write() -> None:
        store.finish_run(run_id, "failed", error=error, traceback=trace)
        try:
            store.add_event(run_id, f"failed: {error}", level="error", kind="failed")
        except (StoreUnavailable, OSError) as err:  # the status is what counts; the event is a nicety
            log.warning("run %s: failure event not written: %s", run_id, err)

    return "failed" if record_with_retry(run_id, "failure", write, shutdown) else "vanished"


def _vanished(store: Store, run_id: int) -> bool:
    """True if the run is no longer stored (deleted under the worker); False when unsure."""
    try:
        return not store.run_exists(run_id)
    except Exception:  # noqa: BLE001 - the database is unreachable: treat the run as still there
        return False


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
    ('completed', 'failed', 'cancelled'), 'lost' if another worker took it over, 'requeued'
    if this worker was asked to shut down, or 'vanished' if the run was deleted meanwhile.

    Raises DatabaseFileChanged (the worker must stop); every other error ends up in the run."""
    settings = settings or get_settings()
    shutdown = shutdown or ShutdownFlag()
    try:
        record = store.get_run(run_id)
    except KeyError:
        log.warning("run %s was deleted before it started; skipping it", run_id)
        return "vanished"
    try:
        config, _warnings = validate_config(record.config)
    except ConfigError as err:
        log.error("run %s: stored config is invalid: %s", run_id, err)
        return _fail(store, run_id, shutdown, f"stored config is invalid: {err}")
    checkpoints = CheckpointLocation(settings)
    sink: StoreSink | None = None
    beat: Heartbeat | None = None
    try:
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
            keep_checkpoints=settings.keep_checkpoints,
            remove_checkpoints=lambda locations: checkpoints.remove(locations, run_id),
        )
        beat = Heartbeat(sink, heartbeat_s)
        beat.start()
        result = run_experiment(
            config,
            sink,
            checkpoint_dir=checkpoints.engine_dir(run_id),
            resume_from=resume_from,
            flush_interval_s=FLUSH_INTERVAL_S,
        )
        sink.close()  # every metric row is written before the run is marked finished
    except Exception as err:  # the traceback is the most useful thing a failed run can keep
        changed = _database_file_changed(err)
        if changed is not None:
            raise changed from err
        if sink is not None:
            try:
                sink.close()  # keep every metric reported before the failure
            except RuntimeError:
                pass
        if _vanished(store, run_id):
            log.warning("run %s was deleted while it trained; going on with the queue", run_id)
            return "vanished"
        trace = traceback.format_exc()
        log.error("run %s failed: %s: %s", run_id, type(err).__name__, err)
        log.debug("run %s traceback:\n%s", run_id, trace)
        return _fail(store, run_id, shutdown, describe_failure(err, settings), trace)
    finally:
        if beat is not None:
            beat.stopped.set()
            beat.join(timeout=5)
        checkpoints.discard_staging(run_id)
    if sink.lost_ownership:
        if _vanished(store, run_id):
            log.warning("run %s was deleted while it trained; going on with the queue", run_id)
            return "vanished"
        log.warning("run %s: another worker took it over; leaving it", run_id)
        return "lost"  # another worker took the run over; it owns the outcome now
    try:
        return _conclude(store, run_id, worker_id, result, shutdown)
    except KeyError:  # deleted between its last step and its final record (a stale run, another tool)
        log.warning("run %s was deleted as it ended; going on with the queue", run_id)
        return "vanished"


def _conclude(store: Store, run_id: int, worker_id: str, result: RunResult, shutdown: ShutdownFlag) -> str:
    """Record how a run this worker still owns ended: back to the queue (shutting down), or final."""
    if result.status != "completed" and shutdown() and not store.is_cancel_requested(run_id):
        try:
            store.release_run(run_id, worker_id)
            store.add_event(run_id, f"worker {worker_id} shut down; run back in the queue", kind="requeue")
        except (StoreUnavailable, OSError) as err:
            if _database_file_changed(err):
                raise
            # Still 'running' under this worker: its heartbeat goes stale and the next worker resumes it.
            log.error(
                "run %s: could not hand it back to the queue (%s); it is reclaimed once stale", run_id, err
            )
            return "lost"
        log.info("run %s: back in the queue (worker shutting down)", run_id)
        return "requeued"
    status = "completed" if result.status == "completed" else "cancelled"
    if not record_with_retry(run_id, status, lambda: store.finish_run(run_id, status), shutdown):
        return "vanished"
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
    threads: int | None = None,
) -> int:
    """Claim and train runs (only those of ``sweep_id``, if given) until stopped (SIGTERM/SIGINT), idle
    (with ``exit_when_idle``) or ``max_runs``; returns the number of runs executed. ``slot`` says which
    of the local executor's processes this is (recorded with each run it claims); ``threads`` caps
    this process's CPU threads (the local executor passes each slot's share; None: torch's default)."""
    check_timing(stale_after_s, heartbeat_s)
    settings = settings or get_settings()
    CheckpointLocation(settings)  # an unusable checkpoint location is refused before any run is claimed
    if threads is not None:
        apply_thread_budget(threads)
    store = Store(store_url or settings.database_url)
    worker_id = worker_id or new_worker_id()
    shutdown = ShutdownFlag()
    shutdown.install()
    try:
        log.info(
            "worker %s started (database %s; %s CPU threads for training, %s cores)",
            worker_id,
            store,
            torch_threads(),
            available_cores(),
        )
        done = 0
        delay = poll_s
        while (max_runs is None or done < max_runs) and not shutdown():
            try:
                record = store.claim_next_run(
                    worker_id,
                    stale_after_s=stale_after_s,
                    sweep_id=sweep_id,
                    host=socket.gethostname(),
                    backend="local",
                    slot=slot,
                )
                waiting = False
                if record is None:
                    record, waiting = take_over_dead_local_run(
                        store, worker_id, heartbeat_s=heartbeat_s, slot=slot, sweep_id=sweep_id
                    )
                delay = poll_s
            except DatabaseFileChanged as err:
                log.critical("worker %s stops: %s", worker_id, err)
                raise
            except StoreUnavailable as err:  # disk full, database down: wait for it, do not die
                log.error("worker %s cannot claim runs (%s); retrying in %.1f s", worker_id, err, delay)
                shutdown.event.wait(delay)
                delay = min(delay * 2, RETRY_MAX_WAIT_S)
                continue
            if record is None:
                # A run whose worker died here is resumed once it has been silent for two beats, so an
                # idle-exiting worker started right after the crash waits for it instead of leaving it.
                if exit_when_idle and not waiting:
                    break
                shutdown.event.wait(poll_s)
                continue
            log.info("run %s claimed (attempt %s)", record.id, record.attempts)
            try:
                execute_run(
                    store, record.id, worker_id, settings=settings, shutdown=shutdown, heartbeat_s=heartbeat_s
                )
            except DatabaseFileChanged as err:
                log.critical("worker %s stops: %s", worker_id, err)
                raise
            except StoreUnavailable as err:  # the database went away mid-run: keep the worker alive
                # The run stays 'running' under this worker; its heartbeat goes stale and it is resumed.
                log.error(
                    "run %s: the database is unavailable (%s); it is resumed once stale", record.id, err
                )
                shutdown.event.wait(delay)
                delay = min(delay * 2, RETRY_MAX_WAIT_S)
                continue
            done += 1
    finally:
        shutdown.uninstall()  # a process that goes on (tests, the Ray driver) gets its handlers back
    log.info("worker %s stopping after %s runs", worker_id, done)
    return done
