"""SQLModel tables of the experiment store.

The tables read like the domain: a ``Run`` is one experiment (its config stored as JSON text), it
may belong to a ``Sweep``, and it owns its per-step and per-epoch metrics, per-client statistics,
events and checkpoints. The migrations in ``storage/migrations/versions`` create exactly this schema
(``tests/test_migrations.py`` checks that they agree).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Integer, LargeBinary, Text, false
from sqlmodel import Field, SQLModel

RUN_STATUSES = ("queued", "running", "completed", "failed", "cancelled")
FINAL_STATUSES = ("completed", "failed", "cancelled")
EVENT_LEVELS = ("info", "warning", "error")


def _run_fk(*, primary_key: bool = False) -> Column:
    # Metrics die with their run: the FK cascades on the database side as well (the store also
    # deletes them explicitly, so this holds even on SQLite files opened without foreign keys).
    return Column(
        Integer,
        ForeignKey("runs.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
        index=not primary_key,
    )


def _time(*, nullable: bool) -> Any:
    # Explicit type so every sqlmodel version stores the same thing: aware UTC datetimes
    # (timestamptz on PostgreSQL; on SQLite an ISO string, compared lexicographically).
    if nullable:
        return Field(default=None, sa_type=DateTime(timezone=True), nullable=True)
    return Field(sa_type=DateTime(timezone=True), nullable=False)


class Sweep(SQLModel, table=True):
    """A named group of runs generated from one sweep specification."""

    __tablename__ = "sweeps"
    __table_args__ = {"sqlite_autoincrement": True}  # migration 0003: ids are never reused

    id: int | None = Field(default=None, primary_key=True)
    name: str
    spec_json: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _time(nullable=False)


class Run(SQLModel, table=True):
    """One experiment: its config, its place in the queue and its live progress."""

    __tablename__ = "runs"
    # sqlite_autoincrement (migration 0003): a deleted run's id is never handed out again.
    __table_args__ = (Index("ix_runs_status_created", "status", "created_at"), {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    name: str
    tags: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    notes: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    config_json: str = Field(sa_column=Column(Text, nullable=False))
    config_hash: str = Field(index=True)
    seed: int = Field(sa_column=Column(BigInteger, nullable=False))  # 64-bit (migration 0003)
    status: str = Field(default="queued")
    created_at: datetime = _time(nullable=False)
    started_at: datetime | None = _time(nullable=True)
    finished_at: datetime | None = _time(nullable=True)
    worker_id: str | None = None
    heartbeat_at: datetime | None = _time(nullable=True)
    progress: float = 0.0
    current_step: int | None = None
    current_epoch: int | None = None
    total_steps: int | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    traceback: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sweep_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("sweeps.id", ondelete="SET NULL"), nullable=True, index=True),
    )
    cancel_requested: bool = False
    # Added by migration 0002.
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    pinned: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # Added by migration 0004: where the run's latest attempt executes (set when it is claimed).
    host: str | None = None
    backend: str | None = None  # 'local' (a worker process) or 'ray' (a Ray task)
    slot: str | None = None  # which of the executor's slots, e.g. '2/4' or '3/8 node 1a2b3c4d gpu 0'


class StepMetric(SQLModel, table=True):
    """Metrics of one training step; (run_id, step) is the key, so a rewrite replaces the row."""

    __tablename__ = "step_metrics"

    run_id: int = Field(sa_column=_run_fk(primary_key=True))
    step: int = Field(primary_key=True)
    epoch: int | None = None
    loss: float | None = None
    deviation: float | None = None
    batch_size: int | None = None
    active_clients: int | None = None
    sim_step_time: float | None = None
    sim_time: float | None = None
    bytes_up: float | None = None
    bytes_down: float | None = None
    slowest_client: int | None = None
    wall_time: float | None = None
    lr: float | None = None
    extra_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class EpochMetric(SQLModel, table=True):
    """Evaluation metrics at the end of one epoch; (run_id, epoch) is the key."""

    __tablename__ = "epoch_metrics"

    run_id: int = Field(sa_column=_run_fk(primary_key=True))
    epoch: int = Field(primary_key=True)
    step: int | None = None
    train_loss: float | None = None
    train_acc: float | None = None
    test_loss: float | None = None
    test_acc: float | None = None
    sim_time: float | None = None
    wall_time: float | None = None
    per_class_acc_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    extra_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ClientStat(SQLModel, table=True):
    """What one client did during one epoch; (run_id, epoch, client) is the key."""

    __tablename__ = "client_stats"

    run_id: int = Field(sa_column=_run_fk(primary_key=True))
    epoch: int = Field(primary_key=True)
    client: int = Field(primary_key=True)
    samples: int | None = None
    steps_active: int | None = None
    busy_time: float | None = None
    idle_time: float | None = None


class Event(SQLModel, table=True):
    """A timestamped log line of a run (shown in the run's event feed)."""

    __tablename__ = "events"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(sa_column=_run_fk())
    created_at: datetime = _time(nullable=False)
    level: str = "info"
    kind: str = "info"
    message: str = Field(sa_column=Column(Text, nullable=False))


class Checkpoint(SQLModel, table=True):
    """A saved training state a run can resume from."""

    __tablename__ = "checkpoints"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(sa_column=_run_fk())
    step: int
    epoch: int
    path: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _time(nullable=False)


class StepSample(SQLModel, table=True):
    """The chart sample of a FINISHED run's step metrics (what ``Store.read_step_series`` returns for the
    default chart size), kept so that no page has to scan a 10^6-step run again after a server start.
    Valid while the run stays finished at ``finished_at`` with the same first and last step (migration
    0005)."""

    __tablename__ = "step_samples"

    run_id: int = Field(sa_column=_run_fk(primary_key=True))
    finished_at: datetime = _time(nullable=False)
    first_step: int
    last_step: int
    rows_stored: int  # how many step rows the sample stands for
    max_points: int
    extremes: str  # JSON list of the columns whose per-bucket min/max rows were kept
    frame: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # Arrow IPC (Feather) bytes


METRIC_TABLES = (StepMetric, EpochMetric, ClientStat, Event, Checkpoint, StepSample)
