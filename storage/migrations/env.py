"""Alembic environment for the PSL Studio store.

Normally driven programmatically by :func:`storage.db.init_db`, which passes an open connection in
``config.attributes["connection"]``; ``alembic -c storage/alembic.ini upgrade head`` also works and
then uses ``$PSL_DATABASE_URL`` / the default SQLite file.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from storage import tables  # noqa: F401 - registers the tables on SQLModel.metadata
from storage.db import get_engine, migration_connection, write_engine

# Any constant works; it only has to be the same for every process migrating the same database.
_PG_MIGRATION_LOCK_ID = 746_215_001


def _run(connection) -> None:  # noqa: ANN001 - SQLAlchemy Connection
    context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Serialise concurrent init_db calls (several workers starting at once).
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_MIGRATION_LOCK_ID})
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the connection given by init_db, or on a fresh one."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    with write_engine(get_engine(url)).connect() as connection, migration_connection(connection):
        _run(connection)


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run them against a database.")
run_migrations_online()
