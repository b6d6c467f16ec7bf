"""``psl submit | sweep | runs | show | cancel | delete | export | import | results``: runs in the store."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
import yaml

from app.cli.common import (
    AddressOption,
    BackendOption,
    ConcurrencyOption,
    JsonOption,
    MaxRetriesOption,
    NumCpusOption,
    NumGpusOption,
    RunIdArgument,
    SetOption,
    ThreadsPerSlotOption,
    echo_json,
    executor_or_exit,
    fail,
    get_run_or_exit,
    load_config_or_exit,
    open_store,
    settings_or_exit,
)
from psl_core.config import ConfigError
from psl_core.config_io import load_yaml_text

runs_app = typer.Typer()


@runs_app.command()
def submit(
    config: Annotated[Path, typer.Argument(help="Experiment config (.yaml/.yml/.json).")],
    set_: SetOption = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag the run (repeatable).")] = None,
    json_: JsonOption = False,
) -> None:
    """Queue an experiment for the workers."""
    from app.runs import submit as submit_run

    cfg = load_config_or_exit(config, set_)
    run_id = submit_run(open_store(writable=True), cfg, tags=tag or [])
    if json_:
        echo_json({"run_id": run_id, "name": cfg.name})
        return
    typer.echo(f"queued run #{run_id} ({cfg.name}); start a worker with `psl worker` if none is running")


@runs_app.command()
def sweep(
    config: Annotated[Path, typer.Argument(help="Base experiment config.")],
    grid: Annotated[
        list[str], typer.Option(help="field=[v1,v2,...] (repeatable), e.g. sampling.method=[ugs,fls].")
    ],
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0",
    name: Annotated[str | None, typer.Option(help="Sweep name.")] = None,
    json_: JsonOption = False,
    backend: BackendOption = None,
    concurrency: ConcurrencyOption = None,
    address: AddressOption = None,
    num_cpus: NumCpusOption = None,
    num_gpus: NumGpusOption = None,
    max_retries: MaxRetriesOption = None,
    threads_per_slot: ThreadsPerSlotOption = None,
) -> None:
    """Queue one run per grid point × seed, grouped as a sweep (every point is checked first).

    With --backend the sweep is also run to its end here: local (worker processes on this machine)
    or ray (one Ray task per run on the cluster at --address); exit status 1 if a run did not complete."""
    from app.runs import parse_seed_list, submit_sweep

    cfg = load_config_or_exit(config, None)
    parsed = {}
    for item in grid:
        key, _, raw = item.partition("=")
        try:
            values = load_yaml_text(raw, f"--grid {key.strip()[:80]}") if raw else None
        except ConfigError as err:
            fail(str(err))
        if not key.strip() or not isinstance(values, list):
            fail(f"--grid expects field=[v1,v2,...], got {item!r}")
        parsed[key.strip()] = values
    executor = None
    run_here = {"--concurrency": concurrency, "--address": address, "--num-cpus": num_cpus, "--num-gpus": num_gpus,
                "--max-retries": max_retries, "--threads-per-slot": threads_per_slot}  # fmt: skip
    given = [name for name, value in run_here.items() if value is not None]
    if backend is None and given:
        fail(f"{', '.join(given)} only apply when the sweep runs here: add --backend local or --backend ray")
    if backend is not None:  # options are checked before anything is queued
        executor = executor_or_exit(
            backend,
            settings_or_exit(writable=True),
            concurrency=concurrency,
            address=address,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            max_retries=max_retries,
            threads_per_slot=threads_per_slot,
            on_result=None if json_ else lambda run_id, status: typer.echo(f"  run #{run_id}: {status}"),
        )
    store = open_store(writable=True)
    try:
        seed_list = parse_seed_list(seeds)
        sweep_id, ids = submit_sweep(store, cfg, parsed, seed_list, name=name)
    except (ConfigError, ValueError) as err:
        fail(str(err))
    if not json_:
        typer.echo(f"queued sweep #{sweep_id}: runs {', '.join(f'#{i}' for i in ids)}")
    if executor is None:
        if json_:
            echo_json({"sweep_id": sweep_id, "run_ids": ids})
        return
    _run_sweep_here(store, executor, sweep_id, ids, json_)


def _run_sweep_here(store, executor, sweep_id: int, ids: list[int], json_: bool) -> None:  # noqa: ANN001
    """Drain the sweep's runs with ``executor``; print where each ran; exit 1 unless all completed."""
    from collections import Counter

    from app.worker.executors import BackendUnavailable

    if not json_:
        typer.echo(f"running sweep #{sweep_id} on the {executor.backend} backend")
    try:
        executor.drain(sweep_id=sweep_id, exit_when_idle=True)
    except BackendUnavailable as err:
        fail(f"{err} (the runs stay queued for `psl worker`)")
    records = [store.get_run(run_id) for run_id in ids]
    counts = Counter(r.status for r in records)
    if json_:
        echo_json({"sweep_id": sweep_id, "run_ids": ids, "runs": [_run_summary(r) for r in records]})
    else:
        for r in records:
            typer.echo(f"  #{r.id} {r.status:<10} {_where(r)}  {r.name}")
        typer.echo(
            "sweep #{}: {}".format(
                sweep_id, ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            )
        )
    if counts.get("completed", 0) != len(records):
        raise typer.Exit(1)


def _where(record) -> str:  # noqa: ANN001
    from app.formatting import format_placement

    return format_placement(record.host, record.backend, record.slot)


def _method_of(config: dict) -> str | None:
    """The sampling method of a PSL run, the paradigm of any other."""
    paradigm = (config.get("paradigm") or {}).get("name", "psl")
    return (config.get("sampling") or {}).get("method") if paradigm == "psl" else paradigm


def _run_summary(record) -> dict:
    config = record.config if isinstance(record.config, dict) else {}
    return {
        "id": record.id,
        "name": record.name,
        "status": record.status,
        "progress": record.progress or 0.0,
        "method": _method_of(config),
        "clients": (config.get("partition") or {}).get("num_clients"),
        "tags": record.tags,
        "sweep_id": record.sweep_id,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
        "error": record.error,
        "host": record.host,
        "backend": record.backend,
        "slot": record.slot,
        "attempts": record.attempts,
    }


@runs_app.command()
def runs(
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only runs with this tag.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many (newest first).")] = 50,
    json_: JsonOption = False,
) -> None:
    """List runs as a table."""
    from storage import StoreValueError

    try:
        records = open_store().list_runs(status=status, tag=tag, limit=limit)
    except StoreValueError as err:
        fail(str(err))
    if json_:
        echo_json([_run_summary(r) for r in records])
        return
    if not records:
        typer.echo("no runs")
        return
    typer.echo(f"{'id':>5}  {'status':<10} {'progress':>8}  {'method':<11} {'clients':>7}  name")
    for r in records:
        s = _run_summary(r)
        typer.echo(
            f"{r.id:>5}  {r.status:<10} {s['progress']:>8.0%}  {s['method'] or '?':<11} "
            f"{s['clients'] if s['clients'] is not None else '?'!s:>7}  {r.name}"
        )


@runs_app.command()
def show(run_id: RunIdArgument, json_: JsonOption = False) -> None:
    """Show one run: status, config and its latest metrics."""
    store = open_store()
    r = get_run_or_exit(store, run_id)
    epochs = store.read_epoch_metrics(run_id)
    if json_:
        record = dataclasses.asdict(r)
        record["epochs"] = epochs.to_dict("records")
        echo_json(record)
        return
    typer.echo(
        f"run #{r.id} {r.name}\n  status {r.status}, progress {(r.progress or 0):.0%}, attempts {r.attempts}"
        f", executes on {_where(r)}"
    )
    if r.error:
        typer.echo(f"  error: {r.error}")
    if len(epochs):
        last = epochs.iloc[-1]
        typer.echo(
            f"  epoch {int(last['epoch'])}: train loss {last['train_loss']:.4f}, test acc {last['test_acc']}"
        )
    typer.echo(yaml.safe_dump(r.config, sort_keys=False))
    if r.traceback:
        typer.echo(r.traceback)


@runs_app.command()
def cancel(run_id: RunIdArgument) -> None:
    """Cancel a queued or running run (a running one stops between steps)."""
    store = open_store(writable=True)
    get_run_or_exit(store, run_id)
    store.request_cancel(run_id)
    typer.echo(f"cancel requested for run #{run_id}")


@runs_app.command()
def delete(run_ids: Annotated[list[int], typer.Argument(min=1, max=2**31 - 1, help="Run ids.")]) -> None:
    """Delete runs with their metrics and checkpoint files (a running run: cancel it first)."""
    from app.runs import delete_run
    from app.settings import get_settings
    from storage import RunIsActive

    store = open_store(writable=True)
    refused = []
    for run_id in dict.fromkeys(run_ids):
        try:
            delete_run(store, get_settings(), run_id)
        except KeyError:
            refused.append(f"there is no run #{run_id}")
        except RunIsActive as err:
            refused.append(str(err))
        else:
            typer.echo(f"deleted run #{run_id}")
    if refused:
        fail("; ".join(refused))


@runs_app.command("export")
def export_run(
    run_id: RunIdArgument,
    out: Annotated[Path | None, typer.Option(help="Bundle path (default run-<id>.zip).")] = None,
) -> None:
    """Write a run's config and metrics to a zip bundle."""
    from app.bundles import export_bundle

    store = open_store()
    get_run_or_exit(store, run_id)
    path = out or Path(f"run-{run_id}.zip")
    try:
        path.write_bytes(export_bundle(store, run_id))
    except OSError as err:
        fail(f"cannot write {path}: {err.strerror or err}")
    typer.echo(f"wrote {path}")


@runs_app.command("import")
def import_run(bundle: Annotated[Path, typer.Argument(help="A bundle written by `psl export`.")]) -> None:
    """Create a run from an exported bundle."""
    from app.bundles import BundleError, import_bundle

    if not bundle.is_file():
        fail(f"bundle {bundle} does not exist")
    try:
        run_id = import_bundle(open_store(writable=True), bundle)
    except (BundleError, ConfigError) as err:
        fail(str(err))
    typer.echo(f"imported as run #{run_id}")


@runs_app.command("results")
def results_json(
    run_id: RunIdArgument,
    json_: Annotated[bool, typer.Option("--json/--table", help="JSON (default) or a text table.")] = True,
) -> None:
    """Print a run's epoch metrics (JSON by default, for scripts)."""
    store = open_store()
    get_run_or_exit(store, run_id)
    epochs = store.read_epoch_metrics(run_id)
    if json_:
        echo_json(epochs.to_dict("records"))
    else:
        typer.echo(epochs.to_string(index=False) if len(epochs) else "no epoch metrics yet")
