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
from storage.store_samples import CHART_SAMPLE_EXTREMES, CHART_SAMPLE_POINTS
from storage.store_summary import SummaryStore


class Store(RunStore, MetricStore, EventStore, ImportStore, SummaryStore):
    """Runs, the run queue, sweeps, metrics, events, checkpoints and cross-run summaries in one database.

    ``Store(url, migrate=True)``: ``url`` is any SQLAlchemy URL (the application resolves it in
    app/settings.py); with ``migrate`` the database is created / upgraded to the newest schema first.
    """

    def finish_run(
        self, run_id: int, status: str, *, error: str | None = None, traceback: str | None = None
    ) -> None:
        """Mark the run completed, failed or cancelled and stamp ``finished_at``; then keep the chart
        sample of a long run's step metrics, so no page scans its rows again (storage/store_samples.py)."""
        super().finish_run(run_id, status, error=error, traceback=traceback)
        self.keep_chart_sample(run_id)

    def keep_chart_sample(self, run_id: int) -> None:
        """Sample a finished run's step metrics for the charts' default size and keep the sample (runs
        with few steps need none). Never raises: the sample is only a copy."""
        try:
            self.read_step_series(
                run_id, ["step"], max_points=CHART_SAMPLE_POINTS, extremes=list(CHART_SAMPLE_EXTREMES)
            )
        except Exception:  # noqa: BLE001 - finishing the run must not fail on its copy
            return
