"""``psl run``, ``psl config …``, ``psl schema``, ``psl advise``: experiments on this machine, no store."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import JsonOption, SetOption, echo_json, fail, load_config_or_exit, stdout_is_terminal

experiment_app = typer.Typer()
config_app = typer.Typer(no_args_is_help=True, help="Write or inspect experiment configs.")


@experiment_app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Experiment config (.yaml/.yml/.json).")],
    set_: SetOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for metrics CSV (default runs/<name>-<time>).")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Train one experiment in this process, with a progress bar; metrics go to CSV files."""
    from app.cli.sinks import CsvSink, RichProgressSink, render_table, summary_rows
    from app.runs import safe_file_stem
    from psl_core.config_io import config_to_yaml
    from psl_core.engine import FanoutSink, MemorySink, TrainingDivergedError, run_experiment

    cfg = load_config_or_exit(config, set_)
    out_dir = out or Path("runs") / f"{safe_file_stem(cfg.name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        csv_sink = CsvSink(out_dir)
        (out_dir / "config.yaml").write_text(config_to_yaml(cfg))
    except OSError as err:
        fail(f"cannot write metrics to {out_dir}: {err.strerror or err}; choose another folder with --out")
    memory = MemorySink()
    progress = RichProgressSink() if not quiet and stdout_is_terminal() else None
    sinks = [csv_sink, memory] + ([progress] if progress else [])
    try:
        result = run_experiment(cfg, FanoutSink(*sinks))
    except (ValueError, FileNotFoundError, TrainingDivergedError) as err:
        fail(f"{err}\n(metrics up to here are in {out_dir}/)")
    finally:
        csv_sink.close()
        if progress:
            progress.finish()
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
    set_: SetOption = None,
) -> None:
    """Validate a config file (every check the dashboard and worker make) and print it with defaults."""
    from psl_core.config_io import config_to_yaml

    cfg = load_config_or_exit(config, set_)
    sys.stdout.write(config_to_yaml(cfg))


@experiment_app.command()
def schema() -> None:
    """Print the JSON schema of the experiment config."""
    from psl_core.config import ExperimentConfig

    echo_json(ExperimentConfig.model_json_schema())


@experiment_app.command()
def advise(
    config: Annotated[Path, typer.Argument(help="Experiment config (its model, device mix and batch).")],
    budget: Annotated[list[str] | None, typer.Option(help="Memory budget: device=MiB (repeatable).")] = None,
    json_: JsonOption = False,
) -> None:
    """Split advisor: the cut per device that minimises expected step time within its memory."""
    from app.ui.views.previews import split_advice
    from psl_core.data import DATASETS
    from psl_core.models import profile_arch

    cfg = load_config_or_exit(config, None)
    budgets = {}
    for item in budget or []:
        device, _, mib = item.partition("=")
        try:
            value = float(mib)
        except ValueError:
            value = float("nan")
        if not device.strip() or not math.isfinite(value) or value <= 0:
            fail(
                f"--budget expects device=MiB with a positive number of MiB (e.g. rpi3bplus=256), got {item[:80]!r}"
            )
        budgets[device.strip()] = value
    info = DATASETS[cfg.data.dataset]
    profile = profile_arch(cfg.model.arch, tuple(info.input_shape), info.num_classes)
    try:
        best, table = split_advice(profile, cfg, budgets)
    except ValueError as err:
        fail(str(err))
    if json_:
        echo_json({"best_cut": best, "table": table.to_dict("records")})
        return
    typer.echo(table.to_string(index=False))
    typer.echo("\nbest cut per device: " + ", ".join(f"{d} → {c}" for d, c in best.items()))
