"""Run bundles: a run's config, metrics and events as one zip (``psl export`` / ``psl import``).

The bundle is checked fully (format, config through the one validation path) before anything is stored.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import pandas as pd

from app.runs import submit
from psl_core.validation import validate_config
from storage import Store

BUNDLE_VERSION = 1


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
    config, _ = validate_config(run["config"])  # an invalid config is refused before anything is stored
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
