"""The experiment store: the one object the worker, the CLI and the dashboard use to talk to the database.

Every method opens its own short transaction and returns plain detached values (records, lists,
DataFrames), so a Store can be shared across threads (e.g. one per Streamlit process via
``st.cache_resource``). Writes retry SQLite lock contention for up to a minute instead of failing.
"""

from __future__ import annotations

from storage.store_events import EventStore
from storage.store_import import ImportStore
from storage.store_metrics import MetricStore
from storage.store_runs import RunStore


class Store(RunStore, MetricStore, EventStore, ImportStore):
    """Runs, the run queue, sweeps, metrics, events and checkpoints in one database.

    ``Store(url, migrate=True)``: ``url`` is any SQLAlchemy URL (the application resolves it in
    app/settings.py); with ``migrate`` the database is created / upgraded to the newest schema first.
    """
