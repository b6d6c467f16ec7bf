"""``psl worker`` and ``psl ui``: the long-running processes."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

import typer

from app.cli.common import (
    AddressOption,
    BackendOption,
    ConcurrencyOption,
    MaxRetriesOption,
    NumCpusOption,
    NumGpusOption,
    ThreadsPerSlotOption,
    executor_or_exit,
    fail,
    settings_or_exit,
    warn,
)
from app.worker.timing import DATABASE_FILE_EXIT

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)

service_app = typer.Typer()


@service_app.command()
def worker(
    ctx: typer.Context,
    concurrency: ConcurrencyOption = None,
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
    backend: BackendOption = "local",
    address: AddressOption = None,
    num_cpus: NumCpusOption = None,
    num_gpus: NumGpusOption = None,
    max_retries: MaxRetriesOption = None,
    threads_per_slot: ThreadsPerSlotOption = None,
) -> None:
    """Claim queued runs and train them (several processes or hosts never take the same run).

    --backend ray drains the queue onto a Ray cluster, one task per run. SIGTERM/SIGINT stop it
    between steps; its runs go back to the queue and resume elsewhere from their checkpoints."""
    from app.worker.executors import BackendUnavailable, WorkerTiming
    from storage import DatabaseFileChanged

    try:
        timing = WorkerTiming(stale_after_s=stale_after, heartbeat_s=heartbeat_every)
    except ValueError as err:
        fail(str(err))
    settings = settings_or_exit(writable=True)
    executor = executor_or_exit(
        backend or "local",
        settings,
        concurrency=concurrency,
        address=address,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        max_retries=max_retries,
        threads_per_slot=threads_per_slot,
        timing=timing,
        verbose=bool(ctx.obj and ctx.obj.get("verbose")),
    )
    try:
        executor.drain(exit_when_idle=exit_when_idle)
    except BackendUnavailable as err:
        fail(str(err))
    except DatabaseFileChanged as err:  # stopped loudly: it would have written into a lost file
        fail(str(err), code=DATABASE_FILE_EXIT)


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

    loopback = _check_address(address)
    settings = settings_or_exit(writable=True)
    if not loopback:
        warn(
            f"binding {address}: anyone who can reach this port can run and delete experiments. "
            "PSL Studio has no login; put it behind a reverse proxy with authentication"
        )
    typer.echo(
        f"PSL Studio on http://{address}:{port}  (data in {settings.home}; Ctrl-C stops)\n"
        "Warming up (PyTorch, datasets, caches) before serving: the page answers in a few seconds."
    )
    code = DashboardProcesses(settings, address, port, start_worker=not no_worker).run()
    raise typer.Exit(code)


def _check_address(address: str) -> bool:
    """Validate ``--address`` (an IP address or host name); True if it is the loopback only."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        pass
    if not _HOSTNAME.match(address):
        fail(
            f"--address {address[:80]!r} is neither an IP address nor a host name; e.g. 127.0.0.1 or 0.0.0.0"
        )
    return address == "localhost"
