"""Executors: how queued runs reach compute.

Every executor drains the same queue in the store and trains each run with the same
:func:`app.worker.loop.execute_run` (metrics through :class:`StoreSink`, heartbeats, cancel, resume
from the last checkpoint), so a run's stored metrics do not depend on where it ran:

- ``local``: worker processes on this machine (``--concurrency N`` processes, each claiming runs);
- ``ray``: each run is a Ray task on a Ray cluster (app/worker/ray_executor.py), with ``num_cpus`` /
  ``num_gpus`` per run and ``max_retries`` that resume a killed task from its checkpoint.

Several executors, on several hosts, may drain one database at once (PostgreSQL for several hosts):
claims are atomic, so a run is trained by one of them.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from dataclasses import dataclass
from typing import Protocol

from app.logs import get_logger
from app.settings import Settings
from app.worker import threads as budget
from app.worker.timing import DATABASE_FILE_EXIT, HEARTBEAT_EVERY_S, STALE_AFTER_S, check_timing

# Nothing above imports torch, pandas or the store: the parent of a local pool only waits for its
# slots, and a fork server (below) imports them once for all slots. The rest is imported where used.

BACKENDS = ("local", "ray")
log = get_logger("worker")


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot be used here (e.g. Ray is not installed); the message says what to do."""


@dataclass(frozen=True)
class WorkerTiming:
    """How often a running run beats, after how long without a beat it is reclaimed, how often the
    queue is polled when it is empty."""

    stale_after_s: float = STALE_AFTER_S
    heartbeat_s: float = HEARTBEAT_EVERY_S
    poll_s: float = 1.0

    def __post_init__(self) -> None:
        check_timing(self.stale_after_s, self.heartbeat_s)


class Executor(Protocol):
    backend: str

    def drain(self, *, sweep_id: int | None = None, exit_when_idle: bool = False) -> int:
        """Train claimable runs (only those of ``sweep_id``, if given) until the queue is empty (with
        ``exit_when_idle``) or the process is asked to stop; returns the number of runs it ended."""


def _local_slot(
    env: dict[str, str], slot: str, sweep_id, exit_when_idle, timing, verbose, threads, counts
) -> None:  # noqa: ANN001
    """Entry point of each process of a local pool (a fresh process: everything is configured anew)."""
    import gc

    from app.logs import configure_logging
    from app.settings import configure_core, get_settings
    from app.worker.loop import run_worker
    from storage import DatabaseFileChanged

    settings = get_settings(env)
    configure_core(settings)
    configure_logging(settings, verbose=verbose, file_name="worker.log")
    try:
        done = run_worker(
            settings=settings,
            stale_after_s=timing.stale_after_s,
            heartbeat_s=timing.heartbeat_s,
            poll_s=timing.poll_s,
            exit_when_idle=exit_when_idle,
            sweep_id=sweep_id,
            slot=slot,
            threads=threads,
        )
    except DatabaseFileChanged as err:  # logged by run_worker; the parent turns the status into an error
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(DATABASE_FILE_EXIT)
    counts.put(done)
    gc.freeze()  # the process ends: skip the exit-time walk over torch's objects (see app.cli.main)


class WorkerSlotFailed(RuntimeError):
    """A process of the local pool ended with an error (not a clean stop or an idle exit)."""


SLOT_PRELOAD = ["app.worker.slot_preload"]  # torch, the engine, the store; see that module


def slot_context():  # noqa: ANN201 - a multiprocessing context
    """How the slots of a pool are started. With a fork server, torch and the store are imported
    ONCE (in the server, which never computes, starts no thread and opens no database connection)
    and each slot is forked from it: N slots cost one import, not N (on two cores, the import of
    the second slot cost as much CPU as half the runs of a 12-run digits sweep). Elsewhere: spawn."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(SLOT_PRELOAD)
    return context


class LocalExecutor:
    """``concurrency`` worker processes on this machine (one: this process itself), each with its
    share of the cores (``threads_per_slot``, else ``PSL_THREADS_PER_SLOT``, else cores ÷ slots;
    app/worker/threads.py)."""

    backend = "local"

    def __init__(
        self,
        settings: Settings,
        *,
        concurrency: int = 1,
        timing: WorkerTiming | None = None,
        verbose=False,
        threads_per_slot: int | None = None,
    ):
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.settings, self.concurrency, self.verbose = settings, concurrency, verbose
        self.timing = timing or WorkerTiming()
        cores = budget.available_cores()
        self.threads = budget.threads_per_slot(
            concurrency, threads_per_slot or settings.threads_per_slot, cores
        )
        if self.threads is not None and concurrency * self.threads > cores:
            log.warning(
                "%s slots × %s threads oversubscribe %s cores: runs will slow each other down",
                concurrency, self.threads, cores,
            )  # fmt: skip

    def drain(self, *, sweep_id: int | None = None, exit_when_idle: bool = False) -> int:
        if self.concurrency == 1:
            from app.worker.loop import run_worker

            return run_worker(
                settings=self.settings,
                stale_after_s=self.timing.stale_after_s,
                heartbeat_s=self.timing.heartbeat_s,
                poll_s=self.timing.poll_s,
                exit_when_idle=exit_when_idle,
                sweep_id=sweep_id,
                threads=self.threads,
            )
        context = slot_context()
        counts = context.SimpleQueue()
        env = self.settings.as_env()
        procs = [
            context.Process(
                target=_local_slot,
                args=(
                    env,
                    f"{i}/{self.concurrency}",
                    sweep_id,
                    exit_when_idle,
                    self.timing,
                    self.verbose,
                    self.threads,
                    counts,
                ),
            )
            for i in range(1, self.concurrency + 1)
        ]
        # The slots (and the fork server they come from) inherit the caps before they import torch.
        with budget.thread_env_for_children(self.threads):  # several slots: a share, never None
            for proc in procs:
                proc.start()
        try:
            for proc in procs:
                proc.join()
        except KeyboardInterrupt:  # the children got the same signal from the terminal: wait for them
            for proc in procs:
                proc.join()
        if any(proc.exitcode == DATABASE_FILE_EXIT for proc in procs):
            from storage import DatabaseFileChanged

            raise DatabaseFileChanged(
                "a worker process stopped because its database file was removed or replaced; "
                "restart the workers (see worker.log)"
            )
        done = 0
        while not counts.empty():
            done += counts.get()
        failed = [(i, proc.exitcode) for i, proc in enumerate(procs, 1) if (proc.exitcode or 0) > 0]
        if failed:  # a slot that died of an exception must not pass for an idle one
            slots = ", ".join(f"slot {i}/{self.concurrency} exited with code {code}" for i, code in failed)
            raise WorkerSlotFailed(f"{slots}; its error is in worker.log and on this terminal's stderr")
        return done
