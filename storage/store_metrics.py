"""Metrics, client statistics, events and checkpoints: the part of :class:`storage.Store` a worker
writes while training and the dashboard reads incrementally.

Metric writes are upserts keyed by (run, step) / (run, epoch) / (run, epoch, client): a run resumed
from a checkpoint rewrites the steps after it and never duplicates rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TypeVar

import pandas as pd
from sqlalchemy import Table, delete, func, literal, select, union
from sqlmodel import Session

from storage.records import (
    StoreValueError,
    clean_text,
    loads_or,
)
from storage.session import database_now, retry_transient
from storage.store_samples import CHART_SAMPLE_EXTREMES, CHART_SAMPLE_POINTS, SampleStore, restrict
from storage.tables import ClientStat, EpochMetric, Event, StepMetric

T = TypeVar("T")

STEP_COLUMNS = [c.name for c in StepMetric.__table__.columns if c.name not in ("run_id", "extra_json")]
EPOCH_COLUMNS = [
    c.name
    for c in EpochMetric.__table__.columns
    if c.name not in ("run_id", "extra_json", "per_class_acc_json")
]
CLIENT_COLUMNS = [c.name for c in ClientStat.__table__.columns if c.name != "run_id"]


def _plain(value):  # noqa: ANN001, ANN202 - any scalar from numpy/torch/python
    """A value the database driver and json understand (numpy/torch scalars and arrays unwrapped)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()  # numpy/torch scalar -> python scalar, array -> list
    return value


def _json_or_none(value) -> str | None:  # noqa: ANN001
    if value is None:
        return None
    return json.dumps(value)


def _normalise_rows(
    run_id: int, rows: Iterable[dict], table, keys: tuple[str, ...], *, list_columns: tuple[str, ...] = ()
) -> list[dict]:  # noqa: ANN001
    """Full column dicts for an upsert: unknown keys go to extra_json, later duplicates of a key win."""
    columns = [c.name for c in table.__table__.columns]
    has_extra = "extra_json" in columns
    by_key: dict[tuple, dict] = {}
    for row in rows:  # one row per step/epoch/client, not per sample
        if not isinstance(row, dict):
            raise StoreValueError(f"metric rows must be dicts of column -> value, got {type(row)}")
        missing = [key for key in keys if row.get(key) is None]
        if missing:
            raise StoreValueError(f"every {table.__tablename__} row needs {list(keys)}; missing {missing}")
        values = dict.fromkeys(columns)
        extra: dict = {}
        for name, value in row.items():
            value = _plain(value)
            if name == "run_id":
                if value != run_id:
                    raise StoreValueError(f"row has run_id={value} but is being written to run {run_id}")
            elif name in list_columns:
                values[f"{name}_json"] = _json_or_none(value)
            elif name == "extra_json":
                # only a dict (or its JSON text) merges into the extras; raw text would break readers
                parsed = loads_or(value, None) if isinstance(value, str) else value
                if value is not None and not isinstance(parsed, dict):
                    raise StoreValueError(
                        f"extra_json of a {table.__tablename__} row must be a dict of metric -> value, "
                        f"got {value!r:.80}"
                    )
                extra.update(parsed or {})
            elif name in values:
                values[name] = value
            elif has_extra:
                extra[name] = value
            else:
                raise StoreValueError(f"unknown {table.__tablename__} column {name!r}; use {columns[1:]}")
        values["run_id"] = run_id
        if extra:
            try:
                values["extra_json"] = json.dumps(extra)
            except (TypeError, ValueError) as exc:
                raise StoreValueError(f"extra metrics must be JSON values: {exc}") from None
        by_key[tuple(values[key] for key in keys)] = values
    return list(by_key.values())


def _upsert(session: Session, table, keys: tuple[str, ...], rows: list[dict]) -> None:  # noqa: ANN001
    """INSERT ... ON CONFLICT (keys) DO UPDATE for SQLite and PostgreSQL; delete+insert elsewhere."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        statement = insert(table.__table__)
        replace = {name: statement.excluded[name] for name in rows[0] if name not in keys}
        session.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=replace), rows)
        return
    for row in rows:  # generic fallback, rarely used: other SQLAlchemy backends
        session.execute(delete(table).where(*[getattr(table, key) == row[key] for key in keys]))
    session.execute(table.__table__.insert(), rows)


def _expand_json(frame: pd.DataFrame, column: str, *, keep: list[str] | None = None) -> pd.DataFrame:
    """Replace a JSON-dict column by one column per key (keys that clash with columns are dropped)."""
    texts = frame.pop(column)
    if texts.isna().all():
        return frame
    dicts = [loads_or(t, {}) for t in texts]  # malformed text (an old import) reads as no extras
    parsed = pd.DataFrame([d if isinstance(d, dict) else {} for d in dicts], index=frame.index)
    wanted = [name for name in parsed.columns if name not in frame.columns and (keep is None or name in keep)]
    return pd.concat([frame, parsed[wanted]], axis=1) if wanted else frame


def _with_attrs(frame: pd.DataFrame, attrs: dict) -> pd.DataFrame:
    frame.attrs.update(attrs)
    return frame


def _empty_dtype(name: str) -> str:
    if name.endswith("_json"):
        return "object"
    return "int64" if name in ("step", "epoch", "client") else "float64"


def _frame(rows: list, columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=columns)
    if frame.empty:  # same dtypes as a filled frame, so incremental reads concatenate cleanly
        return frame.astype({name: _empty_dtype(name) for name in columns})
    for name in columns:  # integer columns with NULLs come back as object: make them numeric
        if frame[name].dtype == object and not name.endswith("_json"):
            frame[name] = pd.to_numeric(frame[name])
    return frame


class MetricStore(SampleStore):
    """Writing and reading metrics, client statistics, events and checkpoints."""

    # ---- writing ----------------------------------------------------------------------------------

    def add_step_metrics(self, run_id: int, rows: list[dict]) -> None:
        """Upsert per-step metric rows (each needs ``step``); unknown keys are kept in ``extra_json``."""
        values = _normalise_rows(run_id, rows, StepMetric, ("step",))
        self._write_for_run(run_id, lambda session: _upsert(session, StepMetric, ("run_id", "step"), values))

    def add_epoch_metrics(self, run_id: int, rows: list[dict]) -> None:
        """Upsert per-epoch rows (each needs ``epoch``); ``per_class_acc`` may be a list."""
        values = _normalise_rows(run_id, rows, EpochMetric, ("epoch",), list_columns=("per_class_acc",))
        self._write_for_run(
            run_id, lambda session: _upsert(session, EpochMetric, ("run_id", "epoch"), values)
        )

    def add_client_stats(self, run_id: int, rows: list[dict]) -> None:
        """Upsert per-(epoch, client) statistics rows."""
        values = _normalise_rows(run_id, rows, ClientStat, ("epoch", "client"))
        keys = ("run_id", "epoch", "client")
        self._write_for_run(run_id, lambda session: _upsert(session, ClientStat, keys, values))

    def add_epoch_report(
        self, run_id: int, epoch_row: dict, client_rows: list[dict], message: str | None = None
    ) -> None:
        """An epoch's metrics, its per-client statistics and an event line in ONE transaction
        (what a worker writes at every epoch end; one commit instead of three)."""
        epoch_values = _normalise_rows(
            run_id, [epoch_row], EpochMetric, ("epoch",), list_columns=("per_class_acc",)
        )
        client_values = _normalise_rows(run_id, client_rows, ClientStat, ("epoch", "client"))

        def work(session: Session) -> None:
            _upsert(session, EpochMetric, ("run_id", "epoch"), epoch_values)
            if client_values:
                _upsert(session, ClientStat, ("run_id", "epoch", "client"), client_values)
            if message:
                session.add(
                    Event(
                        run_id=run_id,
                        created_at=database_now(session),
                        level="info",
                        kind="epoch",
                        message=clean_text(message),
                    )
                )

        self._write_for_run(run_id, work)

    def truncate_metrics_after(self, run_id: int, *, step: int, epoch: int) -> None:
        """Drop steps after ``step`` and epochs (and client stats) after ``epoch``: resume from a checkpoint."""

        def work(session: Session) -> None:
            session.execute(delete(StepMetric).where(StepMetric.run_id == run_id, StepMetric.step > step))
            session.execute(
                delete(EpochMetric).where(EpochMetric.run_id == run_id, EpochMetric.epoch > epoch)
            )
            session.execute(delete(ClientStat).where(ClientStat.run_id == run_id, ClientStat.epoch > epoch))

        self._write(work)

    # ---- reading ----------------------------------------------------------------------------------

    def read_step_metrics(
        self,
        run_id: int,
        *,
        after_step: int | None = None,
        columns: list[str] | None = None,
        last: int | None = None,
    ) -> pd.DataFrame:
        """Step metrics ordered by step, one column per metric (extra metrics expanded).

        ``after_step``: only steps > after_step (incremental polling). ``last``: only the newest n
        rows. ``columns``: these metrics only (``step`` is always included); a name that is neither
        a column nor an extra metric of the run comes back as an all-NaN column.
        """
        wanted = ["step"] + [c for c in (columns or STEP_COLUMNS) if c != "step"]
        known = [name for name in wanted if name in STEP_COLUMNS]
        need_extra = columns is None or len(known) < len(wanted)
        names = known + (["extra_json"] if need_extra else [])
        table = StepMetric.__table__
        query = select(*[table.c[name] for name in names]).where(table.c.run_id == run_id)
        if after_step is not None:
            query = query.where(table.c.step > after_step)
        if last is not None:
            if last < 0:
                raise StoreValueError(f"last must be >= 0 rows, got {last}")
            query = query.order_by(table.c.step.desc()).limit(last)
        else:
            query = query.order_by(table.c.step)
        rows = self._fetch_rows(query)
        if last is not None:
            rows.reverse()
        frame = _frame(rows, names)
        if need_extra:
            frame = _expand_json(frame, "extra_json", keep=None if columns is None else wanted)
        if columns is not None:
            for name in wanted:
                if name not in frame.columns:
                    frame[name] = float("nan")
            frame = frame[wanted]
        return frame

    def _fetch_rows(self, query) -> list[tuple]:  # noqa: ANN001 - a Core select
        """Plain tuples straight from the DBAPI cursor, skipping SQLAlchemy's Row objects.

        Building 200,000 Row objects costs seconds; the step columns are plain ints, floats and text,
        which every driver already returns as Python values, so no result processing is lost.
        """

        def attempt() -> list[tuple]:
            with self._engine.connect() as connection:
                result = connection.execute(query)
                cursor = result.cursor
                return [tuple(row) for row in cursor.fetchall()] if cursor is not None else result.all()

        return retry_transient(attempt)

    def read_step_series(
        self,
        run_id: int,
        columns: list[str],
        *,
        max_points: int | None = None,
        after_step: int | None = None,
        extremes: list[str] | None = None,
    ) -> pd.DataFrame:
        """Step metrics for a chart: every row, or a server-side sample of about ``max_points`` rows.

        Same frame as ``read_step_metrics(run_id, after_step=..., columns=columns)`` when the run has at
        most ``max_points`` rows after ``after_step`` (or ``max_points`` is None). Otherwise the step
        range is cut into equal-width buckets and the database returns, per bucket, its first step
        (stride sample ``(step - first) % width = 0``) plus, for each column in ``extremes`` (step
        table columns only), the step holding the bucket's minimum and the one holding its maximum, so
        spikes survive; the first and last step are always included. At most ``max_points + 1`` rows.
        """
        wanted = ["step"] + [c for c in columns if c != "step"]
        extremes = [c for c in (extremes or []) if c != "step"]
        unknown = [c for c in extremes if c not in STEP_COLUMNS]
        if unknown:
            raise StoreValueError(f"extremes must be step table columns {STEP_COLUMNS}; got {unknown}")
        if max_points is not None and max_points < 2 + 2 * len(extremes):
            raise StoreValueError(
                f"max_points must be at least {2 + 2 * len(extremes)} for {len(extremes)} extremes columns,"
                f" got {max_points}; use about the chart's width"
            )
        table = StepMetric.__table__
        where = [table.c.run_id == run_id]
        if after_step is not None:
            where.append(table.c.step > after_step)
        if max_points is None:
            return self.read_step_metrics(run_id, after_step=after_step, columns=columns)
        # min and max in separate queries: each is one index lookup, together they scanned every row.
        first = self._fetch_rows(select(func.min(table.c.step)).where(*where))[0][0]
        last = self._fetch_rows(select(func.max(table.c.step)).where(*where))[0][0]
        if first is None or last - first + 1 <= max_points:
            return self.read_step_metrics(run_id, after_step=after_step, columns=columns)
        # A finished run's sample at the charts' default size is kept (storage/store_samples.py).
        default = (
            after_step is None
            and max_points == CHART_SAMPLE_POINTS
            and extremes == list(CHART_SAMPLE_EXTREMES)
        )
        stamp = self._finished_stamp(run_id) if default else None
        keep = stamp is not None
        if keep and (kept := self._kept_sample(run_id, stamp, first, last, max_points, extremes)) is not None:
            return _with_attrs(restrict(kept, wanted), kept.attrs)
        count = self._fetch_rows(select(func.count()).where(*where))[0][0]
        if count <= max_points:
            return self.read_step_metrics(run_id, after_step=after_step, columns=columns)
        frame = self._sample_rows(table, where, first, last, max_points, extremes, None if keep else wanted)
        frame.attrs["sampled_from"] = int(count)  # tells callers the rows are a sample, and of how many
        if keep:
            self._keep_sample(run_id, stamp, frame, first, last, max_points, extremes)
            frame = _with_attrs(restrict(frame, wanted), frame.attrs)
        return frame

    def _sample_rows(  # noqa: PLR0913
        self,
        table: Table,
        where: list,
        first: int,
        last: int,
        max_points: int,
        extremes: list[str],
        wanted: list[str] | None,
    ) -> pd.DataFrame:
        """The sampled rows: ``wanted`` columns, or (None) every column and every extra metric."""
        # One stride row + two extreme rows per extremes column per bucket, plus the last step.
        buckets = max(1, (max_points - 1) // (1 + 2 * len(extremes)))
        width = -(-(last - first + 1) // buckets)  # ceil: buckets * width covers the whole span
        chosen = [self._stride_steps(table, where, first, last, width)]
        for name in extremes:
            chosen.extend(self._extreme_steps(table, where, first, last, width, name))
        known = STEP_COLUMNS if wanted is None else [name for name in wanted if name in STEP_COLUMNS]
        need_extra = wanted is None or len(known) < len(wanted)
        names = known + (["extra_json"] if need_extra else [])
        # The chosen steps first, then their rows by primary key: an IN over a subquery OR'd with the
        # last step made the database scan every row of the run once more.
        picked = union(*chosen) if len(chosen) > 1 else chosen[0]
        steps = sorted({int(row[0]) for row in self._fetch_rows(picked) if row[0] is not None} | {int(last)})
        query = (
            select(*[table.c[name] for name in names])
            .where(*where, table.c.step.in_(steps))
            .order_by(table.c.step)
        )
        frame = _frame(self._fetch_rows(query), names)
        if need_extra:
            frame = _expand_json(frame, "extra_json", keep=wanted)
        return frame if wanted is None else restrict(frame, wanted)

    @staticmethod
    def _stride_steps(table, where: list, first: int, last: int, width: int):  # noqa: ANN001, ANN205
        """The stored steps among first, first + width, first + 2 width, ... (the stride sample), looked
        up by primary key from a recursive list of them: a filter on (step - first) % width read every
        row of the run."""
        starts = select(literal(first).label("at")).cte("stride_steps", recursive=True)
        starts = starts.union_all(
            select((starts.c.at + width).label("at")).where(starts.c.at + width <= last)
        )
        return select(table.c.step).join(starts, table.c.step == starts.c.at).where(*where)

    @staticmethod
    def _extreme_steps(table, where: list, first: int, last: int, width: int, name: str) -> list:  # noqa: ANN001
        """Per bucket of ``width`` steps, the first step holding the bucket's min of ``name`` and the first
        holding its max, as two selects of a ``step`` column.

        Each bucket is read with an index range scan and a top-1 pick (correlated subqueries over a
        recursive list of bucket starts): one pass over the rows, no GROUP BY sort of every row, which
        made a first look at a 10^6-step run take seconds."""
        column = table.c[name]
        starts = select(literal(first).label("lo")).cte("bucket_starts", recursive=True)
        starts = starts.union_all(
            select((starts.c.lo + width).label("lo")).where(starts.c.lo + width <= last)
        )

        def pick(order):  # noqa: ANN001, ANN202
            return (
                select(table.c.step)
                .where(
                    *where, column.is_not(None), table.c.step.between(starts.c.lo, starts.c.lo + width - 1)
                )
                .order_by(order, table.c.step)
                .limit(1)
                .correlate(starts)
                .scalar_subquery()
            )

        return [
            select(pick(order).label("step")).select_from(starts) for order in (column.asc(), column.desc())
        ]

    def read_epoch_metrics(self, run_id: int, *, after_epoch: int | None = None) -> pd.DataFrame:
        """Epoch metrics ordered by epoch; ``per_class_acc`` as lists, extra metrics expanded."""
        table = EpochMetric.__table__
        names = EPOCH_COLUMNS + ["per_class_acc_json", "extra_json"]
        query = select(*[table.c[name] for name in names]).where(table.c.run_id == run_id)
        if after_epoch is not None:
            query = query.where(table.c.epoch > after_epoch)
        rows = self._read(lambda session: session.execute(query.order_by(table.c.epoch)).all())
        frame = _frame(rows, names)
        accs = frame.pop("per_class_acc_json")
        frame["per_class_acc"] = [
            value if isinstance(value := loads_or(t, None), list) else None for t in accs
        ]
        return _expand_json(frame, "extra_json")

    def read_client_stats(self, run_id: int) -> pd.DataFrame:
        """Per-(epoch, client) statistics ordered by epoch, then client."""
        table = ClientStat.__table__
        query = (
            select(*[table.c[name] for name in CLIENT_COLUMNS])
            .where(table.c.run_id == run_id)
            .order_by(table.c.epoch, table.c.client)
        )
        return _frame(self._read(lambda session: session.execute(query).all()), CLIENT_COLUMNS)

    def count_step_metrics(self, run_id: int) -> int:
        """How many step rows the run has."""
        query = select(func.count()).select_from(StepMetric).where(StepMetric.run_id == run_id)
        return int(self._read(lambda session: session.execute(query).scalar_one()))
