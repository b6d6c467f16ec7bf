"""Checkpoints: model, optimiser, loop counters and sampler state in one file, written atomically.

A checkpoint holds only tensors and JSON-like values (dicts, lists, str, int, float, bool, None):
numpy arrays of the sampler state are stored as tensors and turned back into arrays on load. It is
read with ``torch.load(weights_only=True)``, which refuses any other pickled object, so a crafted
file in a shared PSL_HOME cannot run code in the worker; it fails with :class:`CheckpointError`.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

# 2: plain tensors + JSON-like state, read with weights_only=True (version 1 pickled numpy arrays, which
# only an unrestricted unpickler could read: such files are refused).
CHECKPOINT_VERSION = 2


class CheckpointError(ValueError):
    """A checkpoint file that cannot be trusted or used; the message says what to do instead."""


def to_plain_state(value: Any) -> Any:
    """``value`` with numpy arrays as tensors and numpy scalars as Python numbers (recursively)."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(key): to_plain_state(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain_state(item) for item in value]
    if value is None or isinstance(value, (str, bool, int, float, torch.Tensor)):
        return value
    raise TypeError(f"a checkpoint can only hold tensors and JSON-like values, not {type(value).__name__}")


def from_plain_state(value: Any) -> Any:
    """Inverse of :func:`to_plain_state` for the sampler state: tensors back to numpy arrays."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, dict):
        return {key: from_plain_state(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_plain_state(item) for item in value]
    return value


def write_file(path: Path, data) -> None:  # noqa: ANN001 - bytes-like
    with open(path, "wb") as f:
        f.write(data)


def save_checkpoint(path: str | Path, model, optimizer, loop_state: dict, planner_state: dict) -> None:
    """Write to a temporary file and rename, so a crash mid-write never leaves a torn checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    payload = {
        "version": CHECKPOINT_VERSION,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "loop": to_plain_state(loop_state),
        "planner": to_plain_state(planner_state),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)  # serialise in memory: torch's own file writer hides ENOSPC ...
    try:
        write_file(tmp, buffer.getbuffer())  # ... Python's reports a full disk as OSError(ENOSPC)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave half-written files behind
        raise


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's contents (on the CPU), refusing anything but tensors and plain values."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist; start the run from scratch instead")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"checkpoint {path} was refused: it is not a PSL Studio checkpoint of version "
            f"{CHECKPOINT_VERSION} holding only tensors and plain values ({first[:200]}); "
            "delete it and start the run from scratch"
        ) from None
    if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
        found = data.get("version") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(
            f"checkpoint {path} has version {found!r}, expected {CHECKPOINT_VERSION}; "
            "start the run from scratch"
        )
    missing = [key for key in ("model", "optimizer", "loop", "planner") if key not in data]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}; start the run from scratch")
    return data


def load_checkpoint(path: str | Path, model, optimizer, device=None) -> tuple[dict, dict]:
    """Restore model and optimiser in place; return (loop_state, planner_state).

    ``device`` is accepted for compatibility: tensors are read on the CPU and ``load_state_dict``
    copies them onto the parameters' device."""
    data = read_checkpoint(path)
    model.load_state_dict(data["model"])
    optimizer.load_state_dict(data["optimizer"])
    return data["loop"], from_plain_state(data["planner"])
