"""Runs, the run queue and sweeps: the part of :class:`storage.Store` that manages experiments."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from sqlalchemy import and_, delete, or_, update
from sqlmodel import Session, select

from storage.records import (
    MAX_ROW_ID,
    RunRecord,
    StoreValueError,
    SweepRecord,
    as_utc,
    canonical_json,
    check_seed,
    check_status,
    clean_text,
    normalise_tags,
)
from storage.session import StoreBase, database_now
from storage.tables import FINAL_STATUSES, METRIC_TABLES, Checkpoint, Run, Sweep


class RunIsActive(StoreValueError):
    """The run is being trained right now; it has to stop (cancel it) before it can be deleted."""


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _get_row(session: Session, run_id: int, *, for_update: bool = False) -> Run:
    # Ids beyond the id column's range (PostgreSQL's INTEGER) cannot exist: say so, not DataError.
    valid = isinstance(run_id, int) and not isinstance(run_id, bool) and 0 < run_id <= MAX_ROW_ID
    run = session.get(Run, run_id, with_for_update=for_update) if valid else None
    if run is None:
        raise KeyError(f"no run with id {run_id} in this database")
    return run


def _claimable(now, stale_after_s: float):  # noqa: ANN001, ANN202 - SQL expression
    """Queued, or running with a heartbeat older than ``stale_after_s`` (its worker died)."""
    return or_(Run.status == "queued", _stale(now, stale_after_s))


def _stale(now, stale_after_s: float):  # noqa: ANN001, ANN202 - SQL expression
    return and_(Run.status == "running", Run.heartbeat_at < now - timedelta(seconds=stale_after_s))


def _cancel_dead_runs(session: Session, now, stale_after_s: float) -> None:  # noqa: ANN001
    """A dead worker's run that the user already asked to cancel is not resumed: cancel it."""
    session.execute(
        update(Run)
        .where(_stale(now, stale_after_s), Run.cancel_requested.is_(True))
        .values(status="cancelled", finished_at=now, worker_id=None)
    )


def _take(session: Session, run: Run, worker_id: str, now, placement: dict) -> RunRecord:  # noqa: ANN001
    """Make ``run`` (locked by the caller's query) 'running' for ``worker_id``, one attempt more."""
    run.status = "running"
    run.worker_id = worker_id
    run.heartbeat_at = now
    run.started_at = run.started_at or now
    run.finished_at = None
    run.attempts = (run.attempts or 0) + 1
    run.host, run.backend, run.slot = placement["host"], placement["backend"], placement["slot"]
    session.add(run)
    session.flush()
    return RunRecord.from_row(run)


class RunStore(StoreBase):
    """Creating, listing, claiming and finishing runs."""

    # ---- creating and reading -------------------------------------------------------------------

    def create_run(
        self,
        *,
        name: str,
        config: dict,
        seed: int,
        tags: list[str] = (),
        notes: str = "",
        sweep_id: int | None = None,
        total_steps: int | None = None,
    ) -> int:
        """Store a new queued run; returns its id. ``config`` must already be validated by the app."""
        if not isinstance(config, dict):
            raise StoreValueError(
                f"config must be a dict (the validated experiment config), got {type(config)}"
            )
        if not str(name).strip():
            raise StoreValueError("a run needs a non-empty name")
        config_json = canonical_json(config)
        run = Run(
            name=clean_text(str(name).strip()),
            tags=json.dumps(normalise_tags(tags)),
            notes=clean_text(notes or ""),
            config_json=config_json,
            config_hash=hashlib.sha256(config_json.encode()).hexdigest(),
            seed=check_seed(seed),
            status="queued",
            sweep_id=sweep_id,
            total_steps=total_steps,
        )

        def work(session: Session) -> int:
            run.created_at = database_now(session)  # queue order by one clock, whoever submits
            session.add(run)
            session.flush()
            return run.id

        return self._write(work)

    def get_run(self, run_id: int) -> RunRecord:
        """The run ``run_id``; KeyError if there is none."""
        return self._read(lambda session: RunRecord.from_row(_get_row(session, run_id)))

    def list_runs(
        self,
        *,
        status: str | list[str] | None = None,
        tag: str | None = None,
        text: str | None = None,
        sweep_id: int | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first, filtered by status(es), one tag, free text (name/notes/tags) and sweep."""
        query = select(Run).order_by(Run.created_at.desc(), Run.id.desc())
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            query = query.where(Run.status.in_([check_status(s) for s in statuses]))
        if tag is not None:
            needle = _escape_like(json.dumps(tag.strip()))
            query = query.where(Run.tags.like(f"%{needle}%", escape="\\"))
        if text:
            needle = f"%{_escape_like(text.strip())}%"
            query = query.where(
                or_(
                    Run.name.ilike(needle, escape="\\"),
                    Run.notes.ilike(needle, escape="\\"),
                    Run.tags.ilike(needle, escape="\\"),
                )
            )
        if sweep_id is not None:
            query = query.where(Run.sweep_id == sweep_id)
        if limit is not None:
            query = query.limit(int(limit))
        return self._read(lambda session: [RunRecord.from_row(run) for run in session.exec(query)])

    def update_run(
        self,
        run_id: int,
        *,
        name: str | None = None,
        tags: list[str] | None = None,
        notes: str | None = None,
        total_steps: int | None = None,
        pinned: bool | None = None,
    ) -> None:
        """Change the descriptive fields of a run; arguments left as None stay unchanged."""
        if name is not None and not name.strip():
            raise StoreValueError("a run needs a non-empty name")

        def work(session: Session) -> None:
            run = _get_row(session, run_id)
            if name is not None:
                run.name = clean_text(name.strip())
            if tags is not None:
                run.tags = json.dumps(normalise_tags(tags))
            if notes is not None:
                run.notes = clean_text(notes)
            if total_steps is not None:
                run.total_steps = int(total_steps)
            if pinned is not None:
                run.pinned = bool(pinned)
            session.add(run)

        self._write(work)

    def delete_run(self, run_id: int, *, stale_after_s: float = 30.0) -> list[str]:
        """Delete a run with all its metrics, client stats, events and checkpoint rows; returns the
        paths of its checkpoint files (the caller removes them).

        A running run is refused (:class:`RunIsActive`: cancel it first) unless its heartbeat is
        older than ``stale_after_s`` (its worker is dead; the run is claimable by anyone). The row is
        locked while checked, so a worker cannot claim it between the check and the delete.
        """

        def work(session: Session) -> list[str]:
            run = _get_row(session, run_id, for_update=True)
            if run.status == "running":
                beat = as_utc(run.heartbeat_at)
                if beat is None or beat >= database_now(session) - timedelta(seconds=stale_after_s):
                    raise RunIsActive(
                        f"run #{run_id} is running; cancel it first (`psl cancel {run_id}`) and delete it "
                        "once it has stopped"
                    )
            paths = list(session.scalars(select(Checkpoint.path).where(Checkpoint.run_id == run_id)))
            for table in METRIC_TABLES:  # explicit, so it does not depend on FK enforcement
                session.execute(delete(table).where(table.run_id == run_id))
            session.execute(delete(Run).where(Run.id == run_id))
            return paths

        return self._write(work)

    def run_exists(self, run_id: int) -> bool:
        """True if the run is (still) stored."""
        try:
            self.get_run(run_id)
        except KeyError:
            return False
        return True

    # ---- the queue --------------------------------------------------------------------------------

    def claim_next_run(
        self,
        worker_id: str,
        *,
        stale_after_s: float = 30.0,
        sweep_id: int | None = None,
        host: str | None = None,
        backend: str | None = None,
        slot: str | None = None,
    ) -> RunRecord | None:
        """Atomically hand the oldest claimable run (of ``sweep_id``, if given) to ``worker_id``, or None.

        Claimable: 'queued', or 'running' with a heartbeat older than ``stale_after_s`` (its worker
        died; the new worker resumes it). The run becomes 'running' for this worker, its ``attempts``
        count goes up by one and ``host``/``backend``/``slot`` record where it now executes. SQLite
        serialises claims with BEGIN IMMEDIATE; PostgreSQL uses SELECT ... FOR UPDATE SKIP LOCKED so
        concurrent workers take different runs.
        """
        if not worker_id:
            raise StoreValueError("claim_next_run needs a non-empty worker_id")
        placement = {"host": host, "backend": backend, "slot": slot}

        def work(session: Session) -> RunRecord | None:
            now = database_now(session)
            _cancel_dead_runs(session, now, stale_after_s)
            query = (
                select(Run)
                .where(_claimable(now, stale_after_s))
                .order_by(Run.created_at, Run.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if sweep_id is not None:
                query = query.where(Run.sweep_id == sweep_id)
            run = session.exec(query).first()
            return None if run is None else _take(session, run, worker_id, now, placement)

        return self._write(work)

    def claim_run(
        self,
        run_id: int,
        worker_id: str,
        *,
        stale_after_s: float = 30.0,
        take_over_prefix: str | None = None,
        take_over_silent_s: float = 0.0,
        host: str | None = None,
        backend: str | None = None,
        slot: str | None = None,
    ) -> RunRecord | None:
        """Atomically claim the run ``run_id`` for ``worker_id`` if it is claimable, else None.

        Claimable as in :meth:`claim_next_run`, and also when it is 'running' for a worker whose id
        starts with ``take_over_prefix``: an executor that retries a dead attempt of its own (a Ray task
        whose process was killed) takes the run over at once instead of waiting for the heartbeat to go
        stale; with ``take_over_silent_s`` only once that owner has not beaten for that long (by the
        database clock). A claimable run whose cancel was requested is cancelled instead (None is
        returned).
        """
        if not worker_id:
            raise StoreValueError("claim_run needs a non-empty worker_id")
        placement = {"host": host, "backend": backend, "slot": slot}

        def work(session: Session) -> RunRecord | None:
            now = database_now(session)
            claimable = _claimable(now, stale_after_s)
            if take_over_prefix:
                needle = f"{_escape_like(take_over_prefix)}%"
                owned = and_(Run.status == "running", Run.worker_id.like(needle, escape="\\"))
                if take_over_silent_s > 0:
                    owned = and_(owned, Run.heartbeat_at < now - timedelta(seconds=take_over_silent_s))
                claimable = or_(claimable, owned)
            query = select(Run).where(Run.id == run_id, claimable).with_for_update(skip_locked=True)
            run = session.exec(query).first()
            if run is None:
                return None
            if run.cancel_requested:  # the user cancelled it while no live worker had it
                run.status, run.finished_at, run.worker_id = "cancelled", now, None
                session.add(run)
                return None
            return _take(session, run, worker_id, now, placement)

        return self._write(work)

    def claimable_run_ids(
        self, *, stale_after_s: float = 30.0, sweep_id: int | None = None, limit: int | None = None
    ) -> list[int]:
        """Ids of the runs :meth:`claim_next_run` could hand out now, oldest first (nothing is claimed)."""

        def work(session: Session) -> list[int]:
            now = database_now(session)
            query = select(Run.id).where(_claimable(now, stale_after_s)).order_by(Run.created_at, Run.id)
            if sweep_id is not None:
                query = query.where(Run.sweep_id == sweep_id)
            if limit is not None:
                query = query.limit(int(limit))
            return list(session.exec(query))

        return self._read(work)

    def heartbeat(
        self,
        run_id: int,
        worker_id: str,
        *,
        progress: float | None = None,
        step: int | None = None,
        epoch: int | None = None,
    ) -> bool:
        """Record that ``worker_id`` is alive on the run; False if it no longer owns it (stop then).

        The time is the database's (see :func:`storage.session.database_now`), like the staleness
        test in :meth:`claim_next_run`."""
        values: dict = {}
        if progress is not None:
            values["progress"] = min(1.0, max(0.0, float(progress)))
        if step is not None:
            values["current_step"] = int(step)
        if epoch is not None:
            values["current_epoch"] = int(epoch)

        def work(session: Session) -> bool:
            statement = (
                update(Run)
                .where(Run.id == run_id, Run.worker_id == worker_id, Run.status == "running")
                .values(heartbeat_at=database_now(session), **values)
            )
            return session.execute(statement).rowcount == 1

        return self._write(work)

    def request_cancel(self, run_id: int) -> None:
        """Cancel a run: a queued one at once, a running one by setting the flag its worker polls."""

        def work(session: Session) -> None:
            run = _get_row(session, run_id)
            if run.status == "queued":
                run.status = "cancelled"
                run.finished_at = database_now(session)
            elif run.status == "running":
                run.cancel_requested = True
            session.add(run)

        self._write(work)

    def is_cancel_requested(self, run_id: int) -> bool:
        """True if the user asked to cancel the run (or it is already cancelled)."""
        run = self.get_run(run_id)
        return run.cancel_requested or run.status == "cancelled"

    def finish_run(
        self, run_id: int, status: str, *, error: str | None = None, traceback: str | None = None
    ) -> None:
        """Mark the run completed, failed or cancelled and stamp ``finished_at``."""
        check_status(status, FINAL_STATUSES)

        def work(session: Session) -> None:
            run = _get_row(session, run_id)
            run.status = status
            run.finished_at = database_now(session)
            run.error = None if error is None else clean_text(error)
            run.traceback = None if traceback is None else clean_text(traceback)
            if status == "completed":
                run.progress = 1.0
            session.add(run)

        self._write(work)

    def requeue_run(self, run_id: int) -> None:
        """Put a run back into the queue (retry a failed/cancelled run); its owner loses it."""

        def work(session: Session) -> None:
            run = _get_row(session, run_id)
            run.status = "queued"
            run.worker_id = None
            run.heartbeat_at = None
            run.finished_at = None
            run.cancel_requested = False
            run.error = None
            run.traceback = None
            session.add(run)

        self._write(work)

    def release_run(self, run_id: int, worker_id: str) -> bool:
        """A worker that shuts down hands its run back to the queue (False if it no longer owned it).

        The run keeps its attempts, metrics and checkpoints, so the next worker resumes it."""
        statement = (
            update(Run)
            .where(Run.id == run_id, Run.worker_id == worker_id, Run.status == "running")
            .values(status="queued", worker_id=None, heartbeat_at=None)
        )
        return self._write(lambda session: session.execute(statement).rowcount == 1)

    # ---- sweeps -----------------------------------------------------------------------------------

    def create_sweep(self, name: str, spec: dict) -> int:
        """Store a sweep specification; returns its id (runs then refer to it via ``sweep_id``)."""
        if not isinstance(spec, dict):
            raise StoreValueError(f"a sweep spec must be a dict, got {type(spec)}")
        sweep = Sweep(name=clean_text(str(name)), spec_json=canonical_json(spec))

        def work(session: Session) -> int:
            sweep.created_at = database_now(session)
            session.add(sweep)
            session.flush()
            return sweep.id

        return self._write(work)

    def list_sweeps(self) -> list[SweepRecord]:
        """All sweeps, newest first."""
        query = select(Sweep).order_by(Sweep.created_at.desc(), Sweep.id.desc())
        return self._read(lambda session: [SweepRecord.from_row(sweep) for sweep in session.exec(query)])
