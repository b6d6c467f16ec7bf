"""The worker's sink: the engine's reports go to the store, cancel requests come back from it.

Writes go through one background thread with an ordered queue, so training never waits on the
database (a checkpoint row still lands after the metric rows it covers). A write error is raised in
the training thread at the next report; ``close`` waits until everything is written.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from psl_core.engine import RunInfo, Sink
from storage import Store

CANCEL_CHECK_EVERY_S = 1.0


class StoreSink(Sink):
    """Writes the engine's reports to the store and relays cancel requests back to it.

    ``stop_requested`` (e.g. the worker was asked to shut down) also stops training between steps.
    ``publish_checkpoint(path)`` makes a checkpoint the engine wrote readable by every host and returns
    the location to store (e.g. after uploading it); it runs on the writer thread, before the row.
    With ``keep_checkpoints``, only that many newest checkpoints of the run are kept: older rows are
    dropped as each new one lands and ``remove_checkpoints(locations)`` deletes what they named.
    """

    def __init__(
        self,
        store: Store,
        run_id: int,
        worker_id: str,
        stop_requested: Callable[[], bool] = lambda: False,
        publish_checkpoint: Callable[[str], str] = str,
        keep_checkpoints: int | None = None,
        remove_checkpoints: Callable[[list[str]], object] = lambda locations: None,
    ):
        self.store, self.run_id, self.worker_id = store, run_id, worker_id
        self.stop_requested = stop_requested
        self.publish_checkpoint = publish_checkpoint
        self.keep_checkpoints = keep_checkpoints
        self.remove_checkpoints = remove_checkpoints
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
        def job():
            location = self.publish_checkpoint(str(path))
            self.store.add_checkpoint(self.run_id, step=step, epoch=epoch, path=location)
            if self.keep_checkpoints:
                old = self.store.prune_checkpoints(self.run_id, keep=self.keep_checkpoints)
                self.remove_checkpoints(old)

        self._submit(job)

    def beat(self) -> None:
        """Heartbeat with the latest progress; notices when another worker has taken the run over."""
        if not self.store.heartbeat(self.run_id, self.worker_id, **self.progress):
            self.lost_ownership = True

    def should_stop(self) -> bool:
        now = time.monotonic()
        if now - self._last_cancel_check >= CANCEL_CHECK_EVERY_S:
            self._last_cancel_check = now
            self._cancel = self.store.is_cancel_requested(self.run_id)
        return self._cancel or self.lost_ownership or self.stop_requested()
