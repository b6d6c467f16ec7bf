"""Bulk import of a whole finished run (a bundle from another database) in ONE transaction.

Either every row lands or none does: a malformed row found by the database rolls the run back with
it, so an import never leaves a half-filled run behind. Rows go in with one multi-row INSERT per
table (executemany), not one transaction per event: 20,000 events take a fraction of a second.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError, OperationalError, StatementError
from sqlmodel import Session

from storage.records import (
    StoreValueError,
    as_utc,
    canonical_json,
    check_level,
    check_seed,
    check_status,
    clean_text,
    normalise_tags,
)
from storage.session import StoreBase, database_now
from storage.store_metrics import _normalise_rows
from storage.tables import FINAL_STATUSES, ClientStat, EpochMetric, Event, Run, StepMetric

RUN_FIELDS = {
    "name",
    "config",
    "seed",
    "status",
    "tags",
    "notes",
    "created_at",
    "started_at",
    "finished_at",
    "error",
    "traceback",
    "total_steps",
    "progress",
    "current_step",
    "current_epoch",
    "attempts",
}


class ImportStore(StoreBase):
    """Creating a finished run with all its metrics at once."""

    def import_run(
        self,
        run: dict,
        *,
        steps: list[dict] = (),
        epochs: list[dict] = (),
        clients: list[dict] = (),
        events: list[dict] = (),
    ) -> int:
        """Store a FINISHED run (status completed/failed/cancelled, never queued: no worker may pick
        an import up) with its step/epoch/client rows and events; returns the new run's id.

        ``run`` holds the fields of :data:`RUN_FIELDS` (``config`` a validated dict); events are
        dicts with ``message`` and optional ``level``, ``kind``, ``created_at`` (a datetime).
        """
        unknown = sorted(set(run) - RUN_FIELDS)
        if unknown:
            raise StoreValueError(f"unknown run fields {unknown}; use {sorted(RUN_FIELDS)}")
        if not isinstance(run.get("config"), dict):
            raise StoreValueError("an imported run needs its config as a dict")
        name = clean_text(str(run.get("name") or "").strip())
        if not name:
            raise StoreValueError("an imported run needs a non-empty name")
        status = check_status(run.get("status"), FINAL_STATUSES)
        config_json = canonical_json(run["config"])
        fields = {
            "name": name,
            "tags": json.dumps(normalise_tags(run.get("tags") or [])),
            "notes": clean_text(run.get("notes") or ""),
            "config_json": config_json,
            "config_hash": hashlib.sha256(config_json.encode()).hexdigest(),
            "seed": check_seed(run.get("seed", 0)),
            "status": status,
            "error": None if run.get("error") is None else clean_text(run["error"]),
            "traceback": None if run.get("traceback") is None else clean_text(run["traceback"]),
            "progress": float(run.get("progress") or (1.0 if status == "completed" else 0.0)),
            "total_steps": run.get("total_steps"),
            "current_step": run.get("current_step"),
            "current_epoch": run.get("current_epoch"),
            "attempts": int(run.get("attempts") or 0),
        }
        step_rows = _normalise_rows(0, steps, StepMetric, ("step",))
        epoch_rows = _normalise_rows(0, epochs, EpochMetric, ("epoch",), list_columns=("per_class_acc",))
        client_rows = _normalise_rows(0, clients, ClientStat, ("epoch", "client"))
        event_rows = [_event_row(e) for e in events]

        def work(session: Session) -> int:
            now = database_now(session)
            record = Run(
                **fields,
                created_at=_time(run.get("created_at")) or now,
                started_at=_time(run.get("started_at")),
                finished_at=_time(run.get("finished_at")) or now,
            )
            session.add(record)
            session.flush()
            for table, rows in (
                (StepMetric, step_rows),
                (EpochMetric, epoch_rows),
                (ClientStat, client_rows),
            ):
                if rows:
                    for row in rows:
                        row["run_id"] = record.id
                    session.execute(insert(table.__table__), rows)
            if event_rows:
                for row in event_rows:
                    row["run_id"] = record.id
                    row["created_at"] = row["created_at"] or now
                session.execute(insert(Event.__table__), event_rows)
            return record.id

        try:
            return self._write(work)
        except OperationalError:
            raise  # the database itself is in trouble (locked, disk full): not the rows' fault
        except (DBAPIError, StatementError, OverflowError, TypeError) as exc:
            # e.g. a number beyond a column's range: nothing was stored (one transaction)
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise StoreValueError(
                f"the database refused the imported rows: {first[0] if first else type(exc).__name__}"
            ) from None


def _time(value) -> datetime | None:  # noqa: ANN001
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise StoreValueError(f"times must be datetimes, got {value!r:.80}")
    return as_utc(value)


def _event_row(event: dict) -> dict:
    if not isinstance(event, dict) or not isinstance(event.get("message"), str):
        raise StoreValueError(f"an event must be a dict with a text 'message', got {event!r:.80}")
    return {
        "message": clean_text(event["message"]),
        "level": check_level(event.get("level") or "info"),
        "kind": clean_text(event.get("kind") or "info"),
        "created_at": _time(event.get("created_at")),
    }
