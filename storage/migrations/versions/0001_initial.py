"""The first schema: runs, sweeps, step/epoch metrics, client stats, events, checkpoints.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _run_fk() -> sa.Column:
    return sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("spec_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("tags", sa.Text, nullable=False, server_default="[]"),
        sa.Column("notes", sa.Text, nullable=False, server_default=""),
        sa.Column("config_json", sa.Text, nullable=False),
        sa.Column("config_hash", sa.String, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker_id", sa.String, nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("current_step", sa.Integer, nullable=True),
        sa.Column("current_epoch", sa.Integer, nullable=True),
        sa.Column("total_steps", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("traceback", sa.Text, nullable=True),
        sa.Column("sweep_id", sa.Integer, sa.ForeignKey("sweeps.id", ondelete="SET NULL"), nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
    )
    op.create_index("ix_runs_config_hash", "runs", ["config_hash"])
    op.create_index("ix_runs_sweep_id", "runs", ["sweep_id"])
    op.create_index("ix_runs_status_created", "runs", ["status", "created_at"])
    op.create_table(
        "step_metrics",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("epoch", sa.Integer, nullable=True),
        *[sa.Column(name, sa.Float, nullable=True) for name in ("loss", "deviation")],
        sa.Column("batch_size", sa.Integer, nullable=True),
        sa.Column("active_clients", sa.Integer, nullable=True),
        *[
            sa.Column(name, sa.Float, nullable=True)
            for name in ("sim_step_time", "sim_time", "bytes_up", "bytes_down")
        ],
        sa.Column("slowest_client", sa.Integer, nullable=True),
        sa.Column("wall_time", sa.Float, nullable=True),
        sa.Column("lr", sa.Float, nullable=True),
        sa.Column("extra_json", sa.Text, nullable=True),
    )
    op.create_table(
        "epoch_metrics",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("epoch", sa.Integer, primary_key=True),
        sa.Column("step", sa.Integer, nullable=True),
        *[
            sa.Column(name, sa.Float, nullable=True)
            for name in ("train_loss", "train_acc", "test_loss", "test_acc", "sim_time", "wall_time")
        ],
        sa.Column("per_class_acc_json", sa.Text, nullable=True),
        sa.Column("extra_json", sa.Text, nullable=True),
    )
    op.create_table(
        "client_stats",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("epoch", sa.Integer, primary_key=True),
        sa.Column("client", sa.Integer, primary_key=True),
        sa.Column("samples", sa.Integer, nullable=True),
        sa.Column("steps_active", sa.Integer, nullable=True),
        sa.Column("busy_time", sa.Float, nullable=True),
        sa.Column("idle_time", sa.Float, nullable=True),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        _run_fk(),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_events_run_id", "events", ["run_id"])
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer, primary_key=True),
        _run_fk(),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_checkpoints_run_id", "checkpoints", ["run_id"])


def downgrade() -> None:
    for table in ("checkpoints", "events", "client_stats", "epoch_metrics", "step_metrics", "runs", "sweeps"):
        op.drop_table(table)
