"""Checkpoints: model, optimiser, loop counters and sampler state in one file, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import torch

CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | Path, model, optimizer, loop_state: dict, planner_state: dict) -> None:
    """Write to a temporary file and rename, so a crash mid-write never leaves a torn checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(
        {
            "version": CHECKPOINT_VERSION,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "loop": loop_state,
            "planner": planner_state,
        },
        tmp,
    )
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, model, optimizer, device) -> tuple[dict, dict]:
    """Restore model and optimiser in place; return (loop_state, planner_state)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist; start the run from scratch instead")
    # weights_only=False: the planner state holds numpy arrays; these files are our own.
    data = torch.load(path, map_location=device, weights_only=False)
    if data.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"checkpoint {path} has version {data.get('version')}, expected {CHECKPOINT_VERSION}"
        )
    model.load_state_dict(data["model"])
    optimizer.load_state_dict(data["optimizer"])
    return data["loop"], data["planner"]
