"""Incremental metric series for live pages: read only the rows newer than what is already held,
and downsample long series to a chart's width while keeping spikes.

A :class:`SeriesCache` lives in ``st.session_state``: each refresh of the live monitor asks the store
for steps > the last step it holds and epochs > the last epoch, so a refresh costs the new rows only,
not the whole history.

With ``max_points`` set (the pages do), the FIRST load of a long run is a server-side sample
(``Store.read_step_series``): about ``max_points`` rows — a stride sample plus each bucket's min and
max rows of the ``extremes`` columns (default: loss), always the first and last step. Later refreshes
append the new rows exactly (they are fewer than ``max_points``). So the held frame is downsampled up
to ``RunSeries.sampled_through`` and exact after it. Consequences: charts of held columns other than
the extremes ones may miss spikes in the old part; the fractional-epoch x axis
(``app.ui.views.compare.with_x``) counts held rows, so it is approximate in the sampled part; totals that only
need the last row or a monotone column (steps, final loss, sim/wall time) are exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from psl_core.metrics import STEP_FIELDS
from storage.store_samples import CHART_SAMPLE_EXTREMES, CHART_SAMPLE_POINTS

DEFAULT_STEP_COLUMNS = STEP_FIELDS


# Rows a page holds after the first load of a long run: a few times the chart width, so the chart's
# own spike-keeping downsample (``downsample``) still has material, at a fraction of a full read. The
# store keeps this sample of every finished run (storage/store_samples.py), so it is read, not made.
FIRST_LOAD_POINTS = CHART_SAMPLE_POINTS


class SeriesError(ValueError):
    """Bad input to the series helpers; the message says what to change."""


@dataclass
class RunSeries:
    """What is held for one run: its step and epoch rows and the last step/epoch read."""

    steps: pd.DataFrame = field(default_factory=pd.DataFrame)
    epochs: pd.DataFrame = field(default_factory=pd.DataFrame)
    last_step: int | None = None
    last_epoch: int | None = None
    sampled_through: int | None = None  # rows up to this step are a sample of the stored ones (None: exact)
    rows_stored: int = 0  # step rows the store had for the steps held (more than held when sampled)
    final: bool = False  # read after the run finished: no new rows will come


class SeriesCache:
    """Per-run step/epoch metric frames, grown incrementally from a store.

    ``rows_read`` counts every step row fetched from the store over the cache's life, which is how the
    benchmark shows that a refresh reads only new rows.
    """

    def __init__(
        self,
        columns: list[str] | None = None,
        *,
        max_points: int | None = None,
        extremes: tuple[str, ...] = CHART_SAMPLE_EXTREMES,
    ) -> None:
        """``max_points``: sample reads of more rows than this server-side (None: always read every row);
        ``extremes``: step columns whose per-bucket min/max rows such a sample keeps."""
        if max_points is not None and max_points < 2 + 2 * len(extremes):
            raise SeriesError(
                f"max_points must be at least {2 + 2 * len(extremes)} (got {max_points}); "
                "use a few times the chart's width"
            )
        # Naming the columns lets the store skip expanding the per-row JSON of extra metrics, which
        # dominates the cost of a first load of a long series.
        self.columns = list(columns) if columns is not None else list(DEFAULT_STEP_COLUMNS)
        self.max_points = max_points
        self.extremes = [c for c in extremes if c in self.columns]
        self.runs: dict[int, RunSeries] = {}
        self.rows_read = 0

    def _read_new_steps(self, store, run_id: int, after_step: int | None) -> pd.DataFrame:  # noqa: ANN001
        if self.max_points is None:
            return store.read_step_metrics(run_id, after_step=after_step, columns=self.columns)
        return store.read_step_series(
            run_id, self.columns, max_points=self.max_points, after_step=after_step, extremes=self.extremes
        )

    def update(self, store, run_id: int, *, finished: bool = False) -> int:  # noqa: ANN001 - a storage.Store
        """Fetch the rows of ``run_id`` newer than those held; returns how many step rows were read
        (all new rows, or the sample of them when more than ``max_points`` arrived at once).

        ``finished``: the caller knows the run has finished; after one read made while it was
        finished, later calls read nothing (a page rerun then costs no query for that run)."""
        held = self.runs.setdefault(run_id, RunSeries())
        if held.final:
            return 0
        held.final = finished
        new_steps = self._read_new_steps(store, run_id, held.last_step)
        if new_steps.attrs.get("sampled_from"):  # set by Store.read_step_series when it sampled
            held.sampled_through = int(new_steps["step"].iloc[-1])
        if len(new_steps):
            held.steps = (
                new_steps if held.steps.empty else pd.concat([held.steps, new_steps], ignore_index=True)
            )
            held.last_step = int(new_steps["step"].iloc[-1])
        new_epochs = store.read_epoch_metrics(run_id, after_epoch=held.last_epoch)
        if len(new_epochs):
            held.epochs = (
                new_epochs if held.epochs.empty else pd.concat([held.epochs, new_epochs], ignore_index=True)
            )
            held.last_epoch = int(new_epochs["epoch"].iloc[-1])
        self.rows_read += len(new_steps)
        held.rows_stored += int(new_steps.attrs.get("sampled_from", len(new_steps)))
        return len(new_steps)

    def is_sampled(self, run_id: int) -> bool:
        """True when the older part of the held steps of ``run_id`` is a sample, not every row."""
        return self.runs.get(run_id, RunSeries()).sampled_through is not None

    def rows_stored(self, run_id: int) -> int:
        """How many step rows the store had up to the last held step (held rows may be a sample)."""
        return self.runs.get(run_id, RunSeries()).rows_stored

    def steps(self, run_id: int) -> pd.DataFrame:
        """The step rows held for ``run_id`` (empty frame if none)."""
        return self.runs.get(run_id, RunSeries()).steps

    def epochs(self, run_id: int) -> pd.DataFrame:
        """The epoch rows held for ``run_id`` (empty frame if none)."""
        return self.runs.get(run_id, RunSeries()).epochs

    def forget(self, run_id: int) -> None:
        """Drop a run (e.g. after it was deleted or re-run from a checkpoint)."""
        self.runs.pop(run_id, None)


def downsample(df: pd.DataFrame, x: str, max_points: int, y: list[str] | None = None) -> pd.DataFrame:
    """At most ``max_points`` rows of ``df`` (ordered by ``x``) that keep each bucket's min and max of
    every ``y`` column (default: all numeric columns but ``x``), so spikes survive downsampling.

    Rows are cut into equal-count buckets; per bucket and column the arg-min and arg-max rows are kept
    (plus the first and last row). Vectorised: one reshape per column, no loop over rows.
    """
    if x not in df.columns:
        raise SeriesError(f"x column {x!r} is not in the frame; choose one of {list(df.columns)}")
    if max_points < 4:
        raise SeriesError(f"max_points must be at least 4 (got {max_points}); use about the chart's width")
    n = len(df)
    if n <= max_points:
        return df
    if y is None:
        y = [c for c in df.select_dtypes("number").columns if c != x]
    if not y:
        y = [x]
    buckets = max(1, (max_points - 2) // (2 * len(y)))
    size = math.ceil(n / buckets)
    padded = buckets * size
    keep = [np.array([0, n - 1])]
    offsets = np.arange(buckets) * size
    for column in y:
        values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)
        low = np.full(padded, np.inf)
        high = np.full(padded, -np.inf)
        finite = ~np.isnan(values)
        low[:n] = np.where(finite, values, np.inf)
        high[:n] = np.where(finite, values, -np.inf)
        keep.append(offsets + low.reshape(buckets, size).argmin(axis=1))
        keep.append(offsets + high.reshape(buckets, size).argmax(axis=1))
    rows = np.unique(np.clip(np.concatenate(keep), 0, n - 1))
    return df.iloc[rows]


class FinishedSeries:
    """Process-wide store of the held series of FINISHED runs, shared by every page and session.

    A finished run's rows never change, so its (sampled) series is read from the database once per
    server process, not once per page visit: the second page that shows a 10^6-step run draws at once.
    Entries are keyed by the run's finish time (a run re-queued and finished again is read anew) and
    the ``capacity`` most recently used are kept. Thread-safe: Streamlit sessions run in threads.
    """

    def __init__(self, capacity: int = 64, *, max_points: int = FIRST_LOAD_POINTS) -> None:
        import threading

        self.capacity = capacity
        self.max_points = max_points
        self._held: dict[int, tuple[object, RunSeries]] = {}
        self._lock = threading.Lock()
        self.reads = 0  # database reads made (one per run and finish), for tests and benchmarks

    def get(self, store, record) -> RunSeries:  # noqa: ANN001 - a storage.Store and a finished RunRecord
        """The held series of the finished run ``record`` (read now if it is not held yet)."""
        if not record.is_finished:
            raise SeriesError(f"run #{record.id} is {record.status}: only finished runs are shared")
        stamp = record.finished_at
        with self._lock:
            held = self._held.pop(record.id, None)
            if held is None or held[0] != stamp:
                cache = SeriesCache(max_points=self.max_points)
                cache.update(store, record.id, finished=True)
                held = (stamp, cache.runs[record.id])
                self.reads += 1
            self._held[record.id] = held  # most recently used last
            while len(self._held) > self.capacity:
                self._held.pop(next(iter(self._held)))
            return held[1]
