"""What every ``psl`` command shares: the user-facing error exit, config loading through the one
validation path, the store of the current settings, and JSON output for scripts.

Errors the user can fix (bad config, missing file, unknown run) exit with status 2 and a message
that says what to change; nothing stored is touched by a refused command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from app.settings import Settings, SettingsError, ensure_home, get_settings
from psl_core.config import ConfigError

if TYPE_CHECKING:
    from psl_core.config import ExperimentConfig
    from storage import Store

# Options several commands take, declared once so they read the same everywhere.
SetOption = Annotated[list[str] | None, typer.Option("--set", help="Override a field: key.path=value.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of text.")]
# Where runs execute (psl worker, psl sweep): app/worker/executors.py.
MAX_LOCAL_PROCESSES = 64
BackendOption = Annotated[
    str | None, typer.Option(help="Where runs execute: local (worker processes here) or ray (a Ray cluster).")
]
ConcurrencyOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=4096,
        help="Runs at once (local: processes, default 1; ray: tasks, default what the cluster holds).",
    ),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        help="Ray cluster: auto (the running one), ray://HOST:10001, HOST:6379; default: Ray on this machine."
    ),
]
NumCpusOption = Annotated[float | None, typer.Option(help="Ray: CPUs reserved per run (default 1).")]
NumGpusOption = Annotated[
    float | None,
    typer.Option(help="Ray: GPUs reserved per run (default: 1 if its config says device cuda, else 0)."),
]
MaxRetriesOption = Annotated[
    int | None,
    typer.Option(help="Ray: re-runs of a task whose process died, resuming from its checkpoint (default 3)."),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a user-facing error and exit (no traceback: the message says what to change)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def settings_or_exit(*, writable: bool = False) -> Settings:
    """The resolved settings; with ``writable`` the home folders are created (clear error if they can't be)."""
    try:
        settings = get_settings()
        return ensure_home(settings) if writable else settings
    except SettingsError as err:
        fail(str(err))


def open_store(*, writable: bool = False) -> Store:
    """The store of the current settings (PSL_DATABASE_URL, else the SQLite file in PSL_HOME).

    Reading commands on a read-only home open the database read-only (no migration, no WAL
    files); a command that writes there fails with one line saying so."""
    from storage import Store, redacted_url

    settings = settings_or_exit(writable=writable)
    url = settings.database_url
    read_only = not writable and not _sqlite_folder_writable(url)
    try:
        return Store(url, read_only=read_only)
    except Exception as err:  # noqa: BLE001 - any driver error becomes one line that says where
        fail(f"cannot open the database {redacted_url(url)}: {_first_line(err)}")


def _sqlite_folder_writable(url: str) -> bool:
    """False only for a SQLite file whose folder exists and refuses new files (a read-only home):
    SQLite needs to create its journal files next to the database even to read it in WAL mode."""
    import os

    from storage import sqlite_file

    database = sqlite_file(url)
    if database is None:
        return True
    folder = Path(database).parent
    return not folder.exists() or os.access(folder, os.W_OK | os.X_OK)


def load_config_or_exit(path: Path, overrides: list[str] | None) -> ExperimentConfig:
    """Read, validate and check a config file (the same checks as the dashboard and the worker).

    Errors exit with status 2, one line per problem naming the field; warnings are printed and kept.
    """
    from psl_core.config_io import apply_override_strings, read_config_dict
    from psl_core.validation import validate_config

    try:
        data = apply_override_strings(read_config_dict(path), overrides)
        config, warnings = validate_config(data)
    except ConfigError as err:
        fail(str(err))
    for problem in warnings:
        warn(problem.text())
    return config


def executor_or_exit(
    backend: str,
    settings: Settings,
    *,
    concurrency: int | None,
    address: str | None,
    num_cpus: float | None,
    num_gpus: float | None,
    max_retries: int | None,
    timing=None,  # noqa: ANN001 - app.worker.executors.WorkerTiming
    verbose: bool = False,
    on_result=None,  # noqa: ANN001 - callable(run_id, status)
):  # noqa: ANN201 - an app.worker.executors.Executor
    """The executor the options describe; a clear exit for options that do not fit the backend, or
    for a checkpoint location the workers could not use."""
    from app.worker.checkpoints import CheckpointLocation
    from app.worker.executors import BACKENDS, LocalExecutor, WorkerTiming

    if backend not in BACKENDS:
        fail(f"--backend {backend!r} is not a backend; use one of {', '.join(BACKENDS)}")
    try:
        CheckpointLocation(settings)
    except SettingsError as err:
        fail(str(err))
    timing = timing or WorkerTiming()
    if backend == "local":
        ray_only = {
            "--address": address,
            "--num-cpus": num_cpus,
            "--num-gpus": num_gpus,
            "--max-retries": max_retries,
        }
        given = [name for name, value in ray_only.items() if value is not None]
        if given:
            fail(f"{', '.join(given)} only apply to --backend ray")
        if (concurrency or 1) > MAX_LOCAL_PROCESSES:
            fail(
                f"--concurrency {concurrency} is too many processes for one machine (at most {MAX_LOCAL_PROCESSES})"
            )
        return LocalExecutor(settings, concurrency=concurrency or 1, timing=timing, verbose=verbose)
    from app.worker.executors import BackendUnavailable
    from app.worker.ray_executor import DEFAULT_MAX_RETRIES, RayExecutor, RayOptions, import_ray

    try:
        import_ray()
    except BackendUnavailable as err:
        fail(str(err))
    try:
        options = RayOptions(
            address=address,
            num_cpus=1.0 if num_cpus is None else num_cpus,
            num_gpus=num_gpus,
            max_retries=DEFAULT_MAX_RETRIES if max_retries is None else max_retries,
        )
    except ValueError as err:
        fail(str(err))
    return RayExecutor(settings, options=options, concurrency=concurrency, timing=timing, on_result=on_result)


def get_run_or_exit(store: Store, run_id: int):
    try:
        return store.get_run(run_id)
    except KeyError:
        fail(f"there is no run #{run_id}; `psl runs` lists them")


# Run ids as arguments: positive and within the database's id column (larger ones cannot exist).
RunIdArgument = Annotated[int, typer.Argument(min=1, max=2**31 - 1, help="Run id.")]


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, "orig", None) or err).strip()
    return text.splitlines()[0] if text else type(err).__name__
