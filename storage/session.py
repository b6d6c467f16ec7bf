"""Short-lived sessions with retries: the one place where store methods open transactions."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TypeVar

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from storage.db import (
    current_revision,
    get_engine,
    head_revision,
    init_db,
    is_sqlite,
    read_only_url,
    redacted_url,
    write_engine,
)
from storage.tables import Run

T = TypeVar("T")

# A worker must not lose a run because the dashboard held a lock for a while: writes keep retrying
# for this long (on top of SQLite's own busy timeout) before the error is raised.
RETRY_BUDGET_S = 60.0
_TRANSIENT_MESSAGES = ("database is locked", "database table is locked", "database is busy")
_TRANSIENT_PG_CODES = ("40001", "40P01")  # serialization failure, deadlock detected


def is_transient(exc: OperationalError) -> bool:
    """True for errors that go away on retry: SQLite lock contention, PostgreSQL deadlocks."""
    message = str(getattr(exc, "orig", exc)).lower()
    if any(text in message for text in _TRANSIENT_MESSAGES):
        return True
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _TRANSIENT_PG_CODES


def retry_transient(attempt: Callable[[], T], *, budget_s: float = RETRY_BUDGET_S) -> T:
    """Call ``attempt`` until it succeeds, retrying transient errors with jittered exponential backoff."""
    deadline = time.monotonic() + budget_s
    delay = 0.02
    while True:
        try:
            return attempt()
        except OperationalError as exc:
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2.0, 2.0)


# The database itself is in trouble (disk full, server down, file locked past the retry budget):
# what callers above storage catch, without importing SQLAlchemy themselves.
StoreUnavailable = OperationalError


class StoreReadOnly(RuntimeError):
    """A write to a store opened read-only (a read-only PSL_HOME)."""


class DatabaseFileChanged(RuntimeError):
    """The SQLite file this store opened was deleted or replaced: writing on would go into a file
    nobody will ever read again, so every write refuses (a worker stops on it)."""


def database_now(session: Session) -> datetime:
    """Now by the DATABASE's clock (aware UTC), not this host's: heartbeats and staleness compare
    times written by different hosts, whose clocks may disagree by minutes."""
    if session.get_bind().dialect.name == "sqlite":  # an embedded database: the clock of its host
        raw = session.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
        return datetime.fromisoformat(raw).replace(tzinfo=timezone.utc)
    value = session.execute(select(func.now())).scalar_one()
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL, or None for in-memory databases and non-SQLite URLs."""
    from sqlalchemy.engine import make_url

    if not is_sqlite(url):
        return None
    database = make_url(url).database or ""
    if not database or database == ":memory:" or "mode=memory" in url:
        return None
    return database.removeprefix("file:").split("?", 1)[0]


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


class StoreBase:
    """Engine handling shared by the run and metric parts of :class:`storage.Store`."""

    def __init__(self, url: str, *, migrate: bool = True, read_only: bool = False) -> None:
        """Open the store at ``url`` (any SQLAlchemy URL), migrating it unless told not to.

        ``read_only``: never write (no migration; SQLite opened with mode=ro, so a read-only folder
        works); the schema must already be the newest, and every write raises StoreReadOnly."""
        self.read_only = read_only
        self.is_sqlite = is_sqlite(url)
        if read_only:
            self.url = url
            self._engine = self._open_read_only(url)
            self._write_engine = None
        else:
            self.url = init_db(url) if migrate else url
            self._engine = get_engine(self.url)
            self._write_engine = write_engine(self._engine)
        self.database_file = sqlite_file(self.url)
        self._file_identity = _file_identity(self.database_file) if self.database_file else None

    @staticmethod
    def _open_read_only(url: str):  # noqa: ANN205 - an Engine
        candidates = [read_only_url(url), read_only_url(url, immutable=True)] if is_sqlite(url) else [url]
        for i, candidate in enumerate(candidates):
            engine = get_engine(candidate)
            try:
                revision = current_revision(engine)
            except OperationalError as exc:
                if i + 1 < len(candidates):  # no WAL index in a read-only folder: open immutable
                    continue
                raise StoreReadOnly(
                    f"cannot read the database {redacted_url(url)}: {str(exc.orig or exc).strip()}"
                ) from None
            head = head_revision()
            if revision != head:
                raise StoreReadOnly(
                    f"the database {redacted_url(url)} has schema {revision or '(none)'}, this version "
                    f"reads {head}: open it once with write access to upgrade it"
                )
            return engine
        raise AssertionError("unreachable")

    def verify_database_file(self) -> None:
        """Raise DatabaseFileChanged if the SQLite file was removed or replaced since this store
        opened it (same path, other inode or device); a no-op for other databases."""
        if self._file_identity is None:
            return
        now = _file_identity(self.database_file)
        if now != self._file_identity:
            what = "removed" if now is None else "replaced by another file"
            raise DatabaseFileChanged(
                f"the database file {self.database_file} was {what} while this process had it open; "
                "nothing more is written (it would be lost): restart the process"
            )

    def __repr__(self) -> str:
        return f"Store({redacted_url(self.url)!r})"

    def _write(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in one write transaction (committed), retrying lock contention."""

        if self._write_engine is None:
            raise StoreReadOnly(
                f"{self!r} was opened read-only (a read-only PSL_HOME); nothing can be changed"
            )
        self.verify_database_file()

        def attempt() -> T:
            with Session(self._write_engine, expire_on_commit=False) as session:
                result = work(session)
                session.commit()
                return result

        return retry_transient(attempt)

    def _read(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in one read-only transaction."""

        def attempt() -> T:
            with Session(self._engine) as session:
                return work(session)

        return retry_transient(attempt)

    def _write_for_run(self, run_id: int, work: Callable[[Session], T]) -> T:
        """A write that names the run when the run does not exist (FK violation -> KeyError)."""
        try:
            return self._write(work)
        except IntegrityError as exc:
            if self._read(lambda session: session.get(Run, run_id)) is None:
                raise KeyError(f"no run with id {run_id} in this database") from exc
            raise
