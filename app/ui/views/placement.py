"""Where runs execute: host, backend (local worker process or Ray task) and slot of each run's latest
attempt, with how fresh its heartbeat is — for the monitor's "Where runs execute" section."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

import pandas as pd

PLACEMENT_COLUMNS = ["id", "name", "status", "host", "backend", "slot", "attempts", "heartbeat"]


def heartbeat_age(heartbeat_at: datetime | None, now: datetime) -> str:
    """'4 s ago' / '3 min ago' / '-' (never beat): how long since the run's worker was last heard."""
    if heartbeat_at is None:
        return "-"
    seconds = max(0.0, (now - heartbeat_at).total_seconds())
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


def placement_frame(records: Iterable, now: datetime | None = None) -> pd.DataFrame:  # noqa: ANN001
    """One row per run: where its latest attempt executes ('-' where it has not been claimed yet)."""
    now = now or datetime.now(timezone.utc)
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "status": r.status,
            "host": r.host or "-",
            "backend": r.backend or "-",
            "slot": r.slot or "-",
            "attempts": r.attempts,
            "heartbeat": heartbeat_age(r.heartbeat_at, now) if r.status == "running" else "-",
        }
        for r in records
    ]
    return pd.DataFrame(rows, columns=PLACEMENT_COLUMNS)
