"""Who a worker is, and taking over the runs of workers that died on this host.

A worker's id is ``host-pid-xxxxxx``. A worker killed mid-run (kill -9, the out-of-memory killer)
leaves its run 'running'; any worker resumes it once its heartbeat is stale (``--stale-after``), but
on the same host a gone process is certain: its run is taken over after two missed beats instead.
"""

from __future__ import annotations

import os
import socket
import uuid

from app.logs import get_logger
from storage import RunRecord, Store

log = get_logger("worker")


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def dead_local_owner(worker_id: str | None, host: str | None = None) -> bool:
    """True when ``worker_id`` (``host-pid-xxxxxx``, see :func:`new_worker_id`) names a worker process
    of THIS host that no longer exists. A live, zombie or foreign process, another host, or another
    kind of owner (a Ray task) is not "dead" here: its run waits until its heartbeat is stale."""
    host = host or socket.gethostname()
    parts = (worker_id or "").rsplit("-", 2)
    if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def take_over_dead_local_run(
    store: Store, worker_id: str, *, heartbeat_s: float, slot: str, sweep_id: int | None = None
) -> tuple[RunRecord | None, bool]:
    """Claim a run whose worker died on this host (kill -9, out of memory) without waiting for its
    heartbeat to go stale (30 s by default): its process is gone, so after two missed beats (by the
    database clock, a guard against a live worker elsewhere under the same host name) the run is
    resumed from its checkpoint now. Returns (the claimed run or None, whether such a run exists that
    is not claimable yet)."""
    host = socket.gethostname()
    waiting = False
    for record in store.list_runs(status="running"):
        if (sweep_id is not None and record.sweep_id != sweep_id) or not dead_local_owner(
            record.worker_id, host
        ):
            continue
        claimed = store.claim_run(
            record.id,
            worker_id,
            take_over_prefix=record.worker_id,
            take_over_silent_s=2 * heartbeat_s,
            host=host,
            backend="local",
            slot=slot,
        )
        if claimed is not None:
            log.info("run %s: its worker %s died on this host; taken over", record.id, record.worker_id)
            return claimed, False
        waiting = True
    return None, waiting
