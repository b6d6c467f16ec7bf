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
    from app.formatting import safe_file_stem
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
    """Per device: the cut fastest for one of its clients alone, within its memory (see also psl plan)."""
    from app.ui.views.planner import device_advice
    from psl_core.planner import PlanningError

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
    try:
        best, table = device_advice(cfg, budgets)
    except PlanningError as err:
        fail(str(err))
    by_device = {label.split("(")[-1].rstrip(")"): cut for label, cut in best.items()}
    shown = by_device if len(by_device) == len(best) else best
    if json_:
        echo_json({"best_cut": shown, "table": table.to_dict("records")})
        return
    typer.echo(table.to_string(index=False))
    typer.echo("\nbest cut per device: " + ", ".join(f"{d} → {c}" for d, c in shown.items()))


@experiment_app.command()
def plan(
    config: Annotated[Path, typer.Argument(help="Experiment config (its model, device mix and schedule).")],
    uplink_mbps: Annotated[
        float | None,
        typer.Option("--uplink-mbps", help="Shared uplink W in Mbit/s (default: the config's, else none)."),
    ] = None,
    target_s: Annotated[
        float | None, typer.Option("--target-s", help="Step-time target: fail and say what would meet it.")
    ] = None,
    cap: Annotated[
        list[str] | None, typer.Option(help="Cap a device's uplink rate: device=Mbit/s (repeatable).")
    ] = None,
    front: Annotated[bool, typer.Option(help="Also compute the step-time/energy front.")] = True,
    per_client: Annotated[
        bool,
        typer.Option(
            "--per-client",
            help="A cut and share for every client (exact per client; cannot be written into a config, "
            "which holds one per device group).",
        ),
    ] = False,
    write: Annotated[
        Path | None, typer.Option(help="Write the config with the exact plan applied to this file.")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Split planner: cut and uplink share per device group, four methods side by side, energy front."""
    import pandas as pd

    from app.ui.views.planner import applied_config, client_sizes, plan_config, report_json
    from psl_core.config_io import config_to_yaml
    from psl_core.planner import PlanningError

    cfg = load_config_or_exit(config, None)
    if uplink_mbps is not None and not uplink_mbps > 0:
        fail(f"--uplink-mbps must be a positive number of Mbit/s, got {uplink_mbps:g}")
    caps = {}
    for item in cap or []:
        device, _, mbps = item.partition("=")
        try:
            caps[device] = float(mbps)
        except ValueError:
            fail(f"--cap expects device=Mbit/s (e.g. rpi4b=20), got {item!r}")
    sizes, why = client_sizes(cfg)
    try:
        report = plan_config(
            cfg,
            uplink_mbps=uplink_mbps,
            sizes=sizes,
            target_s=target_s,
            with_front=front,
            caps_mbps=caps,
            per_client=per_client,
        )
        planned = applied_config(report) if write is not None else None
    except PlanningError as err:
        fail(str(err))
    if why:
        report.notes.insert(0, why)
    if planned is not None:
        try:
            write.write_text(config_to_yaml(planned))
        except OSError as err:
            fail(f"cannot write {write}: {err.strerror or err}")
    if json_:
        echo_json(report_json(report) | {"written": None if write is None else str(write)})
        return
    w = report.instance.uplink_bps
    typer.echo(
        f"{cfg.name}: {report.instance.num_clients} clients"
        + (", planned one by one, " if per_client else f" in {report.instance.num_classes} group(s), ")
        + (f"shared uplink {w / 1e6:g} Mbit/s" if w else "each device on its own uplink")
    )
    typer.echo("\n" + pd.DataFrame(_method_rows(report.methods)).to_string(index=False))
    unit = "client" if per_client else "group"
    rows = pd.DataFrame(_group_rows(report.groups)).rename(columns={"group": unit})
    typer.echo(f"\nexact plan per {unit}:\n" + rows.to_string(index=False))
    if report.pareto is not None:
        typer.echo(f"\nenergy front: {len(report.pareto.plans)} plans. {report.pareto.explanation}")
    for note in report.notes:
        typer.echo(f"note: {note}")
    if write is not None:
        typer.echo(f"\nconfig with the exact plan written to {write}")


def _method_rows(methods) -> list[dict]:
    rows = []
    for r in methods.to_dict("records"):
        if not r["feasible"]:
            rows.append({"method": r["method"], "step (s)": "no common cut fits every device"})
            continue
        rows.append(
            {
                "method": r["method"],
                "step (s)": f"{r['step_time_s']:.4g}",
                "× exact": f"{r['vs_exact']:.4f}",
                "energy (J)": f"{r['energy_j']:.4g}",
                "cuts": r["cuts"],
                "plan (s)": f"{r['plan_seconds']:.3f}",
            }
        )
    return rows


def _group_rows(groups) -> list[dict]:
    return [
        {
            "group": r["class"],
            "clients": r["clients"],
            "samples/step": f"{r['samples_per_step']:.3g}",
            "cut": f"{r['cut']} ({r['after_block']})",
            "share": "-" if r["share"] is None else f"{r['share']:.4g}",
            "uplink (Mbit/s)": f"{r['uplink_mbps']:.4g}",
            "memory (MiB)": f"{r['client_memory_mib']:.3g} / {r['memory_mib']:.4g}",
        }
        for r in groups.to_dict("records")
    ]
