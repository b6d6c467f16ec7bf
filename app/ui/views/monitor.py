"""What the Live monitor shows first: which run it opens, the failure reason, the other running runs.

Pure functions over :class:`storage.RunRecord` lists (no Streamlit), so the choices are unit-tested.
"""

from __future__ import annotations

from collections.abc import Sequence

ACTIVE = ("queued", "running")


def default_run(records: Sequence) -> int:
    """The run the monitor opens when nothing was asked for: the most recently started running run,
    else the newest queued one, else the newest run (``records`` newest first, as list_runs gives)."""
    running = [r for r in records if r.status == "running"]
    if running:
        return max(running, key=lambda r: (r.started_at is not None, r.started_at or r.created_at, r.id)).id
    queued = [r for r in records if r.status == "queued"]
    return (queued or list(records))[0].id


def failure_summary(record) -> str | None:  # noqa: ANN001 - a storage.RunRecord
    """Why a failed run failed (its error text; the last traceback line when no error was stored), or
    None for a run that did not fail."""
    if record.status != "failed":
        return None
    if record.error and str(record.error).strip():
        return str(record.error).strip()
    lines = [line for line in str(record.traceback or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no reason was recorded; see the event log"


def no_phases_reason(config: dict | None) -> str:
    """Why a run's step-phase chart is empty, in the run's own terms (its stored config dict)."""
    config = config or {}
    paradigm = str((config.get("paradigm") or {}).get("name", "psl"))
    if paradigm != "psl":
        return (
            f"No step phases: {paradigm.upper()} runs in rounds, and each step logs one simulated time (its "
            "share of the round: local computation and the model or smashed-data exchange), shown in the "
            "step-time chart above; the phase breakdown applies to PSL runs."
        )
    if ((config.get("system") or {}).get("helpers") or {}).get("num_helpers"):
        return (
            "No step phases: with helpers a step lasts the makespan of the helpers' schedule (see the "
            "Helpers & scheduling page), not a chain of phases."
        )
    return "No step phases logged yet (runs stored before the phases were logged have none)."
