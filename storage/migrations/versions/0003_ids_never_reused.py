"""Run and sweep ids are never reused; seeds are 64-bit.

SQLite hands out max(id) + 1 for a plain INTEGER PRIMARY KEY, so deleting the newest run gave its
id (and, before runs' files were removed with them, its checkpoint folder) to the next run.
AUTOINCREMENT keeps a high-water mark in ``sqlite_sequence`` instead; the table rebuild copies the
rows with their ids, which sets the mark to the highest id present. PostgreSQL's serial sequences
never hand an id out twice already. ``runs.seed`` becomes BIGINT: a config seed may be any 64-bit
number, and PostgreSQL's INTEGER stops at 2**31 - 1.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "sweeps", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ) as batch:
            pass
        with op.batch_alter_table(
            "runs", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ) as batch:
            batch.alter_column("seed", type_=sa.BigInteger, existing_nullable=False)
        return
    op.alter_column("runs", "seed", type_=sa.BigInteger, existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("runs", recreate="always") as batch:
            batch.alter_column("seed", type_=sa.Integer, existing_nullable=False)
        with op.batch_alter_table("sweeps", recreate="always") as batch:
            pass
        return
    op.alter_column("runs", "seed", type_=sa.Integer, existing_nullable=False)
