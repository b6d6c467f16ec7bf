"""The ``psl`` command line: one Typer app joined from the command groups' sub-apps.

experiment.py  run, config example|check, schema, advise   (this machine, no store)
runs.py        submit, sweep, runs, show, cancel, export, import, results   (the store)
service.py     worker, ui   (long-running processes)

Unexpected errors end with one line and exit status 1 (the traceback with ``-v``); errors the user
can fix exit with status 2 and say what to change.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from app.cli.experiment import config_app, experiment_app
from app.cli.runs import runs_app
from app.cli.service import service_app

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="PSL Studio: parallel split learning experiments.",
)
app.add_typer(experiment_app)
app.add_typer(config_app, name="config")
app.add_typer(runs_app)
app.add_typer(service_app)

VERBOSE_FLAGS = ("-v", "--verbose")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"psl-studio {version('psl-studio')}")
        except PackageNotFoundError:
            typer.echo("psl-studio (not installed)")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Log everything; tracebacks on errors.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    from app.logs import configure_logging
    from app.settings import SettingsError, configure_core, get_settings

    ctx.obj = {"verbose": verbose}
    try:
        settings = get_settings()
    except SettingsError:
        settings = None  # the command reports it when it needs the settings
    if settings is not None:
        configure_core(settings)
    is_worker = ctx.invoked_subcommand == "worker"
    configure_logging(settings, verbose=verbose, file_name="worker.log" if is_worker else None)


def _hoist_verbose(argv: list[str]) -> tuple[list[str], bool]:
    """``psl run x.yaml -v`` works like ``psl -v run x.yaml`` (the flag belongs to the root)."""
    head = argv[: argv.index("--")] if "--" in argv else argv
    verbose = any(a in VERBOSE_FLAGS for a in head)
    if not verbose:
        return argv, False
    rest = [a for a in head if a not in VERBOSE_FLAGS] + argv[len(head) :]
    return ["--verbose", *rest], True


def main(argv: list[str] | None = None) -> None:
    args, verbose = _hoist_verbose(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=args, prog_name="psl")
    except SystemExit:
        raise
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if verbose:
            raise
        typer.echo(f"error: {type(err).__name__}: {err} (run with -v for the traceback)", err=True)
        sys.exit(1)
