"""What the run page shows: the run's facts, its config as a table, events and checkpoints as tables.

Pure functions over storage records (no Streamlit). User text stays data here (table cells are shown
as plain text); the page escapes whatever it puts into Markdown.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from app.formatting import format_duration
from app.ui.views.labels import flatten_config, value_text


def facts(record) -> pd.DataFrame:  # noqa: ANN001 - a storage.RunRecord
    """Two columns (what, value): status, progress, times, worker, attempts, seed, sweep, config hash."""

    def when(value) -> str:  # noqa: ANN001
        return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"

    took = (
        (record.finished_at - record.started_at).total_seconds()
        if record.finished_at and record.started_at
        else None
    )
    rows = [
        ("status", record.status + (" (cancel requested)" if record.cancel_requested and not record.is_finished else "")),
        ("progress", f"step {record.current_step or 0}" + (f" of {record.total_steps}" if record.total_steps else "")
         + f" ({record.progress:.0%})"),
        ("created", when(record.created_at)),
        ("started", when(record.started_at)),
        ("finished", when(record.finished_at)),
        ("wall time", format_duration(took) if took is not None else "—"),
        ("worker", record.worker_id or "—"),
        ("attempts", str(record.attempts)),
        ("seed", str(record.seed)),
        ("sweep", f"#{record.sweep_id}" if record.sweep_id else "—"),
        ("tags", ", ".join(record.tags) or "—"),
        ("config hash", record.config_hash[:12]),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["what", "value"])


def config_table(config: dict) -> pd.DataFrame:
    """The config as (setting, value) rows with dotted keys, values as text ('none' for None)."""
    flat = flatten_config(config or {})
    return pd.DataFrame({"setting": list(flat), "value": [value_text(v) for v in flat.values()]})


def events_frame(events: Sequence) -> pd.DataFrame:
    """The run's events (oldest first) as a table: time, level, kind, message."""
    return pd.DataFrame(
        [(e.created_at.strftime("%Y-%m-%d %H:%M:%S"), e.level, e.kind, e.message) for e in events],
        columns=["time (UTC)", "level", "kind", "message"],
    )


def checkpoints_frame(checkpoints: Sequence) -> pd.DataFrame:
    """The run's checkpoints (oldest step first): step, epoch, saved at, file."""
    return pd.DataFrame(
        [(c.step, c.epoch, c.created_at.strftime("%Y-%m-%d %H:%M:%S"), c.path) for c in checkpoints],
        columns=["step", "epoch", "saved (UTC)", "file"],
    )
