"""Runs remember where their latest attempt executes: host, backend (local/ray) and slot.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("host", sa.String, nullable=True))
        batch.add_column(sa.Column("backend", sa.String, nullable=True))
        batch.add_column(sa.Column("slot", sa.String, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("slot")
        batch.drop_column("backend")
        batch.drop_column("host")
