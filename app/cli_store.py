"""``psl`` commands of the store, the worker and the dashboard (registered on app.cli.app)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from app.cli import app, fail, load_config_or_exit
from psl_core.config import ConfigError


def open_store():
    from storage import Store

    return Store()


def get_run_or_exit(store, run_id: int):
    try:
        return store.get_run(run_id)
    except KeyError:
        fail(f"there is no run #{run_id}; `psl runs` lists them")


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Worker processes to start.")] = 1,
    stale_after: Annotated[
        float, typer.Option(help="Seconds without heartbeat before a run is reclaimed.")
    ] = 30.0,
    exit_when_idle: Annotated[bool, typer.Option(help="Stop when the queue is empty.")] = False,
) -> None:
    """Claim queued runs and train them (several processes never take the same run)."""
    from app.worker import run_worker

    if concurrency == 1:
        run_worker(stale_after_s=stale_after, exit_when_idle=exit_when_idle)
        return
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(
            target=run_worker, kwargs={"stale_after_s": stale_after, "exit_when_idle": exit_when_idle}
        )
        for _ in range(concurrency)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()


@app.command()
def submit(
    config: Annotated[Path, typer.Argument(help="Experiment config (.yaml/.yml/.json).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field: key.path=value.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag the run (repeatable).")] = None,
) -> None:
    """Queue an experiment for the workers."""
    from app.runs import submit as submit_run

    cfg = load_config_or_exit(config, set_)
    run_id = submit_run(open_store(), cfg, tags=tag or [])
    typer.echo(f"queued run #{run_id} ({cfg.name}); start a worker with `psl worker` if none is running")


@app.command()
def sweep(
    config: Annotated[Path, typer.Argument(help="Base experiment config.")],
    grid: Annotated[
        list[str], typer.Option(help="field=[v1,v2,...] (repeatable), e.g. sampling.method=[ugs,fls].")
    ],
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0",
    name: Annotated[str | None, typer.Option(help="Sweep name.")] = None,
) -> None:
    """Queue one run per grid point × seed, grouped as a sweep."""
    from app.runs import submit_sweep

    cfg = load_config_or_exit(config, None)
    parsed = {}
    for item in grid:
        key, _, raw = item.partition("=")
        values = yaml.safe_load(raw) if raw else None
        if not key or not isinstance(values, list):
            fail(f"--grid expects field=[v1,v2,...], got {item!r}")
        parsed[key.strip()] = values
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        sweep_id, ids = submit_sweep(open_store(), cfg, parsed, seed_list, name=name)
    except (ConfigError, ValueError) as err:
        fail(str(err))
    typer.echo(f"queued sweep #{sweep_id}: runs {', '.join(f'#{i}' for i in ids)}")


@app.command()
def runs(
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only runs with this tag.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many (newest first).")] = 50,
) -> None:
    """List runs as a table."""
    records = open_store().list_runs(status=status, tag=tag, limit=limit)
    if not records:
        typer.echo("no runs")
        return
    header = f"{'id':>5}  {'status':<10} {'progress':>8}  {'method':<11} {'clients':>7}  name"
    typer.echo(header)
    for r in records:
        method = r.config.get("sampling", {}).get("method", "?")
        k = r.config.get("partition", {}).get("num_clients", "?")
        typer.echo(f"{r.id:>5}  {r.status:<10} {(r.progress or 0):>8.0%}  {method:<11} {k!s:>7}  {r.name}")


@app.command()
def show(run_id: Annotated[int, typer.Argument(help="Run id.")]) -> None:
    """Show one run: status, config and its latest metrics."""
    store = open_store()
    r = get_run_or_exit(store, run_id)
    typer.echo(
        f"run #{r.id} {r.name}\n  status {r.status}, progress {(r.progress or 0):.0%}, attempts {r.attempts}"
    )
    if r.error:
        typer.echo(f"  error: {r.error}")
    epochs = store.read_epoch_metrics(run_id)
    if len(epochs):
        last = epochs.iloc[-1]
        typer.echo(
            f"  epoch {int(last['epoch'])}: train loss {last['train_loss']:.4f}, test acc {last['test_acc']}"
        )
    typer.echo(yaml.safe_dump(r.config, sort_keys=False))
    if r.traceback:
        typer.echo(r.traceback)


@app.command()
def cancel(run_id: Annotated[int, typer.Argument(help="Run id.")]) -> None:
    """Cancel a queued or running run (a running one stops between steps)."""
    store = open_store()
    get_run_or_exit(store, run_id)
    store.request_cancel(run_id)
    typer.echo(f"cancel requested for run #{run_id}")


@app.command("export")
def export_run(
    run_id: Annotated[int, typer.Argument(help="Run id.")],
    out: Annotated[Path | None, typer.Option(help="Bundle path (default run-<id>.zip).")] = None,
) -> None:
    """Write a run's config and metrics to a zip bundle."""
    from app.runs import export_bundle

    store = open_store()
    get_run_or_exit(store, run_id)
    path = out or Path(f"run-{run_id}.zip")
    path.write_bytes(export_bundle(store, run_id))
    typer.echo(f"wrote {path}")


@app.command("import")
def import_run(bundle: Annotated[Path, typer.Argument(help="A bundle written by `psl export`.")]) -> None:
    """Create a run from an exported bundle."""
    from app.runs import BundleError, import_bundle

    if not bundle.exists():
        fail(f"bundle {bundle} does not exist")
    try:
        run_id = import_bundle(open_store(), bundle.read_bytes())
    except (BundleError, ConfigError) as err:
        fail(str(err))
    typer.echo(f"imported as run #{run_id}")


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8501,
    address: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    no_worker: Annotated[bool, typer.Option(help="Do not start a background worker.")] = False,
) -> None:
    """Serve the dashboard (and make sure a local worker is running)."""
    from app.runs import ensure_worker
    from app.worker import psl_home

    if not no_worker:
        ensure_worker(psl_home(), os.environ.get("PSL_DATABASE_URL"))
    entry = Path(__file__).resolve().parent / "dashboard.py"
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(entry),
        "--server.headless",
        "true",
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",  # no "Deploy" button: this is a local tool
    ]
    typer.echo(f"PSL Studio on http://{address}:{port}")
    raise typer.Exit(subprocess.call(cmd))


@app.command()
def advise(
    config: Annotated[Path, typer.Argument(help="Experiment config (its model, device mix and batch).")],
    budget: Annotated[list[str] | None, typer.Option(help="Memory budget: device=MiB (repeatable).")] = None,
) -> None:
    """Split advisor: the cut per device that minimises expected step time within its memory."""
    from app.previews import split_advice
    from psl_core.data import DATASETS
    from psl_core.models import profile_arch

    cfg = load_config_or_exit(config, None)
    budgets = {}
    for item in budget or []:
        device, _, mib = item.partition("=")
        try:
            budgets[device] = float(mib)
        except ValueError:
            fail(f"--budget expects device=MiB (e.g. rpi3bplus=256), got {item!r}")
    info = DATASETS[cfg.data.dataset]
    profile = profile_arch(cfg.model.arch, tuple(info.input_shape), info.num_classes)
    try:
        best, table = split_advice(profile, cfg, budgets)
    except ValueError as err:
        fail(str(err))
    typer.echo(table.to_string(index=False))
    typer.echo("\nbest cut per device: " + ", ".join(f"{d} → {c}" for d, c in best.items()))


@app.command("results")
def results_json(run_id: Annotated[int, typer.Argument(help="Run id.")]) -> None:
    """Print a run's epoch metrics as JSON (for scripts)."""
    store = open_store()
    get_run_or_exit(store, run_id)
    typer.echo(json.dumps(store.read_epoch_metrics(run_id).to_dict("records"), default=str))
