"""Counting host synchronisations: the calls that make the host wait for a GPU to finish its queue.

On a GPU, reading a value back (``.item()``, ``int(t)``, ``.cpu()``, ``print(t)``), or an operation
whose output size depends on the data (``bincount``, ``nonzero``, boolean-mask indexing), stalls the
host until the device catches up; one per layer per step is enough to starve a fast GPU. Two ways
to find them:

- on any machine, :class:`HostSyncCounter` (a ``TorchFunctionMode``) records every such call made
  through torch's Python API — the training step's *code path* — without needing a GPU;
- on a GPU, :func:`cuda_sync_guard` turns torch's own detector on
  (``torch.cuda.set_sync_debug_mode``), which also sees synchronisations made inside torch.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator

import torch
from torch.overrides import TorchFunctionMode

Tensor = torch.Tensor

# Calls that read device memory on the host, or whose output size depends on the data.
SYNCING_CALLS = frozenset(
    {
        Tensor.item,
        Tensor.__bool__,
        Tensor.__int__,
        Tensor.__float__,
        Tensor.__index__,
        Tensor.tolist,
        Tensor.numpy,
        Tensor.cpu,
        Tensor.nonzero,
        Tensor.unique,
        Tensor.bincount,
        Tensor.masked_select,
        Tensor.repeat_interleave,
        torch.nonzero,
        torch.argwhere,
        torch.unique,
        torch.bincount,
        torch.masked_select,
        torch.repeat_interleave,
    }
)
_INDEXING = frozenset({Tensor.__getitem__, Tensor.__setitem__})


def _has_bool_mask(value) -> bool:
    if isinstance(value, Tensor):
        return value.dtype == torch.bool
    if isinstance(value, (tuple, list)):
        return any(_has_bool_mask(v) for v in value)
    return False


class HostSyncCounter(TorchFunctionMode):
    """Records the calls (name and the line that made them) that would synchronise with a GPU."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        syncing = func in SYNCING_CALLS or (func in _INDEXING and len(args) > 1 and _has_bool_mask(args[1]))
        if syncing:
            caller = traceback.extract_stack(limit=2)[0]  # the line that called torch
            self.calls.append((getattr(func, "__name__", str(func)), f"{caller.filename}:{caller.lineno}"))
        return func(*args, **kwargs)

    @property
    def count(self) -> int:
        return len(self.calls)


@contextlib.contextmanager
def cuda_sync_guard(mode: str = "error") -> Iterator[None]:
    """Inside: a synchronising CUDA call warns (``"warn"``) or raises (``"error"``). Needs CUDA."""
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode(mode)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)


def step_syncs(trainer, sink=None, *, resume_from=None) -> list[list[tuple[str, str]]]:
    """Run ``trainer``; for each training step, the syncing calls it made (name, file:line).

    Only the step itself is watched (flushes, evaluations and checkpoints are outside it)."""
    per_step: list[list[tuple[str, str]]] = []
    step = trainer._step

    def watched(*args, **kwargs):
        with HostSyncCounter() as counter:
            step(*args, **kwargs)
        per_step.append(counter.calls)

    trainer._step = watched
    try:
        trainer.run(sink, resume_from=resume_from)
    finally:
        del trainer._step
    return per_step
