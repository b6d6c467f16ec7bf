"""``psl worker`` and ``psl ui``: the long-running processes."""

from __future__ import annotations

import multiprocessing as mp
import os
from typing import Annotated

import typer

from app.cli.common import fail, settings_or_exit
from app.logs import get_logger

service_app = typer.Typer()
log = get_logger("worker")


def _worker_process(
    stale_after: float, heartbeat_every: float, exit_when_idle: bool, verbose: bool, threads: int | None
) -> None:
    """Entry point of each worker process of ``--concurrency N`` (a fresh process: configure it anew)."""
    import gc

    from app.logs import configure_logging
    from app.settings import configure_core, get_settings
    from app.worker.loop import run_worker

    settings = get_settings()
    configure_core(settings)
    configure_logging(settings, verbose=verbose, file_name="worker.log")
    run_worker(
        stale_after_s=stale_after,
        heartbeat_s=heartbeat_every,
        exit_when_idle=exit_when_idle,
        settings=settings,
        threads=threads,
    )
    gc.freeze()  # the process ends: skip the exit-time walk over torch's objects (see app.cli.main)


# What every worker slot imports before it trains: torch, the engine and the store (app.worker.loop),
# and torch._dynamo, which torch.optim imports when the first optimiser is built (~1 CPU-s).
SLOT_PRELOAD = ["app.worker.loop", "torch._dynamo"]


def _slot_context():
    """How the slots of a pool are started. With a fork server, torch and the store are imported
    ONCE (in the server, which never computes, starts no thread and opens no database connection)
    and each slot is forked from it: N slots cost one import, not N (on two cores, the import of
    the second slot cost as much CPU as half the runs of a 12-run digits sweep). Elsewhere: spawn."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(SLOT_PRELOAD)
    return context


@service_app.command()
def worker(
    ctx: typer.Context,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Worker processes to start.")] = 1,
    stale_after: Annotated[
        float,
        typer.Option(
            min=0.5, max=86_400.0, help="Seconds without heartbeat before a run is reclaimed (≥ 3 beats)."
        ),
    ] = 30.0,
    heartbeat_every: Annotated[
        float, typer.Option(min=0.1, max=600.0, help="Seconds between a running run's heartbeats.")
    ] = 3.0,
    exit_when_idle: Annotated[bool, typer.Option(help="Stop when the queue is empty.")] = False,
    threads_per_slot: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=1024,
            help="CPU threads of each worker process (default: $PSL_THREADS_PER_SLOT, else cores ÷ concurrency).",
        ),
    ] = None,
) -> None:
    """Claim queued runs and train them (several processes never take the same run).

    SIGTERM/SIGINT stop it between steps; its run goes back to the queue and resumes elsewhere."""
    from app.worker import threads as budget
    from app.worker.timing import check_timing

    try:
        check_timing(stale_after, heartbeat_every)
    except ValueError as err:
        fail(str(err))
    settings = settings_or_exit(writable=True)
    verbose = bool(ctx.obj and ctx.obj.get("verbose"))
    cores = budget.available_cores()
    threads = budget.threads_per_slot(concurrency, threads_per_slot or settings.threads_per_slot, cores)
    if threads is not None and concurrency * threads > cores:
        log.warning(
            "%s slots × %s threads oversubscribe %s cores: runs will slow each other down",
            concurrency, threads, cores,
        )  # fmt: skip
    if concurrency == 1:
        from app.settings import configure_core
        from app.worker.loop import run_worker

        configure_core(settings)
        run_worker(
            stale_after_s=stale_after,
            heartbeat_s=heartbeat_every,
            exit_when_idle=exit_when_idle,
            settings=settings,
            threads=threads,
        )
        return
    # The children inherit the caps from their first instruction (before they import torch).
    os.environ.update(budget.thread_env(threads))  # concurrency > 1: threads is a share, never None
    context = _slot_context()
    procs = [
        context.Process(
            target=_worker_process, args=(stale_after, heartbeat_every, exit_when_idle, verbose, threads)
        )
        for _ in range(concurrency)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:  # the children got the same signal from the terminal: wait for them
        for p in procs:
            p.join()


@service_app.command()
def ui(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8501,
    address: Annotated[
        str, typer.Option(help="Address to bind (0.0.0.0 only behind an authenticating proxy).")
    ] = "127.0.0.1",
    no_worker: Annotated[bool, typer.Option(help="Do not start a background worker.")] = False,
) -> None:
    """Serve the dashboard and a worker; Ctrl-C (or SIGTERM) stops both."""
    from app.worker.supervisor import DashboardProcesses

    settings = settings_or_exit(writable=True)
    typer.echo(f"PSL Studio on http://{address}:{port}  (data in {settings.home}; Ctrl-C stops)")
    code = DashboardProcesses(settings, address, port, start_worker=not no_worker).run()
    raise typer.Exit(code)
