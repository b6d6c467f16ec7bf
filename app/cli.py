"""The ``psl`` command line. Each command is thin: it parses arguments and calls into app/ or psl_core.

Errors the user can fix (bad config, missing file, unknown run) exit with status 2 and a message
that says what to change; nothing stored is touched by a refused command.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from psl_core.config import ConfigError, ExperimentConfig

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="PSL Studio: parallel split learning experiments."
)
config_app = typer.Typer(no_args_is_help=True, help="Write or inspect experiment configs.")
app.add_typer(config_app, name="config")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a user-facing error and exit (no traceback: the message says what to change)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_config_or_exit(path: Path, overrides: list[str] | None) -> ExperimentConfig:
    from psl_core.config_io import load_config_file

    try:
        return load_config_file(path, overrides)
    except ConfigError as err:
        fail(str(err))


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Experiment config (.yaml/.yml/.json).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field: key.path=value.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for metrics CSV (default runs/<name>-<time>).")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Train one experiment in this process, with a progress bar; metrics go to CSV files."""
    from app.cli_run import CsvSink, ProgressSink, render_table, summary_rows
    from psl_core.config_io import config_to_yaml
    from psl_core.engine import FanoutSink, MemorySink, TrainingDivergedError, run_experiment

    cfg = load_config_or_exit(config, set_)
    out_dir = out or Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    csv_sink = CsvSink(out_dir)
    (out_dir / "config.yaml").write_text(config_to_yaml(cfg))
    memory = MemorySink()
    sinks = [csv_sink, memory] + ([] if quiet else [ProgressSink()])
    try:
        result = run_experiment(cfg, FanoutSink(*sinks))
    except (ValueError, FileNotFoundError, TrainingDivergedError) as err:
        fail(f"{err}\n(metrics up to here are in {out_dir}/)")
    finally:
        csv_sink.close()
        if not quiet:
            sinks[-1].finish()
    sim_time = memory.steps[-1]["sim_time"] if memory.steps else 0.0
    typer.echo(f"\n{cfg.name}: {result.status}")
    typer.echo(render_table(summary_rows(memory.epochs, result.steps, sim_time)))
    typer.echo(f"\nmetrics written to {out_dir}/ (steps.csv, epochs.csv, clients.csv)")


@config_app.command("example")
def config_example() -> None:
    """Print the default config as documented YAML."""
    from psl_core.config_io import documented_example

    sys.stdout.write(documented_example())


@config_app.command("check")
def config_check(
    config: Annotated[Path, typer.Argument(help="Config file to validate.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field: key.path=value.")] = None,
) -> None:
    """Validate a config file and print it with every default filled in."""
    from psl_core.config_io import config_to_yaml

    cfg = load_config_or_exit(config, set_)
    sys.stdout.write(config_to_yaml(cfg))


@app.command()
def schema() -> None:
    """Print the JSON schema of the experiment config."""
    typer.echo(json.dumps(ExperimentConfig.model_json_schema(), indent=2))


def register_extra_commands() -> None:
    """Commands of the store, the worker and the dashboard live in their own modules."""
    from app import cli_store  # noqa: F401  (registers on import)


def main() -> None:
    register_extra_commands()
    app()
