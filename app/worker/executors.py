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

from app.settings import Settings
from app.worker.loop import DATABASE_FILE_EXIT, HEARTBEAT_EVERY_S, STALE_AFTER_S, check_timing, run_worker
from storage import DatabaseFileChanged

BACKENDS = ("local", "ray")


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


def _local_slot(env: dict[str, str], slot: str, sweep_id, exit_when_idle, timing, verbose, counts) -> None:  # noqa: ANN001
    """Entry point of each process of a local pool (spawned: everything is configured anew)."""
    from app.logs import configure_logging
    from app.settings import configure_core, get_settings

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
        )
    except DatabaseFileChanged as err:  # logged by run_worker; the parent turns the status into an error
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(DATABASE_FILE_EXIT)
    counts.put(done)


class LocalExecutor:
    """``concurrency`` worker processes on this machine (one: this process itself)."""

    backend = "local"

    def __init__(
        self, settings: Settings, *, concurrency: int = 1, timing: WorkerTiming | None = None, verbose=False
    ):
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.settings, self.concurrency, self.verbose = settings, concurrency, verbose
        self.timing = timing or WorkerTiming()

    def drain(self, *, sweep_id: int | None = None, exit_when_idle: bool = False) -> int:
        if self.concurrency == 1:
            return run_worker(
                settings=self.settings,
                stale_after_s=self.timing.stale_after_s,
                heartbeat_s=self.timing.heartbeat_s,
                poll_s=self.timing.poll_s,
                exit_when_idle=exit_when_idle,
                sweep_id=sweep_id,
            )
        spawn = mp.get_context("spawn")
        counts = spawn.SimpleQueue()
        env = self.settings.as_env()
        procs = [
            spawn.Process(
                target=_local_slot,
                args=(
                    env,
                    f"{i}/{self.concurrency}",
                    sweep_id,
                    exit_when_idle,
                    self.timing,
                    self.verbose,
                    counts,
                ),
            )
            for i in range(1, self.concurrency + 1)
        ]
        for proc in procs:
            proc.start()
        try:
            for proc in procs:
                proc.join()
        except KeyboardInterrupt:  # the children got the same signal from the terminal: wait for them
            for proc in procs:
                proc.join()
        if any(proc.exitcode == DATABASE_FILE_EXIT for proc in procs):
            raise DatabaseFileChanged(
                "a worker process stopped because its database file was removed or replaced; "
                "restart the workers (see worker.log)"
            )
        done = 0
        while not counts.empty():
            done += counts.get()
        return done
