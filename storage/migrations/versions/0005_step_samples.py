"""Finished runs keep the chart sample of their step metrics (a 10^6-step run is not scanned again).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "step_samples",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_step", sa.Integer, nullable=False),
        sa.Column("last_step", sa.Integer, nullable=False),
        sa.Column("rows_stored", sa.Integer, nullable=False),
        sa.Column("max_points", sa.Integer, nullable=False),
        sa.Column("extremes", sa.String, nullable=False),
        sa.Column("frame", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("step_samples")
