"""Checkpoints written off the training thread.

The training thread only copies the model and optimiser state (a device-side copy: training goes on
mutating the originals) and hands the copy to a writer thread, which serialises it and renames the
file into place (``save_checkpoint``: atomic). A checkpoint is *reported* — ``sink.on_checkpoint``,
from the training thread — only once its file is complete, and always after every metric row up to
its step (the trainer flushes those before it takes the copy), so a reader that sees a checkpoint
row can resume from its file. At most one write is in flight: memory stays bounded by one copy.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from psl_core.engine.checkpoint import save_checkpoint


def _copy_tree(value: Any) -> Any:
    """A copy of a state dict in which every tensor is cloned (containers rebuilt, the rest shared)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _copy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_tree(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copy_tree(v) for v in value)
    return value


class _FrozenState:
    """Stands in for a model or optimiser in ``save_checkpoint``: its state as it was when copied."""

    def __init__(self, state: dict):
        self._state = state

    def state_dict(self) -> dict:
        return self._state


@dataclass(frozen=True)
class WrittenCheckpoint:
    path: str
    step: int
    epoch: int


class CheckpointWriter:
    """Copies state on the caller's thread, writes it on one background thread, reports in order."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="psl-checkpoint")
        self._pending: list[tuple[Future, WrittenCheckpoint]] = []

    def submit(
        self,
        path: Path,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        loop_state: dict,
        planner_state: dict,
        *,
        step: int,
        epoch: int,
    ) -> list[WrittenCheckpoint]:
        """Queue a checkpoint; returns the checkpoints finished meanwhile (waits if one is in flight)."""
        finished = self.wait()  # one copy in memory at a time
        model_state = _FrozenState(_copy_tree(model.state_dict()))
        optimizer_state = _FrozenState(_copy_tree(optimizer.state_dict()))
        future = self._pool.submit(
            save_checkpoint, path, model_state, optimizer_state, loop_state, planner_state
        )
        self._pending.append((future, WrittenCheckpoint(str(path), step, epoch)))
        return finished

    def finished(self) -> list[WrittenCheckpoint]:
        """Checkpoints whose files are complete, oldest first (a failed write raises here)."""
        done = []
        while self._pending and self._pending[0][0].done():
            future, info = self._pending.pop(0)
            future.result()
            done.append(info)
        return done

    def wait(self) -> list[WrittenCheckpoint]:
        """Wait for every queued write; the checkpoints written, oldest first."""
        for future, _ in self._pending:
            future.exception()  # waits; the error (if any) is raised by finished() in order
        return self.finished()

    def close(self) -> None:
        for future, _ in self._pending:
            future.exception()
        self._pending.clear()
        self._pool.shutdown(wait=True)
