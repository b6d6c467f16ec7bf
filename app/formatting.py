"""Small text formatting shared by the CLI and the dashboard (no heavy imports)."""

from __future__ import annotations


def format_duration(seconds: float | None) -> str:
    """Seconds as ``1h 02m``, ``3m 05s`` or ``12s``; '—' when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_placement(host: str | None, backend: str | None, slot: str | None) -> str:
    """Where a run's latest attempt executes, e.g. ``node-3 (ray 2/8 node 1a2b3c4d)``; '—' if nowhere yet."""
    if not host:
        return "—"
    detail = " ".join(part for part in (backend, slot) if part)
    return f"{host} ({detail})" if detail else host
