"""Short-lived sessions with retries: the one place where store methods open transactions."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from storage.db import get_engine, init_db, is_sqlite, redacted_url, write_engine

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


class StoreBase:
    """Engine handling shared by the run and metric parts of :class:`storage.Store`."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        """Open the store at ``url`` (any SQLAlchemy URL), migrating it unless told not to."""
        self.url = init_db(url) if migrate else url
        self._engine = get_engine(self.url)
        self._write_engine = write_engine(self._engine)
        self.is_sqlite = is_sqlite(self.url)

    def __repr__(self) -> str:
        return f"Store({redacted_url(self.url)!r})"

    def _write(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in one write transaction (committed), retrying lock contention."""

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
