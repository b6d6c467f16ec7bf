"""``psl worker`` and ``psl ui``: the long-running processes."""

from __future__ import annotations

import multiprocessing as mp
from typing import Annotated

import typer

from app.cli.common import fail, settings_or_exit

service_app = typer.Typer()


def _worker_process(stale_after: float, heartbeat_every: float, exit_when_idle: bool, verbose: bool) -> None:
    """Entry point of each worker process of ``--concurrency N`` (spawned: configure everything anew)."""
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
    )


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
) -> None:
    """Claim queued runs and train them (several processes never take the same run).

    SIGTERM/SIGINT stop it between steps; its run goes back to the queue and resumes elsewhere."""
    from app.worker.loop import check_timing, run_worker

    try:
        check_timing(stale_after, heartbeat_every)
    except ValueError as err:
        fail(str(err))
    settings = settings_or_exit(writable=True)
    verbose = bool(ctx.obj and ctx.obj.get("verbose"))
    if concurrency == 1:
        run_worker(
            stale_after_s=stale_after,
            heartbeat_s=heartbeat_every,
            exit_when_idle=exit_when_idle,
            settings=settings,
        )
        return
    spawn = mp.get_context("spawn")
    procs = [
        spawn.Process(target=_worker_process, args=(stale_after, heartbeat_every, exit_when_idle, verbose))
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
