"""Summaries over many runs in one query each: what a table of a thousand runs needs, without a
metric query per run (the Runs page, sweep tables, the run page's checkpoint list)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from sqlalchemy import and_, func, select

from storage.records import CheckpointRecord, StoreValueError
from storage.session import StoreBase
from storage.tables import Checkpoint, EpochMetric, Run

# Epoch-table columns that hold one number per epoch and can be summarised across epochs.
SUMMARY_COLUMNS = ("train_loss", "train_acc", "test_loss", "test_acc", "sim_time", "wall_time")
SUMMARY_FIELDS = ["run_id", "final", "highest", "lowest", "epochs", "last_epoch"]


class SummaryStore(StoreBase):
    """Aggregates across runs; each method is one SQL statement whatever the number of runs."""

    def epoch_metric_summary(
        self, column: str = "test_acc", run_ids: Iterable[int] | None = None
    ) -> pd.DataFrame:
        """Per run that logged ``column`` at some epoch end: its final value (at the last epoch that has
        one), highest, lowest, how many epochs have it, and that last epoch. One row per run, ordered by
        run id; runs without a value are absent. ``run_ids`` limits the runs (None: every run)."""
        if column not in SUMMARY_COLUMNS:
            raise StoreValueError(f"cannot summarise {column!r}; use one of {list(SUMMARY_COLUMNS)}")
        table = EpochMetric.__table__
        value = table.c[column]
        where = [value.is_not(None)]
        if run_ids is not None:
            ids = sorted({int(r) for r in run_ids})
            if not ids:
                return pd.DataFrame(columns=SUMMARY_FIELDS)
            where.append(table.c.run_id.in_(ids))
        per_run = (
            select(
                table.c.run_id,
                func.max(table.c.epoch).label("last_epoch"),
                func.max(value).label("highest"),
                func.min(value).label("lowest"),
                func.count(value).label("epochs"),
            )
            .where(*where)
            .group_by(table.c.run_id)
            .subquery()
        )
        query = (
            select(
                per_run.c.run_id,
                value.label("final"),
                per_run.c.highest,
                per_run.c.lowest,
                per_run.c.epochs,
                per_run.c.last_epoch,
            )
            .join_from(
                per_run,
                table,
                and_(table.c.run_id == per_run.c.run_id, table.c.epoch == per_run.c.last_epoch),
            )
            .order_by(per_run.c.run_id)
        )
        rows = self._read(lambda session: session.execute(query).all())
        frame = pd.DataFrame.from_records(
            rows, columns=["run_id", "final", "highest", "lowest", "epochs", "last_epoch"]
        )
        return frame.astype({"run_id": "int64", "final": "float64", "highest": "float64", "lowest": "float64",
                             "epochs": "int64", "last_epoch": "int64"})  # fmt: skip

    def run_states(self, limit: int | None = None) -> list[tuple[int, str]]:
        """(id, status) of the runs, newest first: what a page polls to notice new or finished runs
        without reading every config."""
        query = select(Run.id, Run.status).order_by(Run.created_at.desc(), Run.id.desc())
        if limit is not None:
            query = query.limit(int(limit))
        return self._read(lambda session: [(int(i), str(s)) for i, s in session.execute(query).all()])

    def list_checkpoints(self, run_id: int) -> list[CheckpointRecord]:
        """Every checkpoint row of the run, oldest step first."""
        query = select(Checkpoint).where(Checkpoint.run_id == run_id).order_by(Checkpoint.step, Checkpoint.id)
        return self._read(lambda session: [CheckpointRecord.from_row(c) for c in session.scalars(query)])
