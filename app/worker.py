"""The worker: claims queued runs from the store and trains them.

Crash safety, in order of what can go wrong:
- the stored config is invalid → the run fails with the validation message; the worker goes on;
- training raises → the run fails with the traceback; metrics already written stay;
- the worker process dies (kill -9) → its heartbeat goes stale, another worker reclaims the run,
  truncates metrics newer than the last checkpoint and resumes from it, so the final metrics equal
  an uninterrupted run's and no row is lost or duplicated;
- the database is busy → the store retries; a run is never failed for it.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
import traceback
import uuid
from pathlib import Path

from psl_core.config import ConfigError, parse_config
from psl_core.engine import RunInfo, Sink, run_experiment
from storage import Store

HEARTBEAT_EVERY_S = 3.0
STALE_AFTER_S = 30.0
CANCEL_CHECK_EVERY_S = 1.0
FLUSH_INTERVAL_S = 1.0  # step rows reach the store at least this often (the monitor polls every 2 s)


def psl_home() -> Path:
    home = Path(os.environ.get("PSL_HOME", Path.home() / ".psl-studio"))
    home.mkdir(parents=True, exist_ok=True)
    return home


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class StoreSink(Sink):
    """Writes the engine's reports to the store and relays cancel requests back to it.

    Writes go through one background thread with an ordered queue, so training never waits on the
    database (a checkpoint row still lands after the metric rows it covers). A write error is raised
    in the training thread at the next report; ``close`` waits until everything is written.
    """

    def __init__(self, store: Store, run_id: int, worker_id: str):
        self.store, self.run_id, self.worker_id = store, run_id, worker_id
        self.total_steps = 0
        self.progress: dict = {}
        self.lost_ownership = False
        self._cancel = False
        self._last_cancel_check = 0.0
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._writer = threading.Thread(target=self._write_loop, daemon=True, name=f"store-writer-{run_id}")
        self._writer.start()

    def _write_loop(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    job()
            except BaseException as err:  # kept and raised in the training thread
                self._error = err
            finally:
                self._queue.task_done()

    def _submit(self, job) -> None:
        if self._error is not None:
            raise RuntimeError(f"writing metrics to the store failed: {self._error}") from self._error
        self._queue.put(job)

    def close(self) -> None:
        """Wait until every queued write is done (and beat the final progress); raise a write error."""
        if self.progress:
            self._queue.put(self.beat)
        self._queue.put(None)
        self._writer.join()
        if self._error is not None:
            raise RuntimeError(f"writing metrics to the store failed: {self._error}") from self._error

    def on_start(self, info: RunInfo) -> None:
        self.total_steps = info.total_steps
        message = (
            f"training on {info.device}: {info.num_clients} clients, {info.num_params:,} parameters, "
            f"{info.steps_per_epoch} steps per epoch"
        )

        def job():
            self.store.update_run(self.run_id, total_steps=info.total_steps)
            self.store.add_event(self.run_id, message, kind="start")

        self._submit(job)

    def on_steps(self, rows):
        last = rows[-1]
        # Progress rides on the heartbeat thread's next beat (every few seconds): one write less here.
        self.progress = {
            "progress": last["step"] / max(1, self.total_steps),
            "step": last["step"],
            "epoch": last["epoch"],
        }
        self._submit(lambda: self.store.add_step_metrics(self.run_id, rows))

    def on_epoch(self, row, client_stats):
        acc = f", test accuracy {row['test_acc']:.4f}" if row.get("test_acc") is not None else ""
        message = f"epoch {row['epoch']} done: train loss {row['train_loss']:.4f}{acc}"

        self._submit(lambda: self.store.add_epoch_report(self.run_id, row, client_stats, message))

    def on_event(self, message, level="info"):
        self._submit(lambda: self.store.add_event(self.run_id, message, level=level))

    def on_checkpoint(self, path, step, epoch):
        self._submit(lambda: self.store.add_checkpoint(self.run_id, step=step, epoch=epoch, path=path))

    def beat(self) -> None:
        """Heartbeat with the latest progress; notices when another worker has taken the run over."""
        if not self.store.heartbeat(self.run_id, self.worker_id, **self.progress):
            self.lost_ownership = True

    def should_stop(self) -> bool:
        now = time.monotonic()
        if now - self._last_cancel_check >= CANCEL_CHECK_EVERY_S:
            self._last_cancel_check = now
            self._cancel = self.store.is_cancel_requested(self.run_id)
        return self._cancel or self.lost_ownership


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
            except Exception:  # a missed beat is retried next time; never kill the run for it
                pass


def execute_run(store: Store, run_id: int, worker_id: str, *, home: Path | None = None) -> str:
    """Train one claimed run to its end; returns the final status written to the store."""
    home = home or psl_home()
    record = store.get_run(run_id)
    try:
        config = parse_config(record.config)
    except ConfigError as err:
        store.add_event(run_id, str(err), level="error", kind="config")
        store.finish_run(run_id, "failed", error=f"stored config is invalid: {err}")
        return "failed"
    resume_from = None
    checkpoint = store.latest_checkpoint(run_id)
    if checkpoint is not None and Path(checkpoint.path).exists():
        resume_from = checkpoint.path
        store.truncate_metrics_after(run_id, step=checkpoint.step, epoch=checkpoint.epoch)
    else:  # an earlier attempt that died before its first checkpoint: start clean
        store.truncate_metrics_after(run_id, step=0, epoch=0)
    if record.attempts > 1:
        where = f"checkpoint at step {checkpoint.step}" if resume_from else "the start"
        store.add_event(
            run_id, f"attempt {record.attempts} by {worker_id}, resuming from {where}", kind="resume"
        )
    sink = StoreSink(store, run_id, worker_id)
    beat = Heartbeat(sink)
    beat.start()
    try:
        result = run_experiment(
            config,
            sink,
            checkpoint_dir=home / "checkpoints" / str(run_id),
            resume_from=resume_from,
            flush_interval_s=FLUSH_INTERVAL_S,
        )
        sink.close()  # every metric row is written before the run is marked finished
    except Exception as err:  # the traceback is the most useful thing a failed run can keep
        trace = traceback.format_exc()
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
    if sink.lost_ownership:
        return "lost"  # another worker took the run over; it owns the outcome now
    status = "completed" if result.status == "completed" else "cancelled"
    store.finish_run(run_id, status)
    return status


def run_worker(
    store_url: str | None = None,
    *,
    worker_id: str | None = None,
    poll_s: float = 1.0,
    stale_after_s: float = STALE_AFTER_S,
    max_runs: int | None = None,
    exit_when_idle: bool = False,
) -> int:
    """Claim and train runs until stopped (or until idle / ``max_runs``); returns runs executed."""
    store = Store(store_url)
    worker_id = worker_id or new_worker_id()
    done = 0
    while max_runs is None or done < max_runs:
        record = store.claim_next_run(worker_id, stale_after_s=stale_after_s)
        if record is None:
            if exit_when_idle:
                break
            time.sleep(poll_s)
            continue
        execute_run(store, record.id, worker_id)
        done += 1
    return done
