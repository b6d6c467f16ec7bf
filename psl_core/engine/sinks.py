"""How the engine reports: a small sink interface the application implements.

The engine never prints or writes a database itself. The worker implements a sink that writes to
storage; the CLI one that writes CSV and draws a progress bar; a notebook can use ``MemorySink``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psl_core.metrics import EPOCH_FIELDS, NONDETERMINISTIC_FIELDS, STEP_FIELDS  # noqa: F401


@dataclass(frozen=True)
class RunInfo:
    """What the engine knows before the first step (for progress bars and the store)."""

    total_steps: int
    steps_per_epoch: int
    epochs: int
    num_clients: int
    num_params: int
    device: str
    start_step: int = 0
    start_epoch: int = 0


class Sink:
    """Base sink: every hook is a no-op, override what you need."""

    def on_start(self, info: RunInfo) -> None:
        """Called once before training (also after a resume, with start_step > 0)."""

    def on_steps(self, rows: list[dict[str, Any]]) -> None:
        """A batch of per-step metric rows (keys: STEP_FIELDS), in step order."""

    def on_epoch(self, row: dict[str, Any], client_stats: list[dict[str, Any]]) -> None:
        """Per-epoch metrics (keys: EPOCH_FIELDS) and per-client participation for that epoch."""

    def on_event(self, message: str, level: str = "info") -> None:
        """Something a person should see in the run's event log."""

    def on_checkpoint(self, path: str, step: int, epoch: int) -> None:
        """A checkpoint was written; every step up to ``step`` was reported before this call."""

    def should_stop(self) -> bool:
        """Checked between steps; True cancels the run cleanly."""
        return False


@dataclass
class MemorySink(Sink):
    """Keeps everything in lists: for notebooks and tests."""

    info: RunInfo | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    client_stats: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    checkpoints: list[tuple[str, int, int]] = field(default_factory=list)
    stop_after_step: int | None = None

    def on_start(self, info: RunInfo) -> None:
        self.info = info

    def on_steps(self, rows):
        self.steps.extend(rows)

    def on_epoch(self, row, client_stats):
        self.epochs.append(row)
        self.client_stats.extend(client_stats)

    def on_event(self, message, level="info"):
        self.events.append((level, message))

    def on_checkpoint(self, path, step, epoch):
        self.checkpoints.append((path, step, epoch))

    def should_stop(self) -> bool:
        return (
            self.stop_after_step is not None
            and bool(self.steps)
            and (self.steps[-1]["step"] >= self.stop_after_step)
        )


class FanoutSink(Sink):
    """Sends every report to several sinks (e.g. CSV + progress bar)."""

    def __init__(self, *sinks: Sink):
        self.sinks = sinks

    def on_start(self, info):
        for s in self.sinks:
            s.on_start(info)

    def on_steps(self, rows):
        for s in self.sinks:
            s.on_steps(rows)

    def on_epoch(self, row, client_stats):
        for s in self.sinks:
            s.on_epoch(row, client_stats)

    def on_event(self, message, level="info"):
        for s in self.sinks:
            s.on_event(message, level)

    def on_checkpoint(self, path, step, epoch):
        for s in self.sinks:
            s.on_checkpoint(path, step, epoch)

    def should_stop(self) -> bool:
        return any(s.should_stop() for s in self.sinks)
