"""Alembic environment for the PSL Studio store.

Normally driven programmatically by :func:`storage.db.init_db`, which passes an open connection in
``config.attributes["connection"]``; ``alembic -c storage/alembic.ini upgrade head`` also works and
then uses ``$PSL_DATABASE_URL`` / the default SQLite file.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from storage import tables  # noqa: F401 - registers the tables on SQLModel.metadata
from storage.db import database_url, get_engine, write_engine

# Any constant works; it only has to be the same for every process migrating the same database.
_PG_MIGRATION_LOCK_ID = 746_215_001


def _run(connection) -> None:  # noqa: ANN001 - SQLAlchemy Connection
    sqlite = connection.dialect.name == "sqlite"
    context.configure(connection=connection, render_as_batch=sqlite)
    # A batch migration rebuilds a SQLite table by DROP + rename; with foreign keys on, dropping
    # `runs` would cascade-delete every metric row. The pragma only works outside a transaction,
    # hence on the raw connection before alembic begins one.
    raw = connection.connection.driver_connection if sqlite else None
    if raw is not None:
        raw.execute("PRAGMA foreign_keys=OFF")
    try:
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Serialise concurrent init_db calls (several workers starting at once).
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_MIGRATION_LOCK_ID})
            context.run_migrations()
    finally:
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=ON")


def run_migrations_online() -> None:
    """Run the migrations on the connection given by init_db, or on a fresh one."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url") or database_url()
    with write_engine(get_engine(url)).connect() as connection:
        _run(connection)


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run them against a database.")
run_migrations_online()
