"""Heartbeat and staleness timing of workers, and their exit status for a replaced database (no heavy imports: ``psl worker`` checks it before it
starts its slots, and the parent of a pool never imports torch or the store)."""

from __future__ import annotations

DATABASE_FILE_EXIT = 3  # exit status of a worker whose SQLite file was removed or replaced
HEARTBEAT_EVERY_S = 3.0
STALE_AFTER_S = 30.0
STALE_HEARTBEATS = (
    3  # a run is stale after this many missed beats; fewer and a live worker's run is taken twice
)


def check_timing(stale_after_s: float, heartbeat_s: float) -> None:
    """Refuse heartbeat settings under which live workers' runs would be reclaimed (ValueError)."""
    if not heartbeat_s > 0:
        raise ValueError(f"the heartbeat interval must be positive, got {heartbeat_s!r}")
    if not stale_after_s >= STALE_HEARTBEATS * heartbeat_s:
        raise ValueError(
            f"--stale-after {stale_after_s:g} s is shorter than {STALE_HEARTBEATS} heartbeats "
            f"({STALE_HEARTBEATS * heartbeat_s:g} s at one beat every {heartbeat_s:g} s): a live worker's run "
            "would be taken over by another worker; raise --stale-after or lower --heartbeat-every"
        )
