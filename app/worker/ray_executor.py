"""The Ray executor: each queued run becomes one Ray task on a Ray cluster.

The driver (``psl worker --backend ray`` or ``psl sweep --backend ray``) keeps at most one task per
slot in flight. A task claims its run in the store itself (so a run stays 'queued' until a process
really trains it, and another executor can never train it twice), then trains it with the local
worker's :func:`execute_run` — metrics through the store, heartbeats, cancel between steps.

Failures, in order of what can go wrong:
- the task's worker process dies (killed, out of memory, node lost) → Ray retries the task up to
  ``max_retries`` times; the retry takes over its own dead attempt at once (the worker ids share the
  task's lease) and resumes from the last checkpoint, so no metric row is lost or duplicated;
- every retry died too, or the task raised → the driver marks the run failed with Ray's message;
- the driver is asked to stop (SIGTERM/SIGINT) → it cancels its tasks; each stops between steps and
  hands its run back to the queue, where the next executor resumes it from its checkpoint;
- the driver dies → Ray ends its tasks; their runs' heartbeats go stale and any executor resumes them.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from app.logs import get_logger
from app.settings import HOME_ENV, Settings, SettingsError, ensure_home, get_settings
from app.worker.executors import BackendUnavailable, WorkerTiming
from app.worker.loop import ShutdownFlag
from storage import Store, StoreUnavailable

RAY_WORKER_PREFIX = "ray-"
STOP_GRACE_S = 30.0  # after a stop request, tasks hand their runs back within this (one step each)
DEFAULT_MAX_RETRIES = 3

log = get_logger("ray")


def import_ray():  # noqa: ANN201 - the ray module
    """``ray``, or a BackendUnavailable that says how to install it."""
    try:
        import ray
    except ImportError:
        raise BackendUnavailable(
            "the Ray backend needs the ray package: pip install 'psl-studio[ray]'"
        ) from None
    return ray


@dataclass(frozen=True)
class RayOptions:
    """Where the cluster is and what each run's task asks of it.

    ``address``: None starts Ray on this machine for the drain (or joins one started here with
    ``ray start``), "auto" joins the running cluster, "ray://host:10001" connects through Ray Client.
    ``num_gpus`` None: one GPU for runs whose config asks for ``training.device: cuda``, none otherwise.
    """

    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float | None = None
    max_retries: int = DEFAULT_MAX_RETRIES

    def __post_init__(self) -> None:
        if not self.num_cpus > 0:
            raise ValueError(f"--num-cpus must be positive (CPUs reserved per run), got {self.num_cpus}")
        if self.num_gpus is not None and not self.num_gpus >= 0:
            raise ValueError(f"--num-gpus must be 0 or more (GPUs reserved per run), got {self.num_gpus}")
        if not 0 <= self.max_retries <= 100:
            raise ValueError(f"--max-retries must be from 0 to 100, got {self.max_retries}")
        address = self.address
        if address is not None and address != "auto" and not address.startswith("ray://"):
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(
                    f"--address {address!r} is not a Ray address; use auto, ray://HOST:10001 or HOST:6379"
                )

    def gpus_for(self, config: dict) -> float:
        """GPUs the run's task reserves: the option if given, else what its config asks for."""
        if self.num_gpus is not None:
            return self.num_gpus
        return 1.0 if (config.get("training") or {}).get("device") == "cuda" else 0.0


def lease_prefix(lease: str) -> str:
    """What the worker ids of every attempt of one task start with."""
    return f"{RAY_WORKER_PREFIX}{lease}-"


def ray_worker_id(lease: str, host: str, pid: int) -> str:
    """The worker id of one attempt of one task (retries of the task share its lease prefix)."""
    return f"{lease_prefix(lease)}{host}-{pid}"


def pid_of_ray_worker(worker_id: str) -> int:
    """The process id in a worker id made by :func:`ray_worker_id` (to find the process of a run)."""
    return int(worker_id.rsplit("-", 1)[1])


# ---------------------------------------------------------------- the task (runs on a Ray worker)
class TaskSetupError(RuntimeError):
    """A Ray task could not start on its host (e.g. the checkpoint folder is not mounted there): a
    setting to fix, not a fault of the run, so the driver stops instead of failing run after run."""


def task_settings(env: dict[str, str]) -> Settings:
    """The driver's settings (same database, same checkpoint location) on the task's host. The
    driver's PSL_HOME (logs, caches) is used where it exists or can be made; on a host where it cannot,
    the host's own (its environment's PSL_HOME, else the default)."""
    try:
        return ensure_home(get_settings(env))
    except SettingsError:
        here = {k: v for k, v in env.items() if k != HOME_ENV}
        if HOME_ENV in os.environ:
            here[HOME_ENV] = os.environ[HOME_ENV]
        return ensure_home(get_settings(here))


def run_ray_task(
    run_id: int, lease: str, slot: str, env: dict[str, str], timing: WorkerTiming, num_cpus: float
) -> str:
    """Claim run ``run_id`` and train it in this Ray worker; returns how it ended ('completed',
    'failed', 'cancelled', 'requeued', 'lost', 'vanished' (deleted), or 'taken' if another executor had
    claimed it)."""
    import ray

    from app.logs import configure_logging
    from app.settings import configure_core
    from app.worker.checkpoints import CheckpointLocation
    from app.worker.loop import execute_run
    from app.worker.threads import apply_thread_budget

    try:
        settings = task_settings(env)
        CheckpointLocation(settings)  # refuse an unusable location before claiming the run
    except SettingsError as err:
        raise TaskSetupError(f"{socket.gethostname()}: {err}") from None
    configure_core(settings)
    configure_logging(settings, file_name="worker.log")
    # The task reserved num_cpus CPUs: its threads (torch, OpenMP) must not take the whole node.
    apply_thread_budget(max(1, int(num_cpus)))
    host, gpus = socket.gethostname(), ray.get_gpu_ids()
    where = f"{slot} node {ray.get_runtime_context().get_node_id()[:8]}"
    if gpus:
        where += f" gpu {','.join(str(g) for g in gpus)}"
    worker_id = ray_worker_id(lease, host, os.getpid())
    store = Store(settings.database_url)
    record = store.claim_run(
        run_id,
        worker_id,
        stale_after_s=timing.stale_after_s,
        take_over_prefix=lease_prefix(lease),
        host=host,
        backend="ray",
        slot=where,
    )
    if record is None:
        try:
            return "cancelled" if store.get_run(run_id).status == "cancelled" else "taken"
        except KeyError:  # deleted while the task waited for its slot
            return "vanished"
    log.info("run %s claimed by Ray task %s (attempt %s, %s)", run_id, lease, record.attempts, where)
    # Training runs in a thread so that ray.cancel() — a KeyboardInterrupt in this main thread —
    # only asks it to stop between steps and hand the run back, never tears a step or a write.
    shutdown = ShutdownFlag()
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def train() -> None:
        try:
            outcome["status"] = execute_run(
                store, run_id, worker_id, settings=settings, shutdown=shutdown, heartbeat_s=timing.heartbeat_s
            )
        except BaseException as err:  # re-raised below, so Ray reports it to the driver
            outcome["error"] = err
        finally:
            finished.set()

    def on_cancel(*_: Any) -> None:
        log.info("run %s: the Ray task was cancelled; handing the run back after this step", run_id)
        shutdown.event.set()

    # ray.cancel() interrupts the main thread (_thread.interrupt_main). As a KeyboardInterrupt it could
    # land between two statements outside any try (the task then returned while its training thread
    # went on with the run); a SIGINT handler turns it into the stop flag wherever it lands.
    installed = _in_main_thread()
    previous = signal.signal(signal.SIGINT, on_cancel) if installed else None
    trainer = threading.Thread(target=train, name=f"psl-run-{run_id}")
    try:
        trainer.start()
        # Wait on an Event, not on join(): an interrupted Thread.join can leave is_alive() wrong (CPython < 3.13).
        while not finished.is_set():
            try:
                finished.wait(0.5)
            except KeyboardInterrupt:  # no handler could be installed (not the main thread)
                on_cancel()
        trainer.join()
    finally:
        if installed:  # this Ray worker process runs later tasks: give back what it had
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["status"]


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


_remote_task = None


def remote_task(ray):  # noqa: ANN001, ANN201 - the ray module, a RemoteFunction
    global _remote_task
    if _remote_task is None:
        _remote_task = ray.remote(run_ray_task)
    return _remote_task


# ---------------------------------------------------------------- the driver
@dataclass
class _Dispatch:
    run_id: int
    lease: str
    slot: int

    @property
    def worker_prefix(self) -> str:
        return lease_prefix(self.lease)


class RayExecutor:
    """Drains the queue onto a Ray cluster, one task per run, ``concurrency`` tasks in flight
    (default: as many as the cluster's CPUs/GPUs hold at ``num_cpus``/``num_gpus`` per run)."""

    backend = "ray"

    def __init__(
        self,
        settings: Settings,
        *,
        options: RayOptions | None = None,
        concurrency: int | None = None,
        timing: WorkerTiming | None = None,
        on_result=None,  # noqa: ANN001 - callable(run_id, status), e.g. to print progress
    ):
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.settings, self.concurrency = settings, concurrency
        self.options = options or RayOptions()
        self.timing = timing or WorkerTiming()
        self.on_result = on_result or (lambda run_id, status: None)

    def drain(
        self,
        *,
        sweep_id: int | None = None,
        exit_when_idle: bool = False,
        shutdown: ShutdownFlag | None = None,
    ) -> int:
        ray = import_ray()
        store = Store(self.settings.database_url)
        own_flag = shutdown is None
        if own_flag:
            shutdown = ShutdownFlag()
            shutdown.install()
        started_here = self._connect(ray)
        try:
            slots = self.concurrency or self.cluster_slots(ray)
            log.info("draining onto Ray with %s slots (%s)", slots, ray.cluster_resources())
            return self._loop(ray, store, slots, sweep_id, exit_when_idle, shutdown)
        finally:
            if started_here:
                ray.shutdown()
            if own_flag:
                shutdown.uninstall()

    def _connect(self, ray) -> bool:  # noqa: ANN001
        """Join (or start) the cluster unless this process already did; True if it is ours to shut down."""
        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = {"address": self.options.address, "log_to_driver": False}
        if self.options.address is None:
            kwargs["include_dashboard"] = False
        try:
            ray.init(**kwargs)
        except ConnectionError as err:
            raise BackendUnavailable(
                f"cannot reach the Ray cluster at {self.options.address!r}: {err}"
            ) from None
        return True

    def cluster_slots(self, ray) -> int:  # noqa: ANN001
        resources = ray.cluster_resources()
        slots = int(resources.get("CPU", 0) // self.options.num_cpus)
        if self.options.num_gpus:
            slots = min(slots, int(resources.get("GPU", 0) // self.options.num_gpus))
        if slots < 1:
            raise BackendUnavailable(
                f"the Ray cluster ({resources}) cannot hold one run at --num-cpus {self.options.num_cpus:g}"
                f" --num-gpus {self.options.num_gpus or 0:g}; lower them or add nodes"
            )
        return slots

    def _submit(self, ray, store: Store, run_id: int, slot: int, slots: int):  # noqa: ANN001, ANN202
        """Start the run's task; (None, None) if the run was deleted since it was listed."""
        dispatch = _Dispatch(run_id, uuid.uuid4().hex[:12], slot)
        try:
            config = store.get_run(run_id).config
        except KeyError:
            return None, None
        ref = (
            remote_task(ray)
            .options(
                num_cpus=self.options.num_cpus,
                num_gpus=self.options.gpus_for(config),
                max_retries=self.options.max_retries,
                retry_exceptions=False,  # a run that raises has failed; only dead processes are retried
                name=f"psl-run-{run_id}",
            )
            .remote(
                run_id,
                dispatch.lease,
                f"{slot}/{slots}",
                self.settings.as_env(),
                self.timing,
                self.options.num_cpus,
            )
        )
        return ref, dispatch

    def _loop(self, ray, store, slots, sweep_id, exit_when_idle, shutdown) -> int:  # noqa: ANN001
        inflight: dict[Any, _Dispatch] = {}
        free = list(range(1, slots + 1))
        ended = 0
        try:
            while not shutdown():
                if free:
                    busy = {d.run_id for d in inflight.values()}
                    try:
                        candidates = store.claimable_run_ids(
                            stale_after_s=self.timing.stale_after_s,
                            sweep_id=sweep_id,
                            limit=slots + len(busy),
                        )
                    except StoreUnavailable as err:  # a database restart: wait for it, as local workers do
                        log.error("cannot list queued runs (%s); retrying in %.1f s", err, self.timing.poll_s)
                        shutdown.event.wait(self.timing.poll_s)
                        continue
                    for run_id in [r for r in candidates if r not in busy][: len(free)]:
                        ref, dispatch = self._submit(ray, store, run_id, free[0], slots)
                        if ref is not None:
                            free.pop(0)
                            inflight[ref] = dispatch
                if not inflight:
                    if exit_when_idle:
                        break
                    shutdown.event.wait(self.timing.poll_s)
                    continue
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=self.timing.poll_s)
                for ref in ready:
                    dispatch = inflight.pop(ref)
                    free = sorted([*free, dispatch.slot])
                    status = self._outcome(ray, store, ref, dispatch)
                    ended += status != "taken"
                    log.info("run %s: %s", dispatch.run_id, status)
                    self.on_result(dispatch.run_id, status)
        finally:  # asked to stop, or a task could not start: hand every run in flight back
            self._stop(ray, store, inflight)
        return ended

    def _outcome(self, ray, store: Store, ref, dispatch: _Dispatch) -> str:  # noqa: ANN001
        try:
            return ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            return "requeued"
        except TaskSetupError as err:  # Ray re-raises it as a subclass of both RayTaskError and it
            raise BackendUnavailable(f"a Ray task could not start on {getattr(err, 'cause', err)}") from None
        except Exception as err:  # noqa: BLE001 - every retry died, or the task raised
            try:
                return self._fail_run(store, dispatch, err)
            except KeyError:  # the run was deleted meanwhile: nothing to record, the driver goes on
                log.warning("run %s was deleted; going on with the queue", dispatch.run_id)
                return "vanished"

    @staticmethod
    def _fail_run(store: Store, dispatch: _Dispatch, err: Exception) -> str:
        """Record a task that raised or whose retries all died as the run's failure ('lost' if another
        executor owns the run by now)."""
        record = store.get_run(dispatch.run_id)
        if record.status != "running" or not (record.worker_id or "").startswith(dispatch.worker_prefix):
            return "lost"  # another executor has it now
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        message = f"the Ray task failed after {record.attempts} attempt(s): {type(err).__name__}: {first}"
        log.error("run %s: %s", dispatch.run_id, message)
        store.add_event(dispatch.run_id, message, level="error", kind="failed")
        store.finish_run(dispatch.run_id, "failed", error=message, traceback=str(err))
        return "failed"

    def _stop(self, ray, store: Store, inflight: dict) -> None:  # noqa: ANN001
        """Cancel every task: each stops between steps and hands its run back; wait for them."""
        if not inflight:
            return
        log.info("stopping: handing %s runs back to the queue", len(inflight))
        for ref in inflight:
            ray.cancel(ref)
        ready, _ = ray.wait(list(inflight), num_returns=len(inflight), timeout=STOP_GRACE_S)
        for ref in ready:
            try:
                status = self._outcome(ray, store, ref, inflight[ref])
            except BackendUnavailable:
                status = "not started"
            self.on_result(inflight[ref].run_id, status)
        self._wait_for_hand_backs(store, list(inflight.values()), deadline=time.monotonic() + STOP_GRACE_S)

    @staticmethod
    def _wait_for_hand_backs(store: Store, dispatches: list[_Dispatch], deadline: float) -> None:
        """Ray reports a cancelled task as done at once, while the task may still be finishing its
        step and handing its run back: wait until no run is held under our leases any more, so that a
        stopped driver really has handed its runs back (a run still held at the deadline is left to
        go stale and be resumed by another worker)."""

        def still_held(d: _Dispatch) -> bool:
            try:
                record = store.get_run(d.run_id)
            except KeyError:
                return False  # deleted meanwhile
            except StoreUnavailable:
                return True  # cannot tell yet: keep waiting until the deadline
            return record.status == "running" and (record.worker_id or "").startswith(d.worker_prefix)

        held = [d for d in dispatches if still_held(d)]
        while held and time.monotonic() < deadline:
            time.sleep(0.2)
            held = [d for d in held if still_held(d)]
        for d in held:
            log.warning(
                "run %s: still held by its cancelled Ray task; it will be resumed once stale", d.run_id
            )
