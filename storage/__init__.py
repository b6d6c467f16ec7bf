"""PSL Studio's experiment store: SQLModel tables, migrations and the :class:`Store` API.

This package is the only code that talks SQL. It never imports ``psl_core``, ``app`` or Streamlit:
configs arrive here as plain, already validated JSON dicts.
"""

from storage.db import dispose_engine, get_engine, init_db, redacted_url
from storage.records import CheckpointRecord, EventRecord, RunRecord, StoreValueError, SweepRecord
from storage.session import DatabaseFileChanged, StoreReadOnly, StoreUnavailable, database_now, sqlite_file
from storage.store import Store
from storage.store_runs import RunIsActive
from storage.tables import EVENT_LEVELS, FINAL_STATUSES, RUN_STATUSES

__all__ = [
    "EVENT_LEVELS",
    "FINAL_STATUSES",
    "RUN_STATUSES",
    "CheckpointRecord",
    "DatabaseFileChanged",
    "EventRecord",
    "RunIsActive",
    "RunRecord",
    "Store",
    "StoreReadOnly",
    "StoreUnavailable",
    "StoreValueError",
    "SweepRecord",
    "database_now",
    "dispose_engine",
    "get_engine",
    "init_db",
    "redacted_url",
    "sqlite_file",
]
