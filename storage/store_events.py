"""Events and checkpoints: the part of :class:`storage.Store` that keeps a run's log lines and the
training states it can resume from (only the newest few are kept, see ``prune_checkpoints``)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlmodel import Session

from storage.records import CheckpointRecord, EventRecord, StoreValueError, check_level, clean_text
from storage.session import StoreBase, database_now
from storage.tables import Checkpoint, Event


class EventStore(StoreBase):
    """Writing and reading events and checkpoints."""

    # ---- events and checkpoints ---------------------------------------------------------------

    def add_event(self, run_id: int, message: str, *, level: str = "info", kind: str = "info") -> None:
        """Append an event line to the run's feed (level: info, warning or error)."""
        event = Event(
            run_id=run_id, level=check_level(level), kind=clean_text(kind), message=clean_text(message)
        )

        def work(session: Session) -> None:
            event.created_at = database_now(session)
            session.add(event)

        self._write_for_run(run_id, work)

    def read_events(self, run_id: int, *, after_id: int | None = None) -> list[EventRecord]:
        """The run's events in order; ``after_id`` returns only newer ones (incremental polling)."""
        query = select(Event).where(Event.run_id == run_id)
        if after_id is not None:
            query = query.where(Event.id > after_id)
        query = query.order_by(Event.id)
        return self._read(lambda session: [EventRecord.from_row(e) for e in session.scalars(query)])

    def add_checkpoint(self, run_id: int, *, step: int, epoch: int, path: str) -> None:
        """Record that a checkpoint of the run at (step, epoch) was saved at ``path``."""
        checkpoint = Checkpoint(run_id=run_id, step=int(step), epoch=int(epoch), path=clean_text(path))

        def work(session: Session) -> None:
            checkpoint.created_at = database_now(session)
            session.add(checkpoint)

        self._write_for_run(run_id, work)

    def prune_checkpoints(self, run_id: int, *, keep: int) -> list[str]:
        """Forget all but the ``keep`` newest checkpoints of the run (highest steps); returns the
        paths of the forgotten ones, for the caller to delete (rows go first: a crash in between
        leaves a stray file, never a row pointing at a missing file)."""
        if keep < 1:
            raise StoreValueError(f"keep at least 1 checkpoint (the one a resume needs), got {keep}")
        newest = (
            select(Checkpoint.id)
            .where(Checkpoint.run_id == run_id)
            .order_by(Checkpoint.step.desc(), Checkpoint.id.desc())
            .limit(keep)
        )

        def work(session: Session) -> list[str]:
            kept = list(session.scalars(newest))
            old = select(Checkpoint.id, Checkpoint.path).where(
                Checkpoint.run_id == run_id, Checkpoint.id.not_in(kept)
            )
            rows = session.execute(old).all()
            if rows:
                session.execute(delete(Checkpoint).where(Checkpoint.id.in_([row.id for row in rows])))
            return [row.path for row in rows]

        return self._write(work)

    def list_checkpoints(self, run_id: int) -> list[CheckpointRecord]:
        """The run's checkpoints, oldest step first."""
        query = select(Checkpoint).where(Checkpoint.run_id == run_id).order_by(Checkpoint.step, Checkpoint.id)
        return self._read(lambda session: [CheckpointRecord.from_row(c) for c in session.scalars(query)])

    def latest_checkpoint(self, run_id: int) -> CheckpointRecord | None:
        """The checkpoint with the highest step (newest on ties), or None."""
        query = (
            select(Checkpoint)
            .where(Checkpoint.run_id == run_id)
            .order_by(Checkpoint.step.desc(), Checkpoint.id.desc())
            .limit(1)
        )

        def work(session: Session) -> CheckpointRecord | None:
            row = session.scalars(query).first()
            return None if row is None else CheckpointRecord.from_row(row)

        return self._read(work)
