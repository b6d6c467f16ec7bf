"""Database connection: where the database lives, engines, and migrating it to the current schema.

SQLite (the default) is opened in WAL mode with a busy timeout so one worker can write while the
dashboard reads. Transactions are begun explicitly: writes use ``BEGIN IMMEDIATE`` (take the write
lock up front), because a deferred transaction that later upgrades to a writer can fail at once with
"database is locked" without honouring the busy timeout.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import StaticPool

SQLITE_BUSY_TIMEOUT_S = 30.0
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Execution option that makes the SQLite "begin" hook emit BEGIN IMMEDIATE.
WRITE_OPTION = "psl_write"

_engines: dict[tuple[int, str], Engine] = {}
_migrated: set[tuple[int, str]] = set()
_lock = threading.Lock()


def redacted_url(url: str) -> str:
    """``url`` with its password hidden, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL has no password we could find
        return url


def is_sqlite(url: str) -> bool:
    """True for SQLite URLs (``sqlite://...`` with any driver)."""
    return url.startswith("sqlite")


def is_read_only_url(url: str) -> bool:
    """True for the SQLite URLs made by :func:`read_only_url`."""
    return is_sqlite(url) and "mode=ro" in url


def read_only_url(url: str, *, immutable: bool = False) -> str:
    """A SQLite URL that opens the same file read-only (``immutable``: also without the WAL's
    shared-memory file, which cannot be created in a read-only folder)."""
    from sqlalchemy.engine import make_url

    path = make_url(url).database
    query = "mode=ro&immutable=1&uri=true" if immutable else "mode=ro&uri=true"
    return f"sqlite:///file:{path}?{query}"


def _configure_sqlite(engine: Engine, *, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001 - DBAPI hook
        # Take transaction control away from the sqlite3 module so that our BEGIN is the only one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: switching a fresh file to WAL takes its lock, and two processes
        # opening a new database at once (the slots of a pool) must wait for each other, not fail
        # with "database is locked" (1 in 5 pairs did).
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        if not read_only:  # switching the journal mode writes to the file
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, much faster commits
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001 - SQLAlchemy hook
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def get_engine(url: str) -> Engine:
    """A shared engine for ``url``, one per URL and process."""
    if not url:
        raise ValueError(
            "a database URL is needed (the application resolves it from PSL_DATABASE_URL / PSL_HOME)"
        )
    key = (os.getpid(), url)  # an engine inherited through fork must not share its sockets
    with _lock:
        engine = _engines.get(key)
        if engine is not None:
            return engine
        if is_sqlite(url):
            memory = url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url
            kwargs: dict = {
                "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
            }
            if memory:
                kwargs["poolclass"] = StaticPool  # one connection, or every session sees a new DB
            engine = create_engine(url, **kwargs)
            _configure_sqlite(engine, read_only=is_read_only_url(url))
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
        _engines[key] = engine
        return engine


def write_engine(engine: Engine) -> Engine:
    """The same engine, marked so that SQLite transactions take the write lock immediately."""
    return engine.execution_options(**{WRITE_OPTION: True})


def dispose_engine(url: str) -> None:
    """Close the pooled connections of ``url`` in this process (tests, before dropping a database)."""
    with _lock:
        engine = _engines.pop((os.getpid(), url), None)
        _migrated.discard((os.getpid(), url))
    if engine is not None:
        engine.dispose()


def alembic_config(url: str):  # noqa: ANN201 - alembic type imported lazily
    """An Alembic ``Config`` pointing at the migrations shipped inside this package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@contextmanager
def migration_connection(connection: Connection) -> Iterator[Connection]:
    """Prepare a fresh connection for migrating, and commit (or roll back) what the migration did.

    On SQLite, foreign keys are switched off meanwhile: a batch migration rebuilds a table by
    DROP + rename, and dropping ``runs`` with foreign keys on would cascade-delete every metric row.
    The pragma is ignored inside a transaction, so it is set on the raw connection around it.
    """
    raw = connection.connection.driver_connection if connection.dialect.name == "sqlite" else None
    if raw is not None:
        raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield connection
        connection.commit()
    finally:
        if connection.in_transaction():
            connection.rollback()
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=ON")
            if raw.execute("PRAGMA foreign_keys").fetchone()[0] != 1:
                connection.invalidate()  # never hand a connection without foreign keys back to the pool


def head_revision() -> str:
    """The newest schema revision this version of PSL Studio knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The schema revision of the database behind ``engine`` (None: not created yet)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    """Serialise migrations of one SQLite file across processes. The write lock alone is not enough:
    alembic reads the schema revision before it takes that lock, so two processes opening a fresh
    database at once (the slots of a pool) both saw "no schema" and the second failed with
    "duplicate column" or "database is locked". Without a writable folder (a read-only home, which
    never migrates anyway) or without fcntl, nothing is locked."""
    from sqlalchemy.engine import make_url

    path = make_url(url).database if url.startswith("sqlite") else None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    try:
        import fcntl

        handle = open(f"{path}.migrate-lock", "a")  # noqa: SIM115 - held for the block below
    except (ImportError, OSError):
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def init_db(url: str, *, revision: str = "head") -> str:
    """Create or upgrade the database at ``url`` to ``revision`` (default: the newest); returns the URL.

    Safe to call repeatedly and from several processes at once: the upgrade runs under the SQLite
    write lock / a PostgreSQL advisory lock, and a database already at head is left untouched.
    """
    from alembic import command

    key = (os.getpid(), url)
    if revision == "head" and key in _migrated:
        return url
    config = alembic_config(url)
    engine = get_engine(url)
    with (
        _sqlite_file_lock(url),
        write_engine(engine).connect() as connection,
        migration_connection(connection),
    ):
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    if revision == "head":
        with _lock:
            _migrated.add(key)
    return url
