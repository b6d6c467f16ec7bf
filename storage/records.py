"""Plain, detached, immutable copies of stored rows, handed out by :class:`storage.Store`.

Times are timezone-aware UTC datetimes (SQLite returns them naive; they are UTC all the same).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from storage.tables import EVENT_LEVELS, RUN_STATUSES, Checkpoint, Event, Run, Sweep


class StoreValueError(ValueError):
    """Bad input to the store; the message says what to change."""


# Ids are INTEGER columns: PostgreSQL's stop at 2**31 - 1, so no stored row has a larger id.
MAX_ROW_ID = 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def check_seed(seed) -> int:  # noqa: ANN001 - any integer-like value
    """``seed`` as an int that fits the 64-bit seed column, else a StoreValueError."""
    try:
        value = int(seed)
    except (TypeError, ValueError, OverflowError):
        raise StoreValueError(f"a seed must be a whole number, got {seed!r:.80}") from None
    if not INT64_MIN <= value <= INT64_MAX:
        raise StoreValueError("a seed must fit in 64 bits (|seed| < 2**63)")
    return value


def clean_text(text: str) -> str:
    """Text any database stores: NUL characters (PostgreSQL refuses them) and lone surrogates
    (not encodable as UTF-8) are replaced, so an odd exception message can still be recorded."""
    text = str(text)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def loads_or(text, default):  # noqa: ANN001, ANN201 - stored JSON text, any fallback
    """Stored JSON parsed, or ``default`` when it is missing or malformed (a hand-edited or
    imported row must not break every reader)."""
    if not isinstance(text, str):
        return default
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return default


def utc_now() -> datetime:
    """Now, as an aware UTC datetime (what the tables store)."""
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """A stored datetime (aware, or naive UTC from SQLite) as an aware UTC datetime."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def check_status(status: str, allowed: tuple[str, ...] = RUN_STATUSES) -> str:
    """``status`` if it is one of ``allowed``, else a StoreValueError listing them."""
    if status not in allowed:
        raise StoreValueError(f"unknown run status {status!r}; use one of {list(allowed)}")
    return status


def check_level(level: str) -> str:
    """``level`` if it is a known event level, else a StoreValueError listing them."""
    if level not in EVENT_LEVELS:
        raise StoreValueError(f"unknown event level {level!r}; use one of {list(EVENT_LEVELS)}")
    return level


def normalise_tags(tags) -> list[str]:  # noqa: ANN001 - any iterable or comma string
    """Tags as a clean list: stripped, non-empty, duplicates dropped (first kept), order kept."""
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    result: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            raise StoreValueError(f"tags must be strings, got {tag!r:.80}; pass e.g. ['baseline', 'ugs']")
        tag = clean_text(tag.strip())
        if tag and tag not in result:
            result.append(tag)
    return result


def canonical_json(value: dict) -> str:
    """The canonical JSON text of a config (sorted keys, compact) used for storage and hashing."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreValueError(
            f"config must be a JSON-serialisable dict of plain values (no NaN/inf): {exc}"
        ) from exc


def _string_list(value) -> list[str]:  # noqa: ANN001
    return [str(item) for item in value] if isinstance(value, list) else []


def _dict_or_empty(value) -> dict:  # noqa: ANN001
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class RunRecord:
    """A stored run, with its config parsed back into a dict and its tags as a list."""

    id: int
    name: str
    tags: list[str]
    notes: str
    config: dict
    config_json: str
    config_hash: str
    seed: int
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker_id: str | None
    heartbeat_at: datetime | None
    progress: float
    current_step: int | None
    current_epoch: int | None
    total_steps: int | None
    error: str | None
    traceback: str | None
    sweep_id: int | None
    cancel_requested: bool
    attempts: int
    pinned: bool
    host: str | None = None
    backend: str | None = None
    slot: str | None = None

    @property
    def is_finished(self) -> bool:
        """True once the run is completed, failed or cancelled."""
        return self.status in ("completed", "failed", "cancelled")

    @classmethod
    def from_row(cls, run: Run) -> RunRecord:
        """Copy an ORM row (inside its session) into a detached record."""
        return cls(
            id=run.id,
            name=run.name,
            tags=_string_list(loads_or(run.tags, [])),
            notes=run.notes or "",
            config=_dict_or_empty(loads_or(run.config_json, {})),
            config_json=run.config_json,
            config_hash=run.config_hash,
            seed=run.seed,
            status=run.status,
            created_at=as_utc(run.created_at),
            started_at=as_utc(run.started_at),
            finished_at=as_utc(run.finished_at),
            worker_id=run.worker_id,
            heartbeat_at=as_utc(run.heartbeat_at),
            progress=float(run.progress or 0.0),
            current_step=run.current_step,
            current_epoch=run.current_epoch,
            total_steps=run.total_steps,
            error=run.error,
            traceback=run.traceback,
            sweep_id=run.sweep_id,
            cancel_requested=bool(run.cancel_requested),
            attempts=int(run.attempts or 0),
            pinned=bool(run.pinned),
            host=run.host,
            backend=run.backend,
            slot=run.slot,
        )


@dataclass(frozen=True)
class SweepRecord:
    """A stored sweep with its specification parsed back into a dict."""

    id: int
    name: str
    spec: dict
    spec_json: str
    created_at: datetime

    @classmethod
    def from_row(cls, sweep: Sweep) -> SweepRecord:
        """Copy an ORM row into a detached record."""
        return cls(
            sweep.id,
            sweep.name,
            _dict_or_empty(loads_or(sweep.spec_json, {})),
            sweep.spec_json,
            as_utc(sweep.created_at),
        )


@dataclass(frozen=True)
class EventRecord:
    """One event line of a run."""

    id: int
    run_id: int
    created_at: datetime
    level: str
    kind: str
    message: str

    @classmethod
    def from_row(cls, event: Event) -> EventRecord:
        """Copy an ORM row into a detached record."""
        return cls(event.id, event.run_id, as_utc(event.created_at), event.level, event.kind, event.message)


@dataclass(frozen=True)
class CheckpointRecord:
    """A saved training state of a run."""

    id: int
    run_id: int
    step: int
    epoch: int
    path: str
    created_at: datetime

    @classmethod
    def from_row(cls, checkpoint: Checkpoint) -> CheckpointRecord:
        """Copy an ORM row into a detached record."""
        return cls(
            checkpoint.id,
            checkpoint.run_id,
            checkpoint.step,
            checkpoint.epoch,
            checkpoint.path,
            as_utc(checkpoint.created_at),
        )
