"""Incremental metric series for live pages: read only the rows newer than what is already held,
and downsample long series to a chart's width while keeping spikes.

A :class:`SeriesCache` lives in ``st.session_state``: each refresh of the live monitor asks the store
for steps > the last step it holds (``Store.read_step_metrics(after_step=...)``) and epochs > the last
epoch, so a refresh costs the new rows only, not the whole history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DEFAULT_STEP_COLUMNS = (
    "step",
    "epoch",
    "loss",
    "deviation",
    "batch_size",
    "active_clients",
    "sim_step_time",
    "sim_time",
    "bytes_up",
    "bytes_down",
    "slowest_client",
    "wall_time",
    "lr",
)


class SeriesError(ValueError):
    """Bad input to the series helpers; the message says what to change."""


@dataclass
class RunSeries:
    """What is held for one run: its step and epoch rows and the last step/epoch read."""

    steps: pd.DataFrame = field(default_factory=pd.DataFrame)
    epochs: pd.DataFrame = field(default_factory=pd.DataFrame)
    last_step: int | None = None
    last_epoch: int | None = None


class SeriesCache:
    """Per-run step/epoch metric frames, grown incrementally from a store.

    ``rows_read`` counts every step row fetched from the store over the cache's life, which is how the
    benchmark shows that a refresh reads only new rows.
    """

    def __init__(self, columns: list[str] | None = None) -> None:
        # Naming the columns lets the store skip expanding the per-row JSON of extra metrics, which
        # dominates the cost of a first load of a long series.
        self.columns = list(columns) if columns is not None else list(DEFAULT_STEP_COLUMNS)
        self.runs: dict[int, RunSeries] = {}
        self.rows_read = 0

    def update(self, store, run_id: int) -> int:  # noqa: ANN001 - a storage.Store
        """Fetch the rows of ``run_id`` newer than those held; returns how many step rows were new."""
        held = self.runs.setdefault(run_id, RunSeries())
        new_steps = store.read_step_metrics(run_id, after_step=held.last_step, columns=self.columns)
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
        return len(new_steps)

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
