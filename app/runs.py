"""Run services shared by the CLI and the dashboard: submit, sweep, re-run, export/import, worker."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

from psl_core.config import ExperimentConfig, apply_overrides, parse_config
from psl_core.engine import steps_per_epoch
from psl_core.sweep import sweep_configs
from storage import Store

BUNDLE_VERSION = 1


def submit(
    store: Store, config: ExperimentConfig, *, tags=(), notes: str = "", sweep_id: int | None = None
) -> int:
    """Store a validated config as a queued run; returns its id."""
    return store.create_run(
        name=config.name,
        config=config.model_dump(mode="json"),
        seed=config.seed,
        tags=list(tags),
        notes=notes,
        sweep_id=sweep_id,
    )


def submit_sweep(
    store: Store,
    base: ExperimentConfig,
    grid: dict[str, list[Any]],
    seeds: list[int],
    *,
    name: str | None = None,
    tags=(),
) -> tuple[int, list[int]]:
    """Validate every point first (nothing is stored if one is invalid), then queue them as one sweep."""
    configs = sweep_configs(base, grid, seeds)
    sweep_id = store.create_sweep(
        name or base.name, {"base": base.model_dump(mode="json"), "grid": grid, "seeds": seeds}
    )
    ids = [submit(store, c, tags=tags, sweep_id=sweep_id) for c in configs]
    return sweep_id, ids


def rerun(store: Store, run_id: int, overrides: dict[str, Any] | None = None) -> int:
    """Queue a copy of a stored run, with edits (validated before anything is stored)."""
    record = store.get_run(run_id)
    config = apply_overrides(parse_config(record.config), overrides or {})
    return submit(store, config, tags=record.tags, notes=f"re-run of #{run_id}")


def planned_steps(config: ExperimentConfig, client_sizes) -> int:
    t = steps_per_epoch(
        config.sampling.method, client_sizes, config.sampling.batch_size, config.sampling.per_client_batch
    )
    if config.training.max_steps_per_epoch:
        t = min(t, config.training.max_steps_per_epoch)
    return t * config.training.epochs


# ---------------------------------------------------------------- export / import
def export_bundle(store: Store, run_id: int) -> bytes:
    """A zip with run.json (record + config), steps.csv, epochs.csv, clients.csv, events.json."""
    record = store.get_run(run_id)
    run = json.loads(json.dumps(dataclasses.asdict(record), default=str))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bundle.json", json.dumps({"version": BUNDLE_VERSION, "format": "psl-studio-run"}))
        z.writestr("run.json", json.dumps(run, indent=2))
        z.writestr("steps.csv", store.read_step_metrics(run_id).to_csv(index=False))
        z.writestr("epochs.csv", store.read_epoch_metrics(run_id).to_csv(index=False))
        z.writestr("clients.csv", store.read_client_stats(run_id).to_csv(index=False))
        events = [dataclasses.asdict(e) for e in store.read_events(run_id)]
        z.writestr("events.json", json.dumps(events, indent=2, default=str))
    return buf.getvalue()


class BundleError(ValueError):
    pass


def import_bundle(store: Store, data: bytes) -> int:
    """Create a new run from an exported bundle; the bundle is checked fully before anything is stored."""
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        meta = json.loads(z.read("bundle.json"))
        run = json.loads(z.read("run.json"))
        steps = (
            pd.read_csv(io.BytesIO(z.read("steps.csv"))) if z.read("steps.csv").strip() else pd.DataFrame()
        )
        epochs = (
            pd.read_csv(io.BytesIO(z.read("epochs.csv"))) if z.read("epochs.csv").strip() else pd.DataFrame()
        )
        clients = (
            pd.read_csv(io.BytesIO(z.read("clients.csv")))
            if z.read("clients.csv").strip()
            else pd.DataFrame()
        )
        events = json.loads(z.read("events.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as err:
        raise BundleError(
            f"not a PSL Studio run bundle ({err}); export one with `psl export RUN_ID`"
        ) from None
    if meta.get("format") != "psl-studio-run" or meta.get("version") != BUNDLE_VERSION:
        raise BundleError(
            f"unsupported bundle {meta}; expected format psl-studio-run version {BUNDLE_VERSION}"
        )
    config = parse_config(run["config"])  # an invalid config is refused before anything is stored
    run_id = submit(store, config, tags=run.get("tags") or [], notes=(run.get("notes") or "") + " (imported)")
    store.add_step_metrics(run_id, _records(steps))
    epoch_rows = _records(epochs)
    for row in epoch_rows:
        if isinstance(row.get("per_class_acc"), str):
            row["per_class_acc"] = json.loads(row["per_class_acc"])
    store.add_epoch_metrics(run_id, epoch_rows)
    store.add_client_stats(run_id, _records(clients))
    for e in events:
        store.add_event(run_id, e["message"], level=e.get("level", "info"), kind=e.get("kind", "info"))
    store.finish_run(
        run_id,
        run.get("status") if run.get("status") in ("completed", "failed", "cancelled") else "completed",
    )
    return run_id


def _records(df: pd.DataFrame) -> list[dict]:
    drop = [c for c in ("id", "run_id") if c in df.columns]
    df = df.drop(columns=drop)
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in df.to_dict("records")]


# ---------------------------------------------------------------- background worker
def worker_pid_file(home: Path) -> Path:
    return home / "worker.pid"


def worker_alive(home: Path) -> bool:
    pid_file = worker_pid_file(home)
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
        return True
    except (ValueError, ProcessLookupError, PermissionError):
        return False


def ensure_worker(home: Path, database_url: str | None = None) -> bool:
    """Start a background ``psl worker`` unless one is alive; True if one was started."""
    if worker_alive(home):
        return False
    env = dict(os.environ, PSL_HOME=str(home))
    if database_url:
        env["PSL_DATABASE_URL"] = database_url
    log = open(home / "worker.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker_pid_file(home).write_text(str(proc.pid))
    return True
